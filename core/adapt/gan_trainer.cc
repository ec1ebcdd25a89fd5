#include "core/adapt/gan_trainer.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <c10/core/GradMode.h>

#include <cmath>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "core/adapt/guidance_impl.h"
#include "core/adapt/oneshot_losses.h"
#include "core/adapt/training_state_impl.h"
#include "core/checkpoint/safetensors.h"
#include "core/models/common/adam.h"
#include "core/models/common/torch_convert.h"
#include "core/models/stylegan2/discriminator_impl.h"
#include "core/models/stylegan2/generator_impl.h"
#include "core/util/status_macros.h"

namespace ganserve::core::adapt {
namespace {

using stylegan2::Generator;

constexpr char kCheckpointFormat[] = "ganserve-gan-v1";

std::map<std::string, TensorView> Views(const std::map<std::string, FloatTensor>& tensors) {
  std::map<std::string, TensorView> out;
  for (const auto& [name, t] : tensors) out[name] = ViewOf(std::make_shared<const FloatTensor>(t));
  return out;
}

}  // namespace

struct GanTrainer::State {
  GanTrainerOptions opt;
  c10::Device device{c10::kCPU};
  std::unique_ptr<Generator> base;  // architecture, buffers, the mean latent of the start
  Generator::Impl train;            // rebuilt from the leaves before each use
  std::vector<std::string> g_names;
  std::vector<at::Tensor> g_leaves;
  std::map<std::string, at::Tensor> g_buffers;  // noises and blur kernels (never trained)
  std::map<std::string, at::Tensor> ema;        // every generator parameter
  std::unique_ptr<Adam> g_adam;
  stylegan2::DiscriminatorConfig d_config;
  std::map<std::string, at::Tensor> d_raw;  // leaves and blur kernels
  std::vector<std::string> d_names;
  std::unique_ptr<Adam> d_adam;
  int64_t step = 0;
  int64_t images = 0;

  const stylegan2::GeneratorConfig& cfg() const { return base->config(); }

  void RebuildTrain() {
    std::map<std::string, at::Tensor> raw;
    for (size_t i = 0; i < g_names.size(); ++i) raw[g_names[i]] = g_leaves[i];
    WriteGeneratorWeights([&raw](const std::string& n) { return raw.at(n); }, &train);
  }
  void SetGeneratorGrad(bool on) {
    for (auto& t : g_leaves) t.requires_grad_(on);
  }
  void SetDiscriminatorGrad(bool on) {
    for (const auto& n : d_names) d_raw.at(n).requires_grad_(on);
  }
  at::Tensor Discriminate(const at::Tensor& images) const {
    return stylegan2::BuildDiscriminatorImpl(d_config, d_raw).Forward(images);
  }

  // B latents through the trainable mapping (differentiable when its leaves require
  // grad): w for every row of w+, or with probability `mixing` two w crossing over at a
  // uniform index in [1, n_latent - 1].
  at::Tensor DrawWPlus(int64_t b, at::Generator& gen) const {
    const auto& c = cfg();
    const auto fopt = at::TensorOptions().dtype(at::kFloat);
    const at::Tensor z = at::randn({b, c.style_dim}, gen, fopt).to(device);
    const bool mix = opt.mixing > 0 && at::rand({1}, gen).item<float>() < opt.mixing;
    const at::Tensor w = train.Map(z).unsqueeze(1);
    if (!mix) return w.expand({b, c.n_latent, c.style_dim});
    const at::Tensor w2 = train.Map(at::randn({b, c.style_dim}, gen, fopt).to(device)).unsqueeze(1);
    const int64_t k = at::randint(1, c.n_latent, {1}, gen).item<int64_t>();
    return at::cat({w.expand({b, k, -1}), w2.expand({b, c.n_latent - k, -1})}, 1);
  }

  at::Tensor Render(const at::Tensor& wplus, int64_t b, at::Generator& gen) const {
    // The scaled form (one shared convolution per layer) trains faster than per-sample
    // grouped weights; the two agree within float rounding.
    return train.RenderWPlus(wplus, RandomNoiseMaps(cfg(), b, gen, device), nullptr, stylegan2::ModConvMode::kScaled);
  }

  void StepAdam(Adam& adam, std::vector<at::Tensor> params, double lr) {
    for (auto& p : params) {
      if (!p.grad().defined()) p.mutable_grad() = at::zeros_like(p);
    }
    adam.Step(params, lr);
  }
  std::vector<at::Tensor> DiscriminatorParams() const {
    std::vector<at::Tensor> out;
    for (const auto& n : d_names) out.push_back(d_raw.at(n));
    return out;
  }

  std::map<std::string, float> Step(const at::Tensor& reals);
};

std::map<std::string, float> GanTrainer::State::Step(const at::Tensor& reals) {
  const int64_t b = reals.size(0);
  at::Generator gen = at::detail::createCPUGenerator(opt.seed * 1000003ULL + static_cast<uint64_t>(step) + 1);
  std::map<std::string, float> out;
  const double d_ratio = LazyRatio(opt.d_reg_every);

  // Discriminator: fakes from the current generator, without its graph.
  SetGeneratorGrad(false);
  RebuildTrain();
  SetDiscriminatorGrad(true);
  at::Tensor fake;
  {
    c10::NoGradGuard ng;
    fake = Render(DrawWPlus(b, gen), b, gen);
  }
  const at::Tensor fake_pred = Discriminate(fake);
  const at::Tensor real_pred = Discriminate(reals);
  const at::Tensor d_loss = DiscriminatorLogisticLoss(real_pred, fake_pred);
  out["d"] = d_loss.item<float>();
  out["real_score"] = real_pred.mean().item<float>();
  out["fake_score"] = fake_pred.mean().item<float>();
  d_loss.backward();
  StepAdam(*d_adam, DiscriminatorParams(), opt.d_lr * d_ratio);
  if (step % opt.d_reg_every == 0) {
    const at::Tensor r = reals.detach().requires_grad_(true);
    const at::Tensor r1 = R1Penalty(Discriminate(r), r);
    out["r1"] = r1.item<float>();
    (opt.r1 / 2 * r1 * opt.d_reg_every).backward();
    StepAdam(*d_adam, DiscriminatorParams(), opt.d_lr * d_ratio);
  }
  SetDiscriminatorGrad(false);

  // Generator: every parameter, mapping included.
  SetGeneratorGrad(true);
  RebuildTrain();
  const at::Tensor g_loss = NonSaturatingLoss(Discriminate(Render(DrawWPlus(b, gen), b, gen)));
  out["g"] = g_loss.item<float>();
  g_loss.backward();
  StepAdam(*g_adam, g_leaves, opt.g_lr);
  SetGeneratorGrad(false);
  // Adam left the discriminator's gradients from the generator's backward: drop them.
  for (const auto& n : d_names) d_raw.at(n).mutable_grad() = at::Tensor();

  // EMA with the ramped-up half-life.
  images += b;
  step += 1;
  double ema_images = opt.ema_kimg * 1000;
  if (opt.ema_rampup > 0) ema_images = std::min(ema_images, static_cast<double>(images) * opt.ema_rampup);
  const double beta = std::pow(0.5, static_cast<double>(b) / std::max(ema_images, 1e-8));
  c10::NoGradGuard ng;
  for (size_t i = 0; i < g_names.size(); ++i) ema.at(g_names[i]).lerp_(g_leaves[i], 1 - beta);
  return out;
}

GanTrainer::GanTrainer(std::unique_ptr<State> state) : state_(std::move(state)) {}
GanTrainer::~GanTrainer() = default;
int64_t GanTrainer::step() const { return state_->step; }
int64_t GanTrainer::images_seen() const { return state_->images; }
const GanTrainerOptions& GanTrainer::options() const { return state_->opt; }

absl::StatusOr<std::unique_ptr<GanTrainer>> GanTrainer::Create(const stylegan2::GeneratorConfig& config,
                                                               const std::map<std::string, FloatTensor>& generator,
                                                               const std::map<std::string, FloatTensor>& discriminator,
                                                               const GanTrainerOptions& opt) {
  if (opt.batch_size < 2 || opt.batch_size > 1024) return absl::InvalidArgumentError("batch_size must be in [2, 1024]");
  if (!(opt.g_lr > 0 && opt.g_lr < 1) || !(opt.d_lr > 0 && opt.d_lr < 1)) {
    return absl::InvalidArgumentError("learning rates must be in (0, 1)");
  }
  if (!(opt.r1 >= 0 && opt.r1 <= 1000)) return absl::InvalidArgumentError("r1 must be in [0, 1000]");
  if (opt.d_reg_every < 1) return absl::InvalidArgumentError("d_reg_every must be >= 1");
  if (!(opt.mixing >= 0 && opt.mixing <= 1)) return absl::InvalidArgumentError("mixing must be in [0, 1]");
  if (!(opt.ema_kimg >= 0) || !(opt.ema_rampup >= 0)) {
    return absl::InvalidArgumentError("ema_kimg and ema_rampup must be >= 0");
  }
  auto st = std::make_unique<State>();
  st->opt = opt;
  stylegan2::LoadOptions load;
  load.device = opt.device;
  ASSIGN_OR_RETURN(st->base, Generator::FromTensors(Views(generator), nullptr, load));
  if (st->base->config().resolution != config.resolution || st->base->config().style_dim != config.style_dim ||
      st->base->config().channels != config.channels) {
    return absl::InvalidArgumentError("the generator weights do not have the configuration's architecture");
  }
  const auto d_views = Views(discriminator);
  ASSIGN_OR_RETURN(st->d_config, stylegan2::InferDiscriminatorConfig(d_views));
  if (st->d_config.resolution != config.resolution) {
    return absl::InvalidArgumentError(absl::StrCat("the discriminator is for ", st->d_config.resolution,
                                                   " px images, the generator makes ", config.resolution));
  }
  const Generator::Impl& src = st->base->impl();
  st->device = src.device;
  try {
    c10::NoGradGuard ng;
    st->train = src;
    st->train.upsample_phases = opt.upsample_phases;
    for (const auto& [name, t] : src.state_dict) {
      at::Tensor v = ToTorch(t, st->device);
      if (IsGeneratorParameter(name)) {
        st->g_names.push_back(name);
        st->g_leaves.push_back(v.clone());
        st->ema[name] = v.clone();
      } else {
        st->g_buffers[name] = v;
      }
    }
    for (const auto& [name, t] : discriminator) {
      st->d_raw[name] = ToTorch(t, st->device);
      if (!absl::EndsWith(name, "kernel")) st->d_names.push_back(name);
    }
    st->g_adam = std::make_unique<Adam>(st->g_leaves, 0.0, 0.99);
    st->d_adam = std::make_unique<Adam>(st->DiscriminatorParams(), 0.0, std::pow(0.99, LazyRatio(opt.d_reg_every)));
    st->RebuildTrain();
  } catch (const c10::Error& e) {
    return TorchErrorStatus(e, "setting up GAN training failed");
  }
  return std::unique_ptr<GanTrainer>(new GanTrainer(std::move(st)));
}

absl::StatusOr<std::map<std::string, float>> GanTrainer::Step(const FloatTensor& reals) {
  State& s = *state_;
  const int64_t r = s.cfg().resolution;
  if (reals.shape != std::vector<int64_t>{s.opt.batch_size, 3, r, r}) {
    return absl::InvalidArgumentError(
        absl::StrCat("reals must be [", s.opt.batch_size, ", 3, ", r, ", ", r, "], got ", ShapeString(reals.shape)));
  }
  try {
    return s.Step(ToTorch(reals, s.device));
  } catch (const c10::Error& e) {
    return TorchErrorStatus(e, "GAN training step failed");
  }
}

std::map<std::string, FloatTensor> GanTrainer::GeneratorWeights(bool ema) const {
  const State& s = *state_;
  std::map<std::string, FloatTensor> out;
  for (const auto& [name, t] : s.g_buffers) out[name] = FromTorch(t);
  for (size_t i = 0; i < s.g_names.size(); ++i) {
    out[s.g_names[i]] = FromTorch(ema ? s.ema.at(s.g_names[i]) : s.g_leaves[i].detach());
  }
  return out;
}

std::map<std::string, FloatTensor> GanTrainer::DiscriminatorWeights() const {
  std::map<std::string, FloatTensor> out;
  for (const auto& [name, t] : state_->d_raw) out[name] = FromTorch(t.detach());
  return out;
}

absl::StatusOr<FloatTensor> GanTrainer::Sample(const FloatTensor& z, float truncation, bool ema) const {
  const State& s = *state_;
  if (z.shape.size() != 2 || z.shape[1] != s.cfg().style_dim || z.shape[0] < 1) {
    return absl::InvalidArgumentError(absl::StrCat("z must be [N, ", s.cfg().style_dim, "]"));
  }
  try {
    c10::NoGradGuard ng;
    Generator::Impl g = s.base->impl();
    std::map<std::string, at::Tensor> trained;
    for (size_t i = 0; i < s.g_names.size(); ++i) trained[s.g_names[i]] = s.g_leaves[i].detach();
    const auto& weights = ema ? s.ema : trained;
    WriteGeneratorWeights([&weights](const std::string& n) { return weights.at(n); }, &g);
    at::Generator mean_gen = at::detail::createCPUGenerator(0);
    const at::Tensor w_mean =
        g.Map(at::randn({4096, s.cfg().style_dim}, mean_gen, at::TensorOptions().dtype(at::kFloat)).to(s.device))
            .mean(0, true);
    const at::Tensor w = at::lerp(w_mean, g.Map(ToTorch(z, s.device)), truncation);
    std::vector<at::Tensor> noise;
    for (const at::Tensor& n : g.noises) noise.push_back(n);
    return FromTorch(g.RenderWPlus(w.unsqueeze(1).expand({-1, s.cfg().n_latent, -1}), noise));
  } catch (const c10::Error& e) {
    return TorchErrorStatus(e, "sampling the EMA generator failed");
  }
}

absl::Status GanTrainer::SaveCheckpoint(const std::string& path) const {
  const State& s = *state_;
  TrainingState t;
  t.metadata = {{"format", kCheckpointFormat}, {"step", std::to_string(s.step)}, {"images", std::to_string(s.images)}};
  for (size_t i = 0; i < s.g_names.size(); ++i) {
    t.Put("g/" + s.g_names[i], s.g_leaves[i]);
    t.Put("ema/" + s.g_names[i], s.ema.at(s.g_names[i]));
  }
  for (const auto& n : s.d_names) t.Put("d/" + n, s.d_raw.at(n));
  t.PutAdam("g_adam", s.g_names, *s.g_adam);
  t.PutAdam("d_adam", s.d_names, *s.d_adam);
  return SaveSafetensors(path, t.tensors, t.metadata);
}

absl::Status GanTrainer::RestoreCheckpoint(const std::string& path) {
  ASSIGN_OR_RETURN(SafetensorsFile f, LoadSafetensors(path));
  State& s = *state_;
  int64_t step = 0, images = 0;
  if (f.metadata["format"] != kCheckpointFormat || !absl::SimpleAtoi(f.metadata["step"], &step) ||
      !absl::SimpleAtoi(f.metadata["images"], &images)) {
    return absl::InvalidArgumentError(absl::StrCat(path, " is not a ganserve GAN training checkpoint"));
  }
  try {
    c10::NoGradGuard ng;
    TrainingStateReader r(std::move(f), path, s.device);
    for (size_t i = 0; i < s.g_names.size(); ++i) {
      ASSIGN_OR_RETURN(s.g_leaves[i], r.Read("g/" + s.g_names[i], s.g_leaves[i]));
      ASSIGN_OR_RETURN(s.ema[s.g_names[i]], r.Read("ema/" + s.g_names[i], s.ema.at(s.g_names[i])));
    }
    for (const auto& n : s.d_names) {
      ASSIGN_OR_RETURN(s.d_raw[n], r.Read("d/" + n, s.d_raw.at(n)));
    }
    RETURN_IF_ERROR(r.ReadAdam("g_adam", s.g_names, s.g_adam.get()));
    RETURN_IF_ERROR(r.ReadAdam("d_adam", s.d_names, s.d_adam.get()));
  } catch (const c10::Error& e) {
    return TorchErrorStatus(e, "restoring the GAN training checkpoint failed");
  }
  s.step = step;
  s.images = images;
  s.RebuildTrain();
  return absl::OkStatus();
}

}  // namespace ganserve::core::adapt
