#include "core/models/stylegan2/generator.h"

#include "core/models/stylegan2/generator_impl.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>
#include <c10/core/InferenceMode.h>

#include <cmath>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/checkpoint/nvidia_pickle.h"
#include "core/checkpoint/safetensors.h"
#include "core/checkpoint/torch_file.h"
#include "core/models/common/torch_convert.h"
#include "core/util/np_random.h"
#include "core/util/status_macros.h"

namespace ganserve::core::stylegan2 {
namespace {

constexpr int kMeanLatentSamples = 4096;
// Noise maps for NoiseMode::kRandom come from their own stream so that they do not
// shift the z drawn from the same seed.
constexpr uint32_t kNoiseStreamSalt = 0x9E3779B9u;

}  // namespace

std::vector<float> SeedToZ(uint32_t seed, int style_dim) {
  NumpyRandomState rng(seed);
  return rng.Randn(static_cast<size_t>(style_dim));
}

Generator::Generator(std::shared_ptr<const Impl> impl, std::shared_ptr<const Domain> domain)
    : impl_(std::move(impl)), domain_(std::move(domain)) {}
Generator::~Generator() = default;

const GeneratorConfig& Generator::config() const { return impl_->config; }
const FloatTensor& Generator::mean_latent() const { return impl_->mean_latent_host; }
bool Generator::mean_latent_from_checkpoint() const { return impl_->mean_from_checkpoint; }
std::string Generator::device() const { return impl_->device.str(); }
std::map<std::string, FloatTensor> Generator::StateDict() const { return impl_->state_dict; }

MemoryFootprint Generator::Footprint() const {
  if (domain_ != nullptr) return domain_->Footprint();
  const Impl& m = *impl_;
  FootprintCounter c;
  c.Add(m.map_weight);
  c.Add(m.map_bias);
  c.Add(m.const_input);
  c.Add(m.noises);
  c.Add(m.mean_latent);
  auto add_conv = [&](const ModConv& mc) {
    for (const auto* t : {&mc.weight, &mc.mod_weight, &mc.mod_bias, &mc.blur}) c.Add(*t);
  };
  auto add_styled = [&](const StyledConv& s) {
    add_conv(s.conv);
    c.Add(s.noise_weight);
    c.Add(s.act_bias);
  };
  auto add_rgb = [&](const ToRgb& r) {
    add_conv(r.conv);
    c.Add(r.bias);
    c.Add(r.upsample);
  };
  add_styled(m.conv1);
  add_rgb(m.to_rgb1);
  for (const auto& s : m.convs) add_styled(s);
  for (const auto& r : m.to_rgbs) add_rgb(r);
  for (const auto& [name, t] : m.state_dict) c.AddHost(t);
  c.AddHost(m.mean_latent_host);
  return c.total();
}

absl::StatusOr<std::unique_ptr<Generator>> Generator::FromTensors(const std::map<std::string, TensorView>& tensors,
                                                                  const TensorView* latent_avg,
                                                                  const LoadOptions& options) {
  ASSIGN_OR_RETURN(GeneratorConfig config, InferGeneratorConfig(tensors));
  if (!(options.conv_clamp >= 0)) return absl::InvalidArgumentError("conv_clamp must be >= 0 (0 = none)");
  config.conv_clamp = options.conv_clamp;
  ASSIGN_OR_RETURN(c10::Device device, ParseDevice(options.device));
  auto impl = std::make_unique<Impl>();
  impl->config = config;
  impl->device = device;
  impl->modconv = options.modconv;
  impl->upsample_phases = options.upsample == UpsampleMode::kPhases;
  try {
    // Normal (not inference) tensors: training and inversion use them in autograd graphs.
    c10::NoGradGuard no_grad;
    std::map<std::string, at::Tensor> t;
    for (const auto& [name, shape] : ExpectedGeneratorTensors(config)) {
      ASSIGN_OR_RETURN(FloatTensor host, ToFloatTensor(tensors.at(name)));
      t[name] = ToTorch(host, device);
      impl->state_dict[name] = std::move(host);
    }
    const double sd = config.style_dim;
    const double lr = config.lr_mlp;
    for (int i = 1; i <= config.n_mlp; ++i) {
      impl->map_weight.push_back(t[absl::StrCat("style.", i, ".weight")] * ((1.0 / std::sqrt(sd)) * lr));
      impl->map_bias.push_back(t[absl::StrCat("style.", i, ".bias")] * lr);
    }
    impl->const_input = t["input.input"];
    auto mod = [&](const StyleLayer& l) {
      const std::string& m = l.module;
      ModConv c;
      c.in_channel = l.in_channel;
      c.out_channel = l.out_channel;
      c.kernel = l.kernel_size;
      c.upsample = l.upsample;
      c.demodulate = l.demodulate;
      c.weight =
          t[m + ".conv.weight"].squeeze(0) * (1.0 / std::sqrt(double(l.in_channel) * l.kernel_size * l.kernel_size));
      c.mod_weight = t[m + ".conv.modulation.weight"] * (1.0 / std::sqrt(sd));
      c.mod_bias = t[m + ".conv.modulation.bias"];
      if (l.upsample) {
        c.blur = at::flip(t[m + ".conv.blur.kernel"], {0, 1}).view({1, 1, 4, 4}).repeat({l.out_channel, 1, 1, 1});
      }
      return c;
    };
    auto styled = [&](const StyleLayer& l) {
      StyledConv s;
      s.conv = mod(l);
      s.noise_weight = t[l.module + ".noise.weight"];
      s.act_bias = t[l.module + ".activate.bias"];
      return s;
    };
    auto to_rgb = [&](const StyleLayer& l) {
      ToRgb r;
      r.conv = mod(l);
      r.bias = t[l.module + ".bias"];
      if (l.module != "to_rgb1") r.upsample = t[l.module + ".upsample.kernel"].view({1, 1, 4, 4}).repeat({3, 1, 1, 1});
      return r;
    };
    for (const StyleLayer& l : config.style_layers) {
      if (l.module == "conv1") {
        impl->conv1 = styled(l);
      } else if (l.module == "to_rgb1") {
        impl->to_rgb1 = to_rgb(l);
      } else if (!l.demodulate) {
        impl->to_rgbs.push_back(to_rgb(l));
      } else {
        impl->convs.push_back(styled(l));
      }
    }
    for (int i = 0; i < config.num_layers; ++i) impl->noises.push_back(t[absl::StrCat("noises.noise_", i)]);

    if (latent_avg != nullptr) {
      ASSIGN_OR_RETURN(FloatTensor avg, ToFloatTensor(*latent_avg));
      if (avg.numel() != config.style_dim) {
        return absl::InvalidArgumentError(
            absl::StrCat("latent_avg has shape ", ShapeString(avg.shape), ", expected [", config.style_dim, "]"));
      }
      avg.shape = {config.style_dim};
      impl->mean_latent_host = avg;
      impl->mean_latent = ToTorch(avg, device);
      impl->mean_from_checkpoint = true;
    } else {
      NumpyRandomState rng(0);
      FloatTensor z;
      z.shape = {kMeanLatentSamples, config.style_dim};
      z.data = rng.Randn(static_cast<size_t>(kMeanLatentSamples) * config.style_dim);
      impl->mean_latent = impl->Map(ToTorch(z, device)).mean(0);
      impl->mean_latent_host = FromTorch(impl->mean_latent);
    }
  } catch (const c10::Error& e) {
    return TorchErrorStatus(e, "building the generator failed");
  }
  return std::unique_ptr<Generator>(new Generator(std::shared_ptr<const Impl>(std::move(impl))));
}

absl::StatusOr<std::unique_ptr<Generator>> Generator::Load(const std::string& path, const LoadOptions& options,
                                                           LoadReport* report) {
  LoadReport local;
  LoadReport& rep = report != nullptr ? *report : local;
  std::map<std::string, TensorView> tensors;
  std::optional<TensorView> latent_avg;
  if (absl::EndsWith(path, ".safetensors")) {
    ASSIGN_OR_RETURN(SafetensorsFile f, LoadSafetensors(path));
    rep.format = "safetensors";
    tensors = std::move(f.tensors);
    if (auto it = tensors.find("latent_avg"); it != tensors.end()) {
      latent_avg = it->second;
      tensors.erase(it);
    }
  } else {
    ASSIGN_OR_RETURN(TorchFile f, LoadTorchFile(path));
    rep.format = std::string(TorchFileFormatName(f.format));
    if (f.format == TorchFileFormat::kPickle) {
      // NVIDIA network pickle: G_ema mapped onto the rosinality layout.
      auto nv = NvidiaGeneratorToRosinality(f.root);
      if (!nv.ok()) return absl::InvalidArgumentError(absl::StrCat(path, ": ", nv.status().message()));
      rep.format = "nvidia-pickle";
      rep.source_key = "G_ema";
      for (const auto& [k, v] : f.root->dict) {
        if (k->IsString()) rep.entries[k->s] = v->Describe();
      }
      rep.notes = nv->notes;
      LoadOptions clamped = options;
      if (nv->conv_clamp) {
        clamped.conv_clamp = static_cast<float>(*nv->conv_clamp);
        rep.notes.push_back(absl::StrCat("conv_clamp ", *nv->conv_clamp,
                                         " is applied; an export to rosinality's layout loses it (rosinality's "
                                         "generator never clamps: renders differ where an activation exceeds it)"));
      }
      auto owned = std::make_shared<const std::map<std::string, FloatTensor>>(std::move(nv->tensors));
      tensors = ViewsOf(owned);
      latent_avg = ViewOf(std::make_shared<const FloatTensor>(std::move(nv->latent_avg)));
      auto gen = FromTensors(tensors, &*latent_avg, clamped);
      if (!gen.ok()) return absl::Status(gen.status().code(), absl::StrCat(path, ": ", gen.status().message()));
      rep.mean_latent_source = "checkpoint (mapping.w_avg)";
      return gen;
    }
    if (f.root->kind != PyValue::Kind::kDict) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": expected a checkpoint dict, found ", f.root->Describe()));
    }
    for (const auto& [k, v] : f.root->dict) {
      if (k->IsString()) rep.entries[k->s] = v->Describe();
    }
    PyRef sd;
    if (!options.key.empty()) {
      sd = f.root->Get(options.key);
      if (sd == nullptr) {
        return absl::InvalidArgumentError(absl::StrCat(path, ": checkpoint has no '", options.key, "' entry"));
      }
      rep.source_key = options.key;
    } else if ((sd = f.root->Get("g_ema")) != nullptr) {
      rep.source_key = "g_ema";
    } else if ((sd = f.root->Get("g")) != nullptr) {
      rep.source_key = "g";
    } else if (f.root->Get("style.1.weight") != nullptr) {
      sd = f.root;
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": no generator found (expected a 'g_ema' or 'g' entry or a bare state dict); entries: ",
                       rep.entries.size()));
    }
    ASSIGN_OR_RETURN(tensors, StateDictTensors(sd));
    if (PyRef avg = f.root->Get("latent_avg"); avg != nullptr && avg->kind == PyValue::Kind::kTensor) {
      latent_avg = *avg->tensor;
    }
  }
  auto gen = FromTensors(tensors, latent_avg ? &*latent_avg : nullptr, options);
  if (!gen.ok()) return absl::Status(gen.status().code(), absl::StrCat(path, ": ", gen.status().message()));
  rep.mean_latent_source = (*gen)->mean_latent_from_checkpoint()
                               ? "checkpoint"
                               : absl::StrCat("computed (", kMeanLatentSamples, " samples, seed 0)");
  const auto& used = (*gen)->impl_->state_dict;
  for (const auto& [name, v] : tensors) {
    if (used.count(name) == 0) rep.ignored_tensors.push_back(name);
  }
  return gen;
}

absl::StatusOr<FloatTensor> Generator::Map(const FloatTensor& z) const {
  if (z.shape.size() != 2 || z.shape[1] != impl_->config.style_dim) {
    return absl::InvalidArgumentError(
        absl::StrCat("z must be [N, ", impl_->config.style_dim, "], got ", ShapeString(z.shape)));
  }
  try {
    c10::InferenceMode guard;
    return FromTorch(impl_->Map(ToTorch(z, impl_->device)));
  } catch (const c10::Error& e) {
    return TorchErrorStatus(e, "mapping failed");
  }
}

absl::StatusOr<GenerateResult> Generator::Generate(const GenerateParams& p) const {
  const GeneratorConfig& c = impl_->config;
  const int64_t sd = c.style_dim;
  const auto& shape = p.latents.shape;
  if (shape.empty() || shape[0] < 1) return absl::InvalidArgumentError("latents must have a batch dimension >= 1");
  const int64_t n = shape[0];
  switch (p.space) {
    case LatentSpace::kZ:
    case LatentSpace::kW:
      if (shape.size() != 2 || shape[1] != sd) {
        return absl::InvalidArgumentError(absl::StrCat(p.space == LatentSpace::kZ ? "z" : "w", " latents must be [N, ",
                                                       sd, "], got ", ShapeString(shape)));
      }
      break;
    case LatentSpace::kWPlus:
      if (shape.size() != 3 || shape[1] != c.n_latent || shape[2] != sd) {
        return absl::InvalidArgumentError(
            absl::StrCat("w+ latents must be [N, ", c.n_latent, ", ", sd, "], got ", ShapeString(shape)));
      }
      break;
    case LatentSpace::kS:
      if (shape.size() != 2 || shape[1] != c.s_dim) {
        return absl::InvalidArgumentError(
            absl::StrCat("S-space latents must be [N, ", c.s_dim, "], got ", ShapeString(shape)));
      }
      break;
  }
  if (static_cast<int64_t>(p.latents.data.size()) != p.latents.numel()) {
    return absl::InvalidArgumentError("latent data size does not match its shape");
  }
  if (p.mix_latents) {
    if (p.space != LatentSpace::kZ && p.space != LatentSpace::kW) {
      return absl::InvalidArgumentError("style mixing needs z or w latents");
    }
    if (p.mix_latents->shape != shape || static_cast<int64_t>(p.mix_latents->data.size()) != p.mix_latents->numel()) {
      return absl::InvalidArgumentError(
          absl::StrCat("mixing latents must have the same shape as the latents ", ShapeString(shape)));
    }
    if (p.inject_index < 1 || p.inject_index >= c.n_latent) {
      return absl::InvalidArgumentError(
          absl::StrCat("inject_index must be in [1, ", c.n_latent - 1, "], got ", p.inject_index));
    }
  }
  if (p.noise == NoiseMode::kRandom && static_cast<int64_t>(p.noise_seeds.size()) != n) {
    return absl::InvalidArgumentError(
        absl::StrCat("random noise needs one seed per image: ", n, " images, ", p.noise_seeds.size(), " seeds"));
  }
  if (!std::isfinite(p.truncation)) return absl::InvalidArgumentError("truncation must be finite");
  if (p.mean_rows_from < 0) return absl::InvalidArgumentError("mean_rows_from must be >= 0");
  if (p.max_resolution != 0 &&
      (p.max_resolution < 4 || p.max_resolution > c.resolution || (p.max_resolution & (p.max_resolution - 1)) != 0)) {
    return absl::InvalidArgumentError(absl::StrCat("max_resolution must be a power of two in [4, ", c.resolution,
                                                   "] (0 = the model's), got ", p.max_resolution));
  }
  const int64_t s_layers = static_cast<int64_t>(c.style_layers.size());
  if (p.prefix_group < 1 || n % p.prefix_group != 0 || p.prefix_layers < 0 || p.prefix_layers > s_layers) {
    return absl::InvalidArgumentError(absl::StrCat("prefix_group must divide the batch (", n,
                                                   ") and prefix_layers be in [0, ", s_layers, "]; got ",
                                                   p.prefix_group, " and ", p.prefix_layers));
  }

  // Each row's domain.
  std::vector<const Domain::Impl*> row_domains;
  if (!p.domains.empty()) {
    if (static_cast<int64_t>(p.domains.size()) != n) {
      return absl::InvalidArgumentError(
          absl::StrCat("domains needs one entry per image: ", n, " images, ", p.domains.size(), " domains"));
    }
    for (const auto& d : p.domains) row_domains.push_back(d == nullptr ? nullptr : &d->impl());
  } else if (domain_ != nullptr) {
    row_domains.assign(static_cast<size_t>(n), &domain_->impl());
  }
  for (const Domain::Impl* d : row_domains) {
    if (d == nullptr) continue;
    if (d->weights != impl_.get()) {
      return absl::InvalidArgumentError("a domain was made for another generator's weights");
    }
    if (d->kind == DomainKind::kAffineLight && p.space == LatentSpace::kS) {
      return absl::InvalidArgumentError(
          "affine_light domains change the style affines: render them from z, w or w+ latents, not S-space codes");
    }
  }
  if (p.prefix_layers > 0 && !row_domains.empty()) {
    for (int64_t r = 0; r < n; ++r) {
      if (row_domains[r] != row_domains[r - r % p.prefix_group]) {
        return absl::InvalidArgumentError("rows in a prefix group must render in the same domain");
      }
    }
  }

  try {
    c10::InferenceMode guard;
    const c10::Device dev = impl_->device;
    auto truncate = [&](at::Tensor w) {
      if (p.truncation == 1.0f) return w;
      return impl_->mean_latent + p.truncation * (w - impl_->mean_latent);
    };
    at::Tensor x = ToTorch(p.latents, dev);
    at::Tensor wplus;
    std::vector<at::Tensor> styles;
    const auto order = impl_->StyleOrder();
    if (p.space == LatentSpace::kS) {
      for (const StyleLayer& l : c.style_layers) styles.push_back(x.narrow(1, l.offset, l.in_channel).contiguous());
    } else {
      if (p.space == LatentSpace::kWPlus) {
        wplus = truncate(x);
      } else {
        at::Tensor w = p.space == LatentSpace::kZ ? impl_->Map(x) : x;
        w = truncate(w);
        if (p.mix_latents) {
          at::Tensor m = ToTorch(*p.mix_latents, dev);
          at::Tensor w2 = truncate(p.space == LatentSpace::kZ ? impl_->Map(m) : m);
          wplus = at::cat({w.unsqueeze(1).expand({n, p.inject_index, sd}),
                           w2.unsqueeze(1).expand({n, c.n_latent - p.inject_index, sd})},
                          1);
        } else {
          wplus = w.unsqueeze(1).expand({n, c.n_latent, sd});
        }
        if (p.mean_rows_from > 0 && p.mean_rows_from < c.n_latent) {
          const int64_t rows = c.n_latent - p.mean_rows_from;
          wplus = at::cat(
              {wplus.narrow(1, 0, p.mean_rows_from), impl_->mean_latent.view({1, 1, sd}).expand({n, rows, sd})}, 1);
        }
      }
      for (size_t i = 0; i < order.size(); ++i) {
        styles.push_back(order[i]->Style(wplus.select(1, c.style_layers[i].latent_index)));
      }
    }
    GenerateResult out;
    if (p.return_wplus && wplus.defined()) out.wplus = FromTorch(wplus);
    if (p.return_s) out.s = FromTorch(at::cat(styles, 1));
    if (!p.render_images) return out;
    std::vector<at::Tensor> noise;
    if (!p.noise_maps.empty()) {
      if (static_cast<int>(p.noise_maps.size()) != c.num_layers) {
        return absl::InvalidArgumentError(
            absl::StrCat("noise_maps needs ", c.num_layers, " maps, got ", p.noise_maps.size()));
      }
      for (int i = 0; i < c.num_layers; ++i) {
        const int64_t r = int64_t{1} << ((i + 5) / 2);
        const auto& m = p.noise_maps[static_cast<size_t>(i)];
        if (m.shape.size() != 4 || (m.shape[0] != 1 && m.shape[0] != n) || m.shape[1] != 1 || m.shape[2] != r ||
            m.shape[3] != r || static_cast<int64_t>(m.data.size()) != m.numel()) {
          return absl::InvalidArgumentError(absl::StrCat("noise map ", i, " must be [1, 1, ", r, ", ", r, "]"));
        }
        noise.push_back(ToTorch(m, dev));
      }
    } else if (p.noise == NoiseMode::kConst) {
      noise = impl_->noises;
    } else if (p.noise == NoiseMode::kRandom) {
      std::vector<FloatTensor> host(static_cast<size_t>(c.num_layers));
      for (int i = 0; i < c.num_layers; ++i) {
        const int64_t r = int64_t{1} << ((i + 5) / 2);
        host[i].shape = {n, 1, r, r};
        host[i].data.reserve(static_cast<size_t>(n * r * r));
      }
      for (int64_t b = 0; b < n; ++b) {
        NumpyRandomState rng(p.noise_seeds[b] ^ kNoiseStreamSalt);
        for (int i = 0; i < c.num_layers; ++i) {
          const int64_t r = host[i].shape[2];
          auto v = rng.Randn(static_cast<size_t>(r * r));
          host[i].data.insert(host[i].data.end(), v.begin(), v.end());
        }
      }
      for (auto& h : host) noise.push_back(ToTorch(h, dev));
    }
    const int64_t group = p.prefix_layers > 0 ? p.prefix_group : 1;
    if (group > 1) {
      // The S layer of each noise input: 0, then two convs per block (2 + 3j, 3 + 3j).
      auto noise_layer = [](int i) { return i == 0 ? 0 : (i % 2 == 1 ? 2 + 3 * (i - 1) / 2 : 3 + 3 * (i - 2) / 2); };
      auto shared = [&](const at::Tensor& t) {
        if (t.size(0) != n) return true;  // one map for every row
        at::Tensor v = t.reshape({n / group, group, -1});
        return v.eq(v.narrow(1, 0, 1)).all().item<bool>();
      };
      for (int l = 0; l < p.prefix_layers; ++l) {
        if (!shared(styles[static_cast<size_t>(l)])) {
          return absl::InvalidArgumentError(
              absl::StrCat("rows in a prefix group differ in S layer ", l, " (prefix_layers ", p.prefix_layers, ")"));
        }
      }
      for (size_t i = 0; i < noise.size(); ++i) {
        if (noise_layer(static_cast<int>(i)) < p.prefix_layers && !shared(noise[i])) {
          return absl::InvalidArgumentError(absl::StrCat("rows in a prefix group differ in noise map ", i));
        }
      }
    }
    const size_t blocks =
        p.max_resolution == 0 ? impl_->to_rgbs.size() : static_cast<size_t>(std::log2(p.max_resolution)) - 2;
    bool any_domain = false;
    for (const Domain::Impl* d : row_domains) any_domain = any_domain || d != nullptr;
    const std::vector<LayerDomain> domains =
        any_domain ? BatchDomains(c, row_domains, wplus) : std::vector<LayerDomain>{};
    out.images =
        FromTorch(impl_->Synthesize(styles, noise, domains, group, static_cast<size_t>(p.prefix_layers), blocks));
    return out;
  } catch (const c10::Error& e) {
    return TorchErrorStatus(e, "generation failed");
  }
}

}  // namespace ganserve::core::stylegan2
