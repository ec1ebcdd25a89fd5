#include "core/invert/projector.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <c10/core/GradMode.h>

#include <cmath>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "core/checkpoint/safetensors.h"
#include "core/models/clip/clip_model_impl.h"
#include "core/models/clip/preprocess.h"
#include "core/models/common/adam.h"
#include "core/models/common/torch_convert.h"
#include "core/models/lpips/lpips_impl.h"
#include "core/models/stylegan2/generator_impl.h"
#include "core/util/status_macros.h"

namespace ganserve::core::invert {
namespace {

constexpr int kMeanSamples = 10000;

at::Tensor NoiseRegularize(const std::vector<at::Tensor>& noises) {
  at::Tensor loss = at::zeros({}, noises[0].options());
  for (at::Tensor n : noises) {
    int64_t size = n.size(2);
    while (true) {
      loss = loss + (n * at::roll(n, {1}, {3})).mean().pow(2) + (n * at::roll(n, {1}, {2})).mean().pow(2);
      if (size <= 8) break;
      n = n.reshape({-1, 1, size / 2, 2, size / 2, 2}).mean({3, 5});
      size /= 2;
    }
  }
  return loss;
}

}  // namespace

struct Projector::State {
  ProjectorOptions opt;
  std::shared_ptr<const stylegan2::Generator> gen;
  std::shared_ptr<const clip::ClipModel> clip;
  std::shared_ptr<const lpips::Lpips> lpips;
  c10::Device device{c10::kCPU};
  at::Tensor target;       // [1, 3, R, R] in [-1, 1], R = min(resolution, 256)
  at::Tensor target_emb;   // CLIP embedding of the target (unit), when clip
  at::Tensor latent_mean;  // [sd]
  double latent_std = 0;
  at::Tensor latent;               // leaf: [1, sd] (w) or [1, n_latent, sd] (w+)
  std::vector<at::Tensor> noises;  // leaves [1, 1, r, r]
  std::unique_ptr<Adam> adam;      // over latent + noises
  int64_t step = 0;
  int compare_res = 0;

  const stylegan2::Generator::Impl& g() const { return gen->impl(); }

  at::Tensor WPlus(const at::Tensor& w) const {
    const auto& c = gen->config();
    return w.dim() == 2 ? w.unsqueeze(1).expand({w.size(0), c.n_latent, c.style_dim}) : w;
  }

  at::Tensor Render(const at::Tensor& latent) const {
    return g().RenderWPlus(WPlus(latent), noises, gen->domain() ? &gen->domain()->impl() : nullptr);
  }

  at::Tensor Downsample(const at::Tensor& img) const {
    const int64_t h = img.size(2);
    if (h <= compare_res) return img;
    const int64_t f = h / compare_res;
    return img.reshape({img.size(0), 3, h / f, f, h / f, f}).mean({3, 5});
  }

  std::vector<at::Tensor> Params() {
    std::vector<at::Tensor> p{latent};
    p.insert(p.end(), noises.begin(), noises.end());
    return p;
  }
};

Projector::Projector(std::unique_ptr<State> s) : s_(std::move(s)) {}
Projector::~Projector() = default;
int64_t Projector::step() const { return s_->step; }
int64_t Projector::total_steps() const { return s_->opt.steps; }

absl::StatusOr<std::unique_ptr<Projector>> Projector::Create(std::shared_ptr<const stylegan2::Generator> generator,
                                                             const Rgb8Image& target, ProjectorOptions opt,
                                                             std::shared_ptr<const clip::ClipModel> clip_model,
                                                             std::shared_ptr<const lpips::Lpips> lpips_model) {
  if (generator == nullptr) return absl::InvalidArgumentError("no generator");
  if (target.width <= 0 || target.height <= 0) return absl::InvalidArgumentError("the image is empty");
  const bool started = opt.start_wplus.has_value();
  if (opt.steps < (started ? 0 : 1) || !(opt.lr > 0) || opt.noise < 0 || !(opt.noise_ramp > 0) ||
      opt.noise_regularize < 0 || opt.mse < 0 || opt.clip < 0) {
    return absl::InvalidArgumentError("projection options out of range");
  }
  if (started && !opt.w_plus) return absl::InvalidArgumentError("a projection from a w+ start works in w+");
  auto s = std::make_unique<State>();
  s->opt = opt;
  s->gen = std::move(generator);
  s->lpips = std::move(lpips_model);
  s->clip = opt.clip > 0 && s->lpips == nullptr ? std::move(clip_model) : nullptr;
  s->device = s->g().device;
  const auto& c = s->gen->config();
  s->compare_res = std::min(c.resolution, 256);
  try {
    // rosinality's transforms.Resize(min(size, 256)) + CenterCrop on a PIL image: bilinear.
    Rgb8Image fitted = clip::ResizeAndCenterCrop(target, s->compare_res, clip::PilFilter::kBilinear);
    s->target = ToTorch(Rgb8ToFloat(fitted), s->device);
    at::Generator rng = at::detail::createCPUGenerator(opt.seed * 7919ULL + 13);
    {
      c10::NoGradGuard ng;
      if (!started || opt.steps > 0) {  // the start and the latent noise's scale
        at::Tensor z = at::randn({kMeanSamples, c.style_dim}, rng, at::TensorOptions().dtype(at::kFloat)).to(s->device);
        at::Tensor w = s->g().Map(z);
        s->latent_mean = w.mean(0);
        s->latent_std = std::sqrt((w - s->latent_mean).pow(2).sum().item<double>() / kMeanSamples);
      }
      if (s->clip != nullptr) {
        const auto& ci = s->clip->impl();
        at::Tensor e = ci.EncodeImage(clip::PreprocessGeneratorOutput(s->target, ci.config.image_resolution));
        s->target_emb = e / e.norm(2, -1, true);
      }
    }
    at::Tensor init;
    if (started) {
      if (opt.start_wplus->shape != std::vector<int64_t>{1, c.n_latent, c.style_dim}) {
        return absl::InvalidArgumentError(absl::StrCat("the start w+ has shape ", ShapeString(opt.start_wplus->shape),
                                                       ", the generator takes [1, ", c.n_latent, ", ", c.style_dim,
                                                       "]"));
      }
      init = ToTorch(*opt.start_wplus, s->device);
    } else {
      init = s->latent_mean.detach().clone().unsqueeze(0);
      if (opt.w_plus) init = init.unsqueeze(1).repeat({1, c.n_latent, 1});
    }
    s->latent = init.requires_grad_(true);
    if (!opt.start_noises.empty() && opt.start_noises.size() != static_cast<size_t>(c.num_layers)) {
      return absl::InvalidArgumentError(
          absl::StrCat("the start has ", opt.start_noises.size(), " noise maps, the generator ", c.num_layers));
    }
    for (int i = 0; i < c.num_layers; ++i) {
      const int64_t r = int64_t{1} << ((i + 5) / 2);
      at::Tensor n = at::randn({1, 1, r, r}, rng, at::TensorOptions().dtype(at::kFloat));
      if (!opt.start_noises.empty()) {
        const FloatTensor& given = opt.start_noises[static_cast<size_t>(i)];
        if (given.shape != std::vector<int64_t>{1, 1, r, r}) {
          return absl::InvalidArgumentError(absl::StrCat("start noise map ", i, " has shape ", ShapeString(given.shape),
                                                         ", expected [1, 1, ", r, ", ", r, "]"));
        }
        n = ToTorch(given, c10::kCPU);
      }
      s->noises.push_back(n.to(s->device).requires_grad_(true));
    }
    s->adam = std::make_unique<Adam>(s->Params());
  } catch (const c10::Error& e) {
    return TorchErrorStatus(e, "setting up the projection failed");
  }
  return std::unique_ptr<Projector>(new Projector(std::move(s)));
}

absl::StatusOr<std::map<std::string, float>> Projector::Step() {
  State& s = *s_;
  std::map<std::string, float> out;
  try {
    const double t = static_cast<double>(s.step) / s.opt.steps;
    const double lr = RampedLearningRate(t, s.opt.lr);
    const double strength = s.latent_std * s.opt.noise * std::pow(std::max(0.0, 1 - t / s.opt.noise_ramp), 2);
    at::Generator rng = at::detail::createCPUGenerator(s.opt.seed * 1000003ULL + static_cast<uint64_t>(s.step) + 1);
    at::Tensor perturb = at::randn(s.latent.sizes(), rng, at::TensorOptions().dtype(at::kFloat)).to(s.device);
    at::Tensor img = s.Downsample(s.Render(s.latent + perturb * strength));
    at::Tensor mse = (img - s.target).pow(2).mean();
    at::Tensor nreg = NoiseRegularize(s.noises);
    at::Tensor loss = s.opt.mse * mse + s.opt.noise_regularize * nreg;
    if (s.lpips != nullptr) {
      at::Tensor p = s.lpips->impl().Forward(img, s.target).sum();
      out["lpips"] = p.item<float>();
      loss = loss + p;
    }
    float clip_loss = 0;
    if (s.clip != nullptr) {
      const auto& ci = s.clip->impl();
      at::Tensor e = ci.EncodeImage(clip::PreprocessGeneratorOutput(img, ci.config.image_resolution));
      at::Tensor cl = 1 - (e / e.norm(2, -1, true) * s.target_emb).sum(-1).mean();
      clip_loss = cl.item<float>();
      loss = loss + s.opt.clip * cl;
    }
    loss.backward();
    s.adam->Step(s.Params(), lr);
    c10::NoGradGuard ng;
    for (auto& n : s.noises) {  // noise_normalize_
      at::Tensor mean = n.mean(), std = n.std();
      n.sub_(mean).div_(std);
    }
    s.step += 1;
    out["total"] = loss.item<float>();
    out["mse"] = mse.item<float>();
    out["noise_regularize"] = nreg.item<float>();
    if (s.clip != nullptr) out["clip"] = clip_loss;
  } catch (const c10::Error& e) {
    return TorchErrorStatus(e, absl::StrCat("projection step ", s.step, " failed"));
  }
  return out;
}

FloatTensor Projector::Target() const { return FromTorch(s_->target); }

absl::StatusOr<FloatTensor> Projector::Current() const {
  try {
    c10::NoGradGuard ng;
    return FromTorch(s_->Render(s_->latent));
  } catch (const c10::Error& e) {
    return TorchErrorStatus(e, "rendering failed");
  }
}

absl::StatusOr<Inversion> Projector::Result() const {
  Inversion inv;
  try {
    c10::NoGradGuard ng;
    inv.wplus = FromTorch(s_->WPlus(s_->latent).contiguous());
    for (size_t i = 0; i < s_->noises.size(); ++i) inv.noises[absl::StrCat("noise_", i)] = FromTorch(s_->noises[i]);
    at::Tensor full = s_->Render(s_->latent);
    inv.reconstruction = FromTorch(full);
    // PSNR on [0, 1] pixels at the comparison resolution.
    const double mse = ((s_->Downsample(full).clamp(-1, 1) - s_->target) / 2).pow(2).mean().item<double>();
    inv.psnr = static_cast<float>(10 * std::log10(1.0 / std::max(mse, 1e-12)));
    if (s_->lpips != nullptr) {
      inv.lpips = s_->lpips->impl().Forward(s_->Downsample(full).clamp(-1, 1), s_->target).item<float>();
      inv.loss = s_->opt.mse > 0 ? "lpips+mse" : "lpips";
    } else {
      inv.loss = s_->clip != nullptr ? "mse+clip" : "mse";
    }
  } catch (const c10::Error& e) {
    return TorchErrorStatus(e, "collecting the result failed");
  }
  return inv;
}

absl::Status Projector::SaveCheckpoint(const std::string& path) const {
  std::map<std::string, FloatTensor> t{{"latent", FromTorch(s_->latent)}};
  for (size_t i = 0; i < s_->noises.size(); ++i) t[absl::StrCat("noise_", i)] = FromTorch(s_->noises[i]);
  return SaveSafetensors(path, t, {{"format", "ganserve-projection-v1"}, {"step", std::to_string(s_->step)}});
}

absl::Status Projector::RestoreCheckpoint(const std::string& path) {
  ASSIGN_OR_RETURN(SafetensorsFile f, LoadSafetensors(path));
  int64_t step = 0;
  if (f.metadata["format"] != "ganserve-projection-v1" || !absl::SimpleAtoi(f.metadata["step"], &step) ||
      f.tensors.count("latent") == 0) {
    return absl::InvalidArgumentError(absl::StrCat(path, " is not a projection checkpoint"));
  }
  ASSIGN_OR_RETURN(at::Tensor latent, ToTorchFloat(f.tensors.at("latent"), s_->device));
  if (!latent.sizes().equals(s_->latent.sizes())) return absl::InvalidArgumentError("checkpoint latent shape differs");
  s_->latent = latent.requires_grad_(true);
  for (size_t i = 0; i < s_->noises.size(); ++i) {
    auto it = f.tensors.find(absl::StrCat("noise_", i));
    if (it == f.tensors.end()) return absl::InvalidArgumentError("checkpoint lacks noise maps");
    ASSIGN_OR_RETURN(at::Tensor n, ToTorchFloat(it->second, s_->device));
    s_->noises[i] = n.requires_grad_(true);
  }
  s_->step = step;
  return absl::OkStatus();
}

absl::Status SaveInversion(const std::string& path, const Inversion& inv, const std::string& model) {
  std::map<std::string, FloatTensor> t = inv.noises;
  t["wplus"] = inv.wplus;
  return SaveSafetensors(path, t,
                         {{"format", "ganserve-inversion-v1"},
                          {"model", model},
                          {"loss", inv.loss},
                          {"psnr", absl::StrCat(inv.psnr)},
                          {"lpips", absl::StrCat(inv.lpips)}});
}

absl::StatusOr<Inversion> LoadInversion(const std::string& path, std::string* model) {
  ASSIGN_OR_RETURN(SafetensorsFile f, LoadSafetensors(path));
  if (f.metadata["format"] != "ganserve-inversion-v1" || f.tensors.count("wplus") == 0) {
    return absl::InvalidArgumentError(absl::StrCat(path, " is not an inversion"));
  }
  Inversion inv;
  for (const auto& [k, v] : f.tensors) {
    ASSIGN_OR_RETURN(FloatTensor t, ToFloatTensor(v));
    if (k == "wplus") {
      inv.wplus = std::move(t);
    } else {
      inv.noises[k] = std::move(t);
    }
  }
  inv.loss = f.metadata["loss"];
  if (!absl::SimpleAtof(f.metadata["psnr"], &inv.psnr)) inv.psnr = 0;
  if (!absl::SimpleAtof(f.metadata["lpips"], &inv.lpips)) inv.lpips = -1;
  if (model != nullptr) *model = f.metadata["model"];
  return inv;
}

}  // namespace ganserve::core::invert
