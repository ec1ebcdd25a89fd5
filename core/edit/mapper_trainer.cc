#include "core/edit/mapper_trainer.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <c10/core/GradMode.h>

#include <algorithm>
#include <cmath>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "core/checkpoint/safetensors.h"
#include "core/edit/clip_loss_impl.h"
#include "core/edit/latent_mapper_impl.h"
#include "core/models/arcface/arcface_impl.h"
#include "core/models/common/ranger.h"
#include "core/models/common/torch_convert.h"
#include "core/models/stylegan2/generator_impl.h"
#include "core/util/status_macros.h"

namespace ganserve::core::edit {
namespace {

constexpr char kCheckpointFormat[] = "ganserve-mapper-v1";

uint64_t Mix(uint64_t seed, uint64_t salt) { return seed * 1000003ULL + salt; }

}  // namespace

struct MapperTrainer::State {
  MapperTrainerOptions opt;
  std::shared_ptr<const stylegan2::Generator> gen;
  std::shared_ptr<const clip::ClipModel> clip;
  std::shared_ptr<const arcface::ArcFace> arcface;  // null when id_lambda is 0
  std::unique_ptr<LatentMapper> mapper;
  std::unique_ptr<Ranger> ranger;
  at::Tensor text;     // unit [D]
  at::Tensor latents;  // [N, D] (random: every row equal) or [N, L, D]
  at::Tensor preview;  // [P, L, D]
  int64_t step = 0;

  int64_t n() const { return latents.size(0); }
  int64_t per_epoch() const { return n() / opt.batch_size; }

  at::Tensor AsWPlus(const at::Tensor& w) const {
    if (w.dim() == 3) return w;
    return w.unsqueeze(1).expand({w.size(0), gen->config().n_latent, w.size(1)}).contiguous();
  }

  at::Tensor Render(const at::Tensor& wplus) const {
    return gen->impl().RenderWPlus(wplus, gen->impl().noises, gen->domain() ? &gen->domain()->impl() : nullptr);
  }

  // The batch of this step: epoch e's permutation of the latents from (seed, e).
  at::Tensor Batch() const {
    const int64_t epoch = step / per_epoch(), pos = step % per_epoch();
    at::Generator g = at::detail::createCPUGenerator(Mix(opt.seed, 101 + static_cast<uint64_t>(epoch)));
    const at::Tensor perm = at::randperm(n(), g, at::TensorOptions().dtype(at::kLong));
    const at::Tensor idx = perm.narrow(0, pos * opt.batch_size, opt.batch_size).to(latents.device());
    return AsWPlus(latents.index_select(0, idx));
  }
};

MapperTrainer::MapperTrainer(std::unique_ptr<State> s) : s_(std::move(s)) {}
MapperTrainer::~MapperTrainer() = default;
int64_t MapperTrainer::step() const { return s_->step; }
int64_t MapperTrainer::total_steps() const { return s_->opt.steps; }
const LatentMapper& MapperTrainer::mapper() const { return *s_->mapper; }

absl::Status MapperTrainer::CheckModels(const stylegan2::Generator& generator, const clip::ClipModel& clip) {
  return CheckStyleClipPooling(generator.config().resolution, clip);
}

absl::StatusOr<std::unique_ptr<MapperTrainer>> MapperTrainer::Create(
    std::shared_ptr<const stylegan2::Generator> generator, std::shared_ptr<const clip::ClipModel> clip,
    const FloatTensor& text_embedding, const FloatTensor& latents, MapperTrainerOptions o,
    std::shared_ptr<const arcface::ArcFace> arcface) {
  if (generator == nullptr || clip == nullptr) {
    return absl::InvalidArgumentError("a generator and a CLIP model are needed");
  }
  const auto& c = generator->config();
  RETURN_IF_ERROR(CheckStyleClipPooling(c.resolution, *clip));
  if (text_embedding.numel() != clip->config().embed_dim) {
    return absl::InvalidArgumentError("the text embedding does not match the CLIP model");
  }
  if (o.steps < 1 || o.batch_size < 1 || !(o.lr > 0) || !std::isfinite(o.lr) || !(o.clip_lambda >= 0) ||
      !(o.latent_l2_lambda >= 0) || !std::isfinite(o.clip_lambda) || !std::isfinite(o.latent_l2_lambda) ||
      o.preview_count < 0 || !(o.truncation >= 0 && o.truncation <= 1) || !(o.id_lambda >= 0) ||
      !std::isfinite(o.id_lambda)) {
    return absl::InvalidArgumentError("mapper training options out of range");
  }
  if (o.id_lambda > 0 && arcface == nullptr) {
    return absl::InvalidArgumentError("id_lambda > 0 needs an ArcFace model for the identity loss");
  }
  if (o.id_lambda > 0 && c.resolution < 64) {
    return absl::InvalidArgumentError(
        absl::StrCat("the identity loss crops a 256 px view: the generator needs at least 64 px, has ", c.resolution));
  }
  const bool random = latents.data.empty();
  if (!random && (latents.shape.size() != 3 || latents.shape[1] != c.n_latent || latents.shape[2] != c.style_dim)) {
    return absl::InvalidArgumentError(absl::StrCat("training latents must be w+ [N, ", c.n_latent, ", ", c.style_dim,
                                                   "], got ", ShapeString(latents.shape)));
  }
  const int64_t count = random ? o.train_latents : latents.shape[0];
  if (count < o.batch_size) {
    return absl::InvalidArgumentError(
        absl::StrCat("mapper training needs at least batch_size (", o.batch_size, ") latents, has ", count));
  }
  o.mapper.dim = c.style_dim;
  auto s = std::make_unique<State>();
  s->opt = o;
  s->gen = std::move(generator);
  s->clip = std::move(clip);
  if (o.id_lambda > 0) s->arcface = std::move(arcface);
  ASSIGN_OR_RETURN(s->mapper, LatentMapper::Random(o.mapper, Mix(o.seed, 7), s->gen->device()));
  try {
    const c10::Device dev = s->gen->impl().device;
    at::Tensor t = ToTorch(text_embedding, dev).view({-1});
    s->text = t / t.norm();
    if (random) {
      c10::NoGradGuard ng;
      at::Generator g = at::detail::createCPUGenerator(Mix(o.seed, 3));
      const at::Tensor z = at::randn({count, c.style_dim}, g, at::TensorOptions().dtype(at::kFloat)).to(dev);
      const at::Tensor mean = s->gen->impl().mean_latent.view({1, -1});
      std::vector<at::Tensor> ws;
      for (int64_t i = 0; i < count; i += 1024) {
        const at::Tensor w = s->gen->impl().Map(z.narrow(0, i, std::min<int64_t>(1024, count - i)));
        ws.push_back(mean + o.truncation * (w - mean));
      }
      s->latents = at::cat(ws, 0);
    } else {
      s->latents = ToTorch(latents, dev);
    }
    const int64_t p = std::min(o.preview_count, count);
    s->preview = p > 0 ? s->AsWPlus(s->latents.narrow(0, 0, p)) : at::Tensor();
    for (auto& param : s->mapper->mutable_impl().params) param.requires_grad_(true);
    s->ranger = std::make_unique<Ranger>(s->mapper->impl().params);
  } catch (const c10::Error& e) {
    return TorchErrorStatus(e, "setting up mapper training failed");
  }
  return std::unique_ptr<MapperTrainer>(new MapperTrainer(std::move(s)));
}

absl::StatusOr<std::map<std::string, float>> MapperTrainer::Step() {
  State& s = *s_;
  if (s.step >= s.opt.steps) return absl::FailedPreconditionError("all steps are done");
  std::map<std::string, float> out;
  try {
    const at::Tensor w = s.Batch();
    const at::Tensor w_hat = w + kMapperResidualScale * s.mapper->impl().Forward(w);
    const at::Tensor x_hat = s.Render(w_hat);
    const at::Tensor clip_loss = StyleClipLoss(*s.clip, x_hat, s.text);
    const at::Tensor l2 = (w_hat - w).pow(2).mean();
    at::Tensor loss = s.opt.clip_lambda * clip_loss + s.opt.latent_l2_lambda * l2;
    if (s.arcface != nullptr) {
      at::Tensor x;
      {
        c10::NoGradGuard ng;
        x = s.Render(w);
      }
      const at::Tensor id = s.arcface->impl().IdLoss(x_hat, x);
      loss = loss + s.opt.id_lambda * id;
      out["id"] = id.item<float>();
    }
    loss.backward();
    s.ranger->Step(s.mapper->impl().params, s.opt.lr);
    s.step += 1;
    out["total"] = loss.item<float>();
    out["clip"] = clip_loss.item<float>();
    out["l2"] = l2.item<float>();
  } catch (const c10::Error& e) {
    return TorchErrorStatus(e, absl::StrCat("mapper training step ", s.step, " failed"));
  }
  return out;
}

absl::StatusOr<FloatTensor> MapperTrainer::Preview(bool source) const {
  const State& s = *s_;
  if (!s.preview.defined()) return absl::FailedPreconditionError("no preview latents (preview_count 0)");
  try {
    c10::NoGradGuard ng;
    at::Tensor w = s.preview;
    if (!source) w = w + kMapperResidualScale * s.mapper->impl().Forward(w);
    return FromTorch(s.Render(w));
  } catch (const c10::Error& e) {
    return TorchErrorStatus(e, "rendering the mapper preview failed");
  }
}

absl::Status MapperTrainer::SaveCheckpoint(const std::string& path) const {
  const State& s = *s_;
  std::map<std::string, FloatTensor> t;
  const auto& names = s.mapper->impl().names;
  const auto& params = s.mapper->impl().params;
  const auto& st = s.ranger->state();
  std::string steps;
  for (size_t i = 0; i < names.size(); ++i) {
    t["mapper." + names[i]] = FromTorch(params[i].detach());
    t["exp_avg." + names[i]] = FromTorch(st[i].exp_avg);
    t["exp_avg_sq." + names[i]] = FromTorch(st[i].exp_avg_sq);
    t["slow." + names[i]] = FromTorch(st[i].slow);
    absl::StrAppend(&steps, i == 0 ? "" : ",", st[i].step);
  }
  return SaveSafetensors(path, t,
                         {{"format", kCheckpointFormat}, {"step", std::to_string(s.step)}, {"ranger_steps", steps}});
}

absl::Status MapperTrainer::RestoreCheckpoint(const std::string& path) {
  State& s = *s_;
  ASSIGN_OR_RETURN(SafetensorsFile f, LoadSafetensors(path));
  int64_t step = 0;
  if (f.metadata["format"] != kCheckpointFormat || !absl::SimpleAtoi(f.metadata["step"], &step) || step < 0 ||
      step > s.opt.steps) {
    return absl::InvalidArgumentError(absl::StrCat(path, " is not a checkpoint of this mapper training"));
  }
  const std::vector<std::string> ranger_steps = absl::StrSplit(f.metadata["ranger_steps"], ',');
  const auto& names = s.mapper->impl().names;
  if (ranger_steps.size() != names.size()) return absl::InvalidArgumentError("checkpoint optimizer state differs");
  auto& params = s.mapper->mutable_impl().params;
  std::vector<Ranger::ParamState> st(names.size());
  std::vector<at::Tensor> restored(names.size());
  const c10::Device dev = s.mapper->impl().device;
  auto load = [&](const std::string& key, const at::Tensor& like) -> absl::StatusOr<at::Tensor> {
    auto it = f.tensors.find(key);
    if (it == f.tensors.end()) return absl::InvalidArgumentError(absl::StrCat("checkpoint lacks ", key));
    ASSIGN_OR_RETURN(at::Tensor v, ToTorchFloat(it->second, dev));
    if (!v.sizes().equals(like.sizes())) {
      return absl::InvalidArgumentError(absl::StrCat("checkpoint ", key, " differs"));
    }
    return v;
  };
  for (size_t i = 0; i < names.size(); ++i) {
    ASSIGN_OR_RETURN(restored[i], load("mapper." + names[i], params[i]));
    ASSIGN_OR_RETURN(st[i].exp_avg, load("exp_avg." + names[i], params[i]));
    ASSIGN_OR_RETURN(st[i].exp_avg_sq, load("exp_avg_sq." + names[i], params[i]));
    ASSIGN_OR_RETURN(st[i].slow, load("slow." + names[i], params[i]));
    if (!absl::SimpleAtoi(ranger_steps[i], &st[i].step)) return absl::InvalidArgumentError("bad optimizer step count");
  }
  for (size_t i = 0; i < names.size(); ++i) params[i] = restored[i].requires_grad_(true);
  s.ranger->SetState(std::move(st));
  s.step = step;
  return absl::OkStatus();
}

}  // namespace ganserve::core::edit
