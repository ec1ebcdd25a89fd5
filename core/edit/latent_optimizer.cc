#include "core/edit/latent_optimizer.h"

#include <ATen/ATen.h>

#include <cmath>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/edit/clip_loss_impl.h"
#include "core/models/arcface/arcface_impl.h"
#include "core/models/common/adam.h"
#include "core/models/common/torch_convert.h"
#include "core/models/stylegan2/generator_impl.h"
#include "core/util/status_macros.h"

namespace ganserve::core::edit {

struct LatentOptimizer::State {
  LatentOptimizationOptions opt;
  std::shared_ptr<const stylegan2::Generator> gen;
  std::shared_ptr<const clip::ClipModel> clip;
  std::shared_ptr<const arcface::ArcFace> arcface;  // null without the identity loss
  at::Tensor start;                                 // [1, n_latent, sd]
  at::Tensor start_image;                           // the starting latent's render (identity loss only)
  at::Tensor latent;                                // leaf
  at::Tensor text;                                  // unit text embedding [D]
  std::vector<at::Tensor> noises;
  std::unique_ptr<Adam> adam;
  int64_t step = 0;

  at::Tensor Render(const at::Tensor& wplus) const {
    return gen->impl().RenderWPlus(wplus, noises, gen->domain() ? &gen->domain()->impl() : nullptr);
  }

  at::Tensor ClipLoss(const at::Tensor& img) const { return StyleClipLoss(*clip, img, text); }
};

LatentOptimizer::LatentOptimizer(std::unique_ptr<State> s) : s_(std::move(s)) {}
LatentOptimizer::~LatentOptimizer() = default;
int64_t LatentOptimizer::step() const { return s_->step; }
int64_t LatentOptimizer::total_steps() const { return s_->opt.steps; }

absl::StatusOr<std::unique_ptr<LatentOptimizer>> LatentOptimizer::Create(
    std::shared_ptr<const stylegan2::Generator> generator, std::shared_ptr<const clip::ClipModel> clip,
    const FloatTensor& start_wplus, const FloatTensor& text_embedding, const std::vector<FloatTensor>& noise_maps,
    LatentOptimizationOptions o, std::shared_ptr<const arcface::ArcFace> arcface) {
  if (generator == nullptr || clip == nullptr) {
    return absl::InvalidArgumentError("a generator and a CLIP model are needed");
  }
  const auto& c = generator->config();
  RETURN_IF_ERROR(CheckStyleClipPooling(c.resolution, *clip));
  if (start_wplus.shape != std::vector<int64_t>{1, c.n_latent, c.style_dim}) {
    return absl::InvalidArgumentError(absl::StrCat("the start must be one w+ [1, ", c.n_latent, ", ", c.style_dim,
                                                   "], got ", ShapeString(start_wplus.shape)));
  }
  if (text_embedding.numel() != clip->config().embed_dim) {
    return absl::InvalidArgumentError("the text embedding does not match the CLIP model");
  }
  if (o.steps < 1 || !(o.lr > 0) || !(o.l2_lambda >= 0) || !std::isfinite(o.lr) || !std::isfinite(o.l2_lambda) ||
      !(o.id_lambda >= 0) || !std::isfinite(o.id_lambda)) {
    return absl::InvalidArgumentError("latent optimization options out of range");
  }
  if (o.id_lambda > 0 && arcface == nullptr) {
    return absl::InvalidArgumentError("id_lambda > 0 needs an ArcFace model for the identity loss");
  }
  if (o.id_lambda > 0 && c.resolution < 64) {
    return absl::InvalidArgumentError(
        absl::StrCat("the identity loss crops a 256 px view: the generator needs at least 64 px, has ", c.resolution));
  }
  auto s = std::make_unique<State>();
  s->opt = o;
  s->gen = std::move(generator);
  s->clip = std::move(clip);
  if (o.id_lambda > 0) s->arcface = std::move(arcface);
  try {
    const c10::Device dev = s->gen->impl().device;
    s->start = ToTorch(start_wplus, dev);
    s->latent = s->start.clone().requires_grad_(true);
    at::Tensor t = ToTorch(text_embedding, dev).view({-1});
    s->text = t / t.norm();
    if (noise_maps.empty()) {
      s->noises = s->gen->impl().noises;
    } else {
      if (static_cast<int>(noise_maps.size()) != c.num_layers) {
        return absl::InvalidArgumentError(absl::StrCat("noise_maps needs ", c.num_layers, " maps"));
      }
      for (const auto& m : noise_maps) s->noises.push_back(ToTorch(m, dev));
    }
    if (s->arcface != nullptr) {
      c10::NoGradGuard ng;
      s->start_image = s->Render(s->start);
    }
    s->adam = std::make_unique<Adam>(std::vector<at::Tensor>{s->latent});
  } catch (const c10::Error& e) {
    return TorchErrorStatus(e, "setting up the latent optimization failed");
  }
  return std::unique_ptr<LatentOptimizer>(new LatentOptimizer(std::move(s)));
}

absl::StatusOr<std::map<std::string, float>> LatentOptimizer::Step() {
  State& s = *s_;
  if (s.step >= s.opt.steps) return absl::FailedPreconditionError("all steps are done");
  std::map<std::string, float> out;
  try {
    const double lr = RampedLearningRate(static_cast<double>(s.step) / s.opt.steps, s.opt.lr);
    const at::Tensor image = s.Render(s.latent);
    at::Tensor clip_loss = s.ClipLoss(image);
    at::Tensor l2 = (s.latent - s.start).pow(2).sum();
    at::Tensor loss = clip_loss + s.opt.l2_lambda * l2;
    if (s.arcface != nullptr) {
      const at::Tensor id = s.arcface->impl().IdLoss(image, s.start_image);
      loss = loss + s.opt.id_lambda * id;
      out["id"] = id.item<float>();
    }
    loss.backward();
    s.adam->Step({s.latent}, lr);
    s.step += 1;
    out["total"] = loss.item<float>();
    out["clip"] = clip_loss.item<float>();
    out["l2"] = l2.item<float>();
  } catch (const c10::Error& e) {
    return TorchErrorStatus(e, absl::StrCat("latent optimization step ", s.step, " failed"));
  }
  return out;
}

FloatTensor LatentOptimizer::WPlus() const { return FromTorch(s_->latent); }

}  // namespace ganserve::core::edit
