// Lightweight domains: their tensor layout, validation, and what a batch of them does
// to each S layer (reference lightweight-adaptation.md sections 1-4).
#include <ATen/ATen.h>
#include <c10/core/GradMode.h>

#include <cmath>
#include <set>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/models/common/torch_convert.h"
#include "core/models/stylegan2/generator.h"
#include "core/models/stylegan2/generator_impl.h"
#include "core/util/status_macros.h"

namespace ganserve::core::stylegan2 {
namespace {

constexpr std::pair<DomainKind, const char*> kKindNames[] = {
    {DomainKind::kDomainModulation, "domain_modulation"},
    {DomainKind::kStyleSpaceDirection, "stylespace_direction"},
    {DomainKind::kAffineLight, "affine_light"},
};

// The modules of the AffineLight+ kernel block.
std::set<std::string> KernelBlockModules(const GeneratorConfig& c) {
  const int j = AffineLightKernelBlock(c);
  return {absl::StrCat("convs.", 2 * j), absl::StrCat("convs.", 2 * j + 1), absl::StrCat("to_rgbs.", j)};
}

}  // namespace

std::string DomainKindName(DomainKind kind) {
  for (const auto& [k, name] : kKindNames) {
    if (k == kind) return name;
  }
  return "unknown";
}

std::optional<DomainKind> ParseDomainKind(const std::string& name) {
  for (const auto& [k, n] : kKindNames) {
    if (name == n) return k;
  }
  return std::nullopt;
}

int AffineLightKernelBlock(const GeneratorConfig& config) {
  const int blocks = static_cast<int>(std::log2(config.resolution)) - 2;  // 8 px is block 0
  return std::max(0, std::min(3, blocks - 1));
}

std::map<std::string, std::vector<int64_t>> DomainTensorShapes(const GeneratorConfig& config, DomainKind kind,
                                                               int rank) {
  std::map<std::string, std::vector<int64_t>> out;
  const auto kernel_block = KernelBlockModules(config);
  for (const StyleLayer& l : config.style_layers) {
    switch (kind) {
      case DomainKind::kDomainModulation:
        if (l.demodulate) out[l.module + ".domain"] = {l.in_channel};
        break;
      case DomainKind::kStyleSpaceDirection:
        if (l.demodulate) out[l.module + ".style_offset"] = {l.in_channel};
        break;
      case DomainKind::kAffineLight:
        out[l.module + ".affine_u"] = {l.in_channel, rank};
        out[l.module + ".affine_v"] = {rank, config.style_dim};
        if (kernel_block.count(l.module) != 0) {
          out[l.module + ".weight_offset"] = {l.out_channel, l.in_channel, 1, 1};  // broadcast over k x k
        }
        break;
    }
  }
  return out;
}

Domain::Domain(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Domain::~Domain() = default;
DomainKind Domain::kind() const { return impl_->kind; }
int64_t Domain::parameter_count() const { return impl_->parameters; }

MemoryFootprint Domain::Footprint() const {
  FootprintCounter c;
  for (const auto* v : {&impl_->offset, &impl_->affine_u, &impl_->affine_v, &impl_->kernel}) c.Add(*v);
  for (const auto& [name, t] : impl_->source.tensors) c.AddHost(t);
  return c.total();
}

absl::StatusOr<std::shared_ptr<const Domain>> Generator::MakeDomain(const DomainTensors& tensors) const {
  const GeneratorConfig& c = impl_->config;
  int rank = kAffineLightRank;
  if (tensors.kind == DomainKind::kAffineLight) {
    // The rank is the stored one (U [in, r]), the same for every layer.
    auto it = tensors.tensors.find(c.style_layers[0].module + ".affine_u");
    if (it != tensors.tensors.end() && it->second.shape.size() == 2) rank = static_cast<int>(it->second.shape[1]);
    if (rank < 1 || rank > c.style_dim) {
      return absl::InvalidArgumentError(
          absl::StrCat("affine_light rank must be in [1, ", c.style_dim, "], got ", rank));
    }
  }
  const auto expected = DomainTensorShapes(c, tensors.kind, rank);
  std::vector<std::string> missing, unexpected, wrong;
  for (const auto& [name, shape] : expected) {
    auto it = tensors.tensors.find(name);
    if (it == tensors.tensors.end()) {
      missing.push_back(name);
    } else if (it->second.shape != shape || static_cast<int64_t>(it->second.data.size()) != it->second.numel()) {
      wrong.push_back(absl::StrCat(name, " ", ShapeString(it->second.shape), " (expected ", ShapeString(shape), ")"));
    }
  }
  for (const auto& [name, t] : tensors.tensors) {
    if (expected.count(name) == 0) unexpected.push_back(name);
  }
  auto first = [](const std::vector<std::string>& v) {
    return absl::StrJoin(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(std::min<size_t>(v.size(), 8)), ", ");
  };
  if (!missing.empty() || !unexpected.empty() || !wrong.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("the ", DomainKindName(tensors.kind), " domain does not fit this generator (", c.resolution,
                     " px): ", missing.size(), " missing [", first(missing), "], ", unexpected.size(), " unexpected [",
                     first(unexpected), "], ", wrong.size(), " mis-shaped [", first(wrong), "]"));
  }
  for (const auto& [name, t] : tensors.tensors) {
    for (float v : t.data) {
      if (!std::isfinite(v)) return absl::InvalidArgumentError(absl::StrCat("domain tensor ", name, " is not finite"));
    }
  }
  auto impl = std::make_unique<Domain::Impl>();
  impl->source = tensors;
  impl->kind = tensors.kind;
  impl->weights = impl_.get();
  const size_t n = c.style_layers.size();
  impl->offset.resize(n);
  impl->affine_u.resize(n);
  impl->affine_v.resize(n);
  impl->kernel.resize(n);
  try {
    c10::NoGradGuard no_grad;
    auto get = [&](const std::string& name) {
      const FloatTensor& t = tensors.tensors.at(name);
      impl->parameters += t.numel();
      return ToTorch(t, impl_->device);
    };
    for (size_t i = 0; i < n; ++i) {
      const StyleLayer& l = c.style_layers[i];
      switch (tensors.kind) {
        case DomainKind::kDomainModulation:
          if (l.demodulate) impl->offset[i] = get(l.module + ".domain");
          break;
        case DomainKind::kStyleSpaceDirection:
          if (l.demodulate) impl->offset[i] = get(l.module + ".style_offset");
          break;
        case DomainKind::kAffineLight:
          impl->affine_u[i] = get(l.module + ".affine_u");
          impl->affine_v[i] = get(l.module + ".affine_v") * (1.0 / std::sqrt(static_cast<double>(c.style_dim)));
          if (expected.count(l.module + ".weight_offset") != 0) {
            impl->kernel[i] = get(l.module + ".weight_offset") *
                              (1.0 / std::sqrt(static_cast<double>(l.in_channel) * l.kernel_size * l.kernel_size));
          }
          break;
      }
    }
  } catch (const c10::Error& e) {
    return TorchErrorStatus(e, "placing the domain on the device failed");
  }
  return std::shared_ptr<const Domain>(new Domain(std::move(impl)));
}

absl::StatusOr<std::shared_ptr<const Generator>> Generator::WithDomain(const std::shared_ptr<const Generator>& base,
                                                                       std::shared_ptr<const Domain> domain) {
  if (base == nullptr || domain == nullptr) {
    return absl::InvalidArgumentError("a base generator and a domain are needed");
  }
  if (domain->impl().weights != base->impl_.get()) {
    return absl::InvalidArgumentError("the domain was made for another generator's weights");
  }
  return std::shared_ptr<const Generator>(new Generator(base->impl_, std::move(domain)));
}

absl::StatusOr<std::map<std::string, FloatTensor>> Generator::ExportStateDict() const {
  std::map<std::string, FloatTensor> sd = impl_->state_dict;
  if (domain_ == nullptr) return sd;
  const DomainTensors& t = domain_->impl().source;
  const GeneratorConfig& c = impl_->config;
  if (t.kind == DomainKind::kDomainModulation) {
    return absl::FailedPreconditionError(
        "a domain_modulation domain scales the kernels after demodulation, which no rosinality checkpoint can "
        "hold; export its base and render the domain with the server (or HyperDomainNet's code)");
  }
  for (const StyleLayer& l : c.style_layers) {
    if (t.kind == DomainKind::kStyleSpaceDirection) {
      // s + d = A w + (b + d): the modulation bias (lr_mul 1) takes it exactly.
      auto it = t.tensors.find(l.module + ".style_offset");
      if (it == t.tensors.end()) continue;
      FloatTensor& b = sd.at(l.module + ".conv.modulation.bias");
      for (size_t i = 0; i < b.data.size(); ++i) b.data[i] += it->second.data[i];
      continue;
    }
    const FloatTensor& u = t.tensors.at(l.module + ".affine_u");   // [in, r]
    const FloatTensor& v = t.tensors.at(l.module + ".affine_v");   // [r, style_dim]
    FloatTensor& a = sd.at(l.module + ".conv.modulation.weight");  // [in, style_dim]
    const int64_t r = u.shape[1], sdim = c.style_dim;
    for (int64_t i = 0; i < l.in_channel; ++i) {
      for (int64_t j = 0; j < sdim; ++j) {
        double acc = 0;
        for (int64_t k = 0; k < r; ++k) acc += static_cast<double>(u.data[i * r + k]) * v.data[k * sdim + j];
        a.data[i * sdim + j] += static_cast<float>(acc);
      }
    }
    auto k = t.tensors.find(l.module + ".weight_offset");  // [out, in, 1, 1]
    if (k == t.tensors.end()) continue;
    FloatTensor& w = sd.at(l.module + ".conv.weight");  // [1, out, in, k, k]
    const int64_t window = int64_t{l.kernel_size} * l.kernel_size;
    for (int64_t p = 0; p < k->second.numel(); ++p) {
      for (int64_t q = 0; q < window; ++q) w.data[p * window + q] += k->second.data[p];
    }
  }
  return sd;
}

std::vector<LayerDomain> BatchDomains(const GeneratorConfig& config, const std::vector<const Domain::Impl*>& per_image,
                                      const at::Tensor& wplus) {
  std::vector<const Domain::Impl*> uniq;
  std::vector<int64_t> index;  // per row: 0 = none, k + 1 = uniq[k]
  for (const Domain::Impl* d : per_image) {
    if (d == nullptr) {
      index.push_back(0);
      continue;
    }
    auto it = std::find(uniq.begin(), uniq.end(), d);
    index.push_back(static_cast<int64_t>(it - uniq.begin()) + 1);
    if (it == uniq.end()) uniq.push_back(d);
  }
  if (uniq.empty()) return {};
  const int64_t b = static_cast<int64_t>(per_image.size());
  const bool all_one = uniq.size() == 1 && std::find(index.begin(), index.end(), 0) == index.end();
  at::Tensor idx;
  // Per row, the member of its domain (`neutral` for rows without; undefined when no
  // domain of the batch has one).
  auto gather = [&](auto member, double neutral) -> at::Tensor {
    at::Tensor any;
    for (const Domain::Impl* d : uniq) {
      if (member(*d).defined()) any = member(*d);
    }
    if (!any.defined()) return {};
    if (all_one) {
      std::vector<int64_t> shape{b};
      for (int64_t s : any.sizes()) shape.push_back(s);
      return any.unsqueeze(0).expand(shape);
    }
    std::vector<at::Tensor> table{at::full_like(any, neutral)};
    for (const Domain::Impl* d : uniq) table.push_back(member(*d).defined() ? member(*d) : table[0]);
    if (!idx.defined()) idx = at::tensor(index, at::TensorOptions().dtype(at::kLong)).to(any.device());
    return at::stack(table).index_select(0, idx);
  };
  std::vector<LayerDomain> out(config.style_layers.size());
  for (size_t i = 0; i < out.size(); ++i) {
    auto offset_of = [&](DomainKind kind) {
      return [i, kind](const Domain::Impl& d) { return d.kind == kind ? d.offset[i] : at::Tensor(); };
    };
    at::Tensor factor = gather(offset_of(DomainKind::kDomainModulation), 0.0);
    if (factor.defined()) out[i].post_demod = factor + 1;  // rows without: exactly 1
    out[i].style_add = gather(offset_of(DomainKind::kStyleSpaceDirection), 0.0);
    at::Tensor u =
        gather([i](const Domain::Impl& d) { return d.affine_u.empty() ? at::Tensor() : d.affine_u[i]; }, 0.0);
    if (u.defined()) {
      TORCH_CHECK(wplus.defined(), "affine_light domains need z, w or w+ latents, not S-space codes");
      at::Tensor v =
          gather([i](const Domain::Impl& d) { return d.affine_v.empty() ? at::Tensor() : d.affine_v[i]; }, 0.0);
      const at::Tensor w = wplus.select(1, config.style_layers[i].latent_index).unsqueeze(2);  // [B, sd, 1]
      const at::Tensor add = at::bmm(u, at::bmm(v, w)).squeeze(2);                             // [B, in]
      out[i].style_add = out[i].style_add.defined() ? out[i].style_add + add : add;
    }
    out[i].kernel_add =
        gather([i](const Domain::Impl& d) { return d.kernel.empty() ? at::Tensor() : d.kernel[i]; }, 0.0);
  }
  return out;
}

}  // namespace ganserve::core::stylegan2
