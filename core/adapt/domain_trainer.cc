#include "core/adapt/domain_trainer.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <c10/core/GradMode.h>

#include <cmath>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "core/adapt/guidance_impl.h"
#include "core/checkpoint/safetensors.h"
#include "core/models/clip/clip_model_impl.h"
#include "core/models/common/adam.h"
#include "core/models/common/torch_convert.h"
#include "core/models/stylegan2/generator_impl.h"
#include "core/util/status_macros.h"

namespace ganserve::core::adapt {
namespace {

using stylegan2::DomainKind;
using stylegan2::Generator;

constexpr const char* kCheckpointFormat = "ganserve-domain-v1";

at::Tensor DirectionLoss(const at::Tensor& e_src, const at::Tensor& e_trg, const at::Tensor& direction) {
  return (1 - at::cosine_similarity(e_trg - e_src, direction.unsqueeze(0), 1, 1e-8)).mean();
}

// Mean over the B(B-1)/2 pairs i > j of the squared change of the pair's cosine.
at::Tensor InDomainLoss(const at::Tensor& e_src, const at::Tensor& e_trg) {
  const int64_t b = e_src.size(0);
  const at::Tensor diff = e_src.matmul(e_src.t()) - e_trg.matmul(e_trg.t());
  const at::Tensor lower = at::ones({b, b}, diff.options()).tril(-1);
  return (diff.pow(2) * lower).sum() * (2.0 / static_cast<double>(b * (b - 1)));
}

}  // namespace

DomainTrainerOptions DomainTrainerDefaults(DomainKind kind) {
  DomainTrainerOptions o;
  o.kind = kind;
  switch (kind) {
    case DomainKind::kDomainModulation:
      o.lr = 0.02f;
      o.lambda_indomain = 1.5f;
      break;
    case DomainKind::kStyleSpaceDirection:
      o.lr = 0.05f;
      o.lambda_indomain = 0.25f;
      break;
    case DomainKind::kAffineLight:
      o.lr = 0.008f;
      o.lambda_indomain = 0.5f;
      break;
  }
  return o;
}

absl::StatusOr<DomainLosses> ComputeDomainLosses(const FloatTensor& e_src, const FloatTensor& e_trg,
                                                 const FloatTensor& direction) {
  if (e_src.shape.size() != 2 || e_src.shape != e_trg.shape || e_src.shape[0] < 2 ||
      direction.numel() != e_src.shape[1]) {
    return absl::InvalidArgumentError("embeddings must be two [B >= 2, D] tensors and the direction [D]");
  }
  try {
    c10::NoGradGuard ng;
    const at::Tensor s = ToTorch(e_src, c10::kCPU), t = ToTorch(e_trg, c10::kCPU);
    DomainLosses out;
    out.direction = DirectionLoss(s, t, ToTorch(direction, c10::kCPU).view({-1})).item<float>();
    out.indomain = InDomainLoss(s, t).item<float>();
    return out;
  } catch (const c10::Error& e) {
    return TorchErrorStatus(e, "computing the losses failed");
  }
}

struct DomainTrainer::State {
  DomainTrainerOptions opt;
  std::shared_ptr<const Generator> base;
  std::vector<ClipGuide> clips;
  std::vector<at::Tensor> directions;  // per CLIP model [D]
  c10::Device device{c10::kCPU};
  std::map<std::string, at::Tensor> leaves;  // DomainTensorShapes names, raw units
  std::vector<std::string> order;            // leaf names in Adam's order
  std::unique_ptr<Adam> adam;
  int64_t step = 0;
  at::Tensor preview_z;

  const Generator::Impl& g() const { return base->impl(); }
  const stylegan2::GeneratorConfig& cfg() const { return base->config(); }

  std::vector<at::Tensor> Params() const {
    std::vector<at::Tensor> out;
    for (const auto& n : order) out.push_back(leaves.at(n));
    return out;
  }

  // The domain the leaves stand for, differentiable in them.
  stylegan2::Domain::Impl Domain() const {
    stylegan2::Domain::Impl d;
    d.kind = opt.kind;
    d.weights = base->weights_id();
    const auto& layers = cfg().style_layers;
    const size_t n = layers.size();
    d.offset.resize(n);
    d.affine_u.resize(n);
    d.affine_v.resize(n);
    d.kernel.resize(n);
    const double gain = 1.0 / std::sqrt(static_cast<double>(cfg().style_dim));
    auto find = [&](const std::string& name) {
      auto it = leaves.find(name);
      return it == leaves.end() ? at::Tensor() : it->second;
    };
    for (size_t i = 0; i < n; ++i) {
      const auto& l = layers[i];
      switch (opt.kind) {
        case DomainKind::kDomainModulation: d.offset[i] = find(l.module + ".domain"); break;
        case DomainKind::kStyleSpaceDirection: d.offset[i] = find(l.module + ".style_offset"); break;
        case DomainKind::kAffineLight: {
          d.affine_u[i] = find(l.module + ".affine_u");
          d.affine_v[i] = find(l.module + ".affine_v") * gain;
          at::Tensor k = find(l.module + ".weight_offset");
          if (k.defined()) {
            d.kernel[i] = k * (1.0 / std::sqrt(static_cast<double>(l.in_channel) * l.kernel_size * l.kernel_size));
          }
          break;
        }
      }
    }
    return d;
  }

  std::vector<at::Tensor> RandomNoise(int64_t batch, at::Generator& gen) const {
    return RandomNoiseMaps(cfg(), batch, gen, device);
  }

  at::Tensor Embed(size_t m, const at::Tensor& images) const { return EmbedGeneratorImages(clips[m], images); }

  at::Tensor WPlus(const at::Tensor& w) const {
    return w.unsqueeze(1).expand({w.size(0), cfg().n_latent, cfg().style_dim});
  }

  // The weighted loss of one batch; fills the per-term sums.
  at::Tensor Loss(const at::Tensor& frozen_wplus, const at::Tensor& train_wplus,
                  const std::vector<at::Tensor>& frozen_noise, const std::vector<at::Tensor>& train_noise,
                  std::map<std::string, float>* terms) const {
    at::Tensor frozen_img;
    {
      c10::NoGradGuard ng;
      frozen_img = g().RenderWPlus(frozen_wplus, frozen_noise, nullptr, opt.form);
    }
    const stylegan2::Domain::Impl d = Domain();
    const at::Tensor train_img = g().RenderWPlus(train_wplus, train_noise, &d, opt.form);
    at::Tensor total = at::zeros({}, train_img.options());
    double dir_sum = 0, in_sum = 0;
    for (size_t m = 0; m < clips.size(); ++m) {
      at::Tensor e_s;
      {
        c10::NoGradGuard ng;
        e_s = Embed(m, frozen_img);
      }
      const at::Tensor e_t = Embed(m, train_img);
      const at::Tensor dir = DirectionLoss(e_s, e_t, directions[m]);
      const at::Tensor in = InDomainLoss(e_s, e_t);
      dir_sum += clips[m].weight * dir.item<double>();
      in_sum += clips[m].weight * in.item<double>();
      total = total + clips[m].weight * (opt.lambda_direction * dir + opt.lambda_indomain * in);
    }
    (*terms)["direction"] = static_cast<float>(dir_sum);
    (*terms)["indomain"] = static_cast<float>(in_sum);
    if (opt.lambda_l2 != 0) {
      at::Tensor l2 = at::zeros({}, total.options());
      for (const auto& [name, t] : leaves) l2 = l2 + t.pow(2).mean();
      (*terms)["l2"] = l2.item<float>();
      total = total + opt.lambda_l2 * l2;
    }
    (*terms)["total"] = total.item<float>();
    return total;
  }

  // w+ of caller-given z [B >= 2, style_dim], no mixing.
  absl::StatusOr<at::Tensor> FixedWPlus(const FloatTensor& z) const {
    if (z.shape.size() != 2 || z.shape[0] < 2 || z.shape[1] != cfg().style_dim) {
      return absl::InvalidArgumentError(absl::StrCat("z must be [B >= 2, ", cfg().style_dim, "]"));
    }
    try {
      c10::NoGradGuard ng;
      return WPlus(g().Map(ToTorch(z, device)));
    } catch (const c10::Error& e) {
      return TorchErrorStatus(e, "mapping z failed");
    }
  }

  std::map<std::string, float> Update(const at::Tensor& loss, std::map<std::string, float> terms) {
    loss.backward();
    adam->Step(Params(), opt.lr);
    step += 1;
    return terms;
  }
};

DomainTrainer::DomainTrainer(std::unique_ptr<State> state) : state_(std::move(state)) {}
DomainTrainer::~DomainTrainer() = default;
int64_t DomainTrainer::step() const { return state_->step; }
const DomainTrainerOptions& DomainTrainer::options() const { return state_->opt; }

absl::StatusOr<std::unique_ptr<DomainTrainer>> DomainTrainer::Create(const std::shared_ptr<const Generator>& base,
                                                                     std::vector<ClipGuide> clips,
                                                                     const DomainTrainerOptions& opt,
                                                                     clip::TextEmbeddingCache* text_cache) {
  if (base == nullptr) return absl::InvalidArgumentError("no base generator");
  if (base->domain() != nullptr) {
    return absl::InvalidArgumentError("a lightweight domain trains on a base generator, not on another domain");
  }
  if (opt.target_text.empty()) return absl::InvalidArgumentError("target_text is required");
  if (clips.empty()) return absl::InvalidArgumentError("at least one CLIP model is required");
  if (opt.batch_size < 2) {
    return absl::InvalidArgumentError(
        "lightweight domains train with batches of at least 2 (the in-domain loss "
        "compares pairs)");
  }
  if (opt.iterations < 1 || opt.preview_count < 0 || !(opt.lr > 0) || !std::isfinite(opt.lr) || opt.mixing < 0 ||
      opt.mixing > 1 || opt.beta1 < 0 || opt.beta1 >= 1 || opt.beta2 < 0 || opt.beta2 >= 1 || opt.rank < 1 ||
      opt.rank > base->config().style_dim) {
    return absl::InvalidArgumentError("domain training options out of range");
  }
  auto st = std::make_unique<State>();
  st->opt = opt;
  st->base = base;
  st->clips = std::move(clips);
  st->device = base->impl().device;
  try {
    at::Generator init = at::detail::createCPUGenerator(opt.seed * 1000003ULL + 31);
    for (const auto& [name, shape] : stylegan2::DomainTensorShapes(base->config(), opt.kind, opt.rank)) {
      at::Tensor t = at::zeros(shape, at::TensorOptions().dtype(at::kFloat));
      // AffineLight+: V starts as random unit rows, U at zero, so U V starts at zero and
      // both train (StyleDomain's initialisation).
      if (name.size() > 9 && name.compare(name.size() - 9, 9, ".affine_v") == 0) {
        t = NormalizeRows(at::randn(shape, init, at::TensorOptions().dtype(at::kFloat)));
      }
      st->leaves[name] = t.to(st->device).requires_grad_(true);
      st->order.push_back(name);
    }
    st->adam = std::make_unique<Adam>(st->Params(), opt.beta1, opt.beta2);
    for (size_t m = 0; m < st->clips.size(); ++m) {
      const auto& c = st->clips[m];
      ASSIGN_OR_RETURN(at::Tensor src, TemplateEmbeddings(c, opt.source_text, text_cache, st->device));
      ASSIGN_OR_RETURN(at::Tensor tgt, TemplateEmbeddings(c, opt.target_text, text_cache, st->device));
      st->directions.push_back((tgt - src).mean(0));
    }
    st->preview_z = PreviewLatents(opt.seed, opt.preview_count, base->config().style_dim, st->device);
  } catch (const c10::Error& e) {
    return TorchErrorStatus(e, "setting up domain training failed");
  }
  return std::unique_ptr<DomainTrainer>(new DomainTrainer(std::move(st)));
}

absl::StatusOr<std::map<std::string, float>> DomainTrainer::Step() {
  State& s = *state_;
  try {
    // Every random draw of a step comes from (seed, step), so a resumed job replays it.
    at::Generator gen = at::detail::createCPUGenerator(s.opt.seed * 1000003ULL + static_cast<uint64_t>(s.step) + 1);
    const int64_t b = s.opt.batch_size;
    const StepLatents latents = DrawStepLatents(s.g(), b, s.opt.mixing, gen);
    const at::Tensor& frozen_wplus = latents.frozen_wplus;
    const at::Tensor& train_wplus = latents.train_wplus;
    std::map<std::string, float> terms;
    const auto frozen_noise = s.RandomNoise(b, gen);
    const auto train_noise = s.RandomNoise(b, gen);
    const at::Tensor loss = s.Loss(frozen_wplus, train_wplus, frozen_noise, train_noise, &terms);
    return s.Update(loss, std::move(terms));
  } catch (const c10::Error& e) {
    return TorchErrorStatus(e, absl::StrCat("training step ", s.step, " failed"));
  }
}

absl::StatusOr<std::map<std::string, float>> DomainTrainer::StepOn(const FloatTensor& z) {
  State& s = *state_;
  ASSIGN_OR_RETURN(at::Tensor wplus, s.FixedWPlus(z));
  try {
    std::map<std::string, float> terms;
    const at::Tensor loss = s.Loss(wplus, wplus, s.g().noises, s.g().noises, &terms);
    return s.Update(loss, std::move(terms));
  } catch (const c10::Error& e) {
    return TorchErrorStatus(e, absl::StrCat("training step ", s.step, " failed"));
  }
}

absl::StatusOr<stylegan2::DomainTensors> DomainTrainer::Gradient(const FloatTensor& z) {
  State& s = *state_;
  ASSIGN_OR_RETURN(at::Tensor wplus, s.FixedWPlus(z));
  try {
    std::map<std::string, float> terms;
    s.Loss(wplus, wplus, s.g().noises, s.g().noises, &terms).backward();
    stylegan2::DomainTensors out;
    out.kind = s.opt.kind;
    for (auto& [name, t] : s.leaves) {
      out.tensors[name] = t.grad().defined() ? FromTorch(t.grad()) : FromTorch(at::zeros_like(t));
      t.mutable_grad() = at::Tensor();
    }
    return out;
  } catch (const c10::Error& e) {
    return TorchErrorStatus(e, "computing the gradient failed");
  }
}

absl::StatusOr<float> DomainTrainer::EvalDirectionLoss(uint64_t seed, int batch) const {
  const State& s = *state_;
  try {
    c10::NoGradGuard ng;
    at::Generator gen = at::detail::createCPUGenerator(seed);
    const auto& c = s.cfg();
    at::Tensor z = at::randn({batch, c.style_dim}, gen, at::TensorOptions().dtype(at::kFloat)).to(s.device);
    const at::Tensor wplus = s.WPlus(s.g().Map(z));
    const auto noise = s.RandomNoise(batch, gen);
    const stylegan2::Domain::Impl d = s.Domain();
    const at::Tensor fi = s.g().RenderWPlus(wplus, noise, nullptr, s.opt.form);
    const at::Tensor ti = s.g().RenderWPlus(wplus, noise, &d, s.opt.form);
    double total = 0;
    for (size_t m = 0; m < s.clips.size(); ++m) {
      total += s.clips[m].weight * DirectionLoss(s.Embed(m, fi), s.Embed(m, ti), s.directions[m]).item<double>();
    }
    return static_cast<float>(total);
  } catch (const c10::Error& e) {
    return TorchErrorStatus(e, "evaluation failed");
  }
}

absl::StatusOr<FloatTensor> DomainTrainer::Preview(bool frozen) const {
  const State& s = *state_;
  try {
    c10::NoGradGuard ng;
    at::Tensor w = s.g().Map(s.preview_z);
    w = s.g().mean_latent + s.opt.preview_truncation * (w - s.g().mean_latent);
    if (frozen) return FromTorch(s.g().RenderWPlus(s.WPlus(w), s.g().noises, nullptr, s.opt.form));
    const stylegan2::Domain::Impl d = s.Domain();
    return FromTorch(s.g().RenderWPlus(s.WPlus(w), s.g().noises, &d, s.opt.form));
  } catch (const c10::Error& e) {
    return TorchErrorStatus(e, "preview failed");
  }
}

stylegan2::DomainTensors DomainTrainer::Parameters() const {
  stylegan2::DomainTensors out;
  out.kind = state_->opt.kind;
  c10::NoGradGuard ng;
  for (const auto& [name, t] : state_->leaves) out.tensors[name] = FromTorch(t.detach());
  return out;
}

absl::Status DomainTrainer::SetParameters(const stylegan2::DomainTensors& tensors) {
  State& s = *state_;
  if (tensors.kind != s.opt.kind || tensors.tensors.size() != s.leaves.size()) {
    return absl::InvalidArgumentError(absl::StrCat("expected the ", s.leaves.size(), " tensors of a ",
                                                   stylegan2::DomainKindName(s.opt.kind), " domain"));
  }
  for (const auto& [name, t] : tensors.tensors) {
    auto it = s.leaves.find(name);
    if (it == s.leaves.end() || !it->second.sizes().equals(t.shape)) {
      return absl::InvalidArgumentError(absl::StrCat("domain tensor ", name, " does not fit"));
    }
  }
  c10::NoGradGuard ng;
  for (const auto& [name, t] : tensors.tensors) s.leaves[name].copy_(ToTorch(t, s.device));
  return absl::OkStatus();
}

absl::StatusOr<FloatTensor> DomainTrainer::TextDirection(size_t clip_index) const {
  if (clip_index >= state_->directions.size()) return absl::OutOfRangeError("no such CLIP model");
  return FromTorch(state_->directions[clip_index]);
}

absl::Status DomainTrainer::SaveCheckpoint(const std::string& path) const {
  const State& s = *state_;
  std::map<std::string, FloatTensor> tensors;
  c10::NoGradGuard ng;
  for (size_t i = 0; i < s.order.size(); ++i) {
    const std::string& n = s.order[i];
    tensors["param/" + n] = FromTorch(s.leaves.at(n).detach());
    tensors["adam_m/" + n] = FromTorch(s.adam->m()[i]);
    tensors["adam_v/" + n] = FromTorch(s.adam->v()[i]);
  }
  return SaveSafetensors(path, tensors,
                         {{"format", kCheckpointFormat},
                          {"kind", stylegan2::DomainKindName(s.opt.kind)},
                          {"step", std::to_string(s.step)},
                          {"adam_steps", std::to_string(s.adam->steps())}});
}

absl::Status DomainTrainer::RestoreCheckpoint(const std::string& path) {
  State& s = *state_;
  ASSIGN_OR_RETURN(SafetensorsFile f, LoadSafetensors(path));
  int64_t step = 0, adam_steps = 0;
  if (f.metadata["format"] != kCheckpointFormat || !absl::SimpleAtoi(f.metadata["step"], &step) ||
      !absl::SimpleAtoi(f.metadata["adam_steps"], &adam_steps)) {
    return absl::InvalidArgumentError(absl::StrCat(path, " is not a ganserve domain training checkpoint"));
  }
  if (f.metadata["kind"] != stylegan2::DomainKindName(s.opt.kind)) {
    return absl::InvalidArgumentError(absl::StrCat(path, " trains a ", f.metadata["kind"], " domain"));
  }
  std::vector<at::Tensor> m, v, values;
  for (const std::string& n : s.order) {
    auto p = f.tensors.find("param/" + n), pm = f.tensors.find("adam_m/" + n), pv = f.tensors.find("adam_v/" + n);
    if (p == f.tensors.end() || pm == f.tensors.end() || pv == f.tensors.end()) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": no entry for ", n));
    }
    ASSIGN_OR_RETURN(at::Tensor value, ToTorchFloat(p->second, s.device));
    ASSIGN_OR_RETURN(at::Tensor mm, ToTorchFloat(pm->second, s.device));
    ASSIGN_OR_RETURN(at::Tensor vv, ToTorchFloat(pv->second, s.device));
    const auto want = s.leaves.at(n).sizes();
    if (!value.sizes().equals(want) || !mm.sizes().equals(want) || !vv.sizes().equals(want)) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": ", n, " has the wrong shape"));
    }
    values.push_back(value);
    m.push_back(mm);
    v.push_back(vv);
  }
  c10::NoGradGuard ng;
  for (size_t i = 0; i < s.order.size(); ++i) s.leaves[s.order[i]].copy_(values[i]);
  s.adam->SetState(std::move(m), std::move(v), adam_steps);
  s.step = step;
  return absl::OkStatus();
}

}  // namespace ganserve::core::adapt
