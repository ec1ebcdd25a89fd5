#include "core/adapt/oneshot_trainer.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <c10/core/GradMode.h>

#include <algorithm>
#include <random>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "core/adapt/guidance_impl.h"
#include "core/adapt/oneshot_augment.h"
#include "core/adapt/oneshot_losses.h"
#include "core/adapt/training_state_impl.h"
#include "core/checkpoint/safetensors.h"
#include "core/models/clip/preprocess.h"
#include "core/models/common/adam.h"
#include "core/models/common/torch_convert.h"
#include "core/models/lpips/alex_lpips_impl.h"
#include "core/models/stylegan2/discriminator_impl.h"
#include "core/models/stylegan2/generator_impl.h"
#include "core/util/status_macros.h"

namespace ganserve::core::adapt {
namespace {

using stylegan2::Generator;

constexpr char kCheckpointFormat[] = "ganserve-oneshot-v1";
constexpr int kAugmentSize = 224;  // the official Resize([224, 224])

// Trainable generator units: constant input, conv1 and every conv (mapping and ToRGBs
// stay frozen, as the official requires_grad calls leave them).
std::vector<std::string> TrainedUnits(int n_convs) {
  std::vector<std::string> u = {"input", "conv1"};
  for (int i = 0; i < n_convs; ++i) u.push_back(absl::StrCat("convs.", i));
  return u;
}

}  // namespace

int EffectiveCropSize(const OneshotOptions& o, int resolution) { return std::min(o.crop_size, resolution / 2); }

int PatchFeatureResolution(int resolution) { return std::min(32, resolution / 2); }

struct OneshotTrainer::State {
  OneshotOptions opt;
  OneshotModels m;
  c10::Device device{c10::kCPU};
  int64_t reference_steps = 0;  // phase 1 length (0 when w_ref was given)
  int64_t step = 0;

  // Generators: the frozen source (m.g), the trainable copy and its leaves, the EMA.
  Generator::Impl train;
  std::map<std::string, at::Tensor> g_raw;  // every `g` tensor on the device (frozen values)
  std::vector<std::string> g_names;         // trained tensors, in Adam order
  std::vector<at::Tensor> g_leaves;         // their raw values
  std::map<std::string, at::Tensor> ema;    // every EMA parameter, raw
  std::unique_ptr<Adam> g_adam;

  // Discriminator leaves (raw, without its blur kernels), the patch head, their Adams.
  stylegan2::DiscriminatorConfig d_config;
  std::map<std::string, at::Tensor> d_raw;  // leaves and kernels, by state-dict name
  std::vector<std::string> d_names;
  std::unique_ptr<Adam> d_adam;
  at::Tensor head_weight, head_bias;  // ConvLayer(C, 1, 3): raw [1, C, 3, 3], activation bias [1]
  std::unique_ptr<Adam> head_adam;

  // Phase 1.
  at::Tensor w_mean;           // [1, style_dim], through g's mapping: the search's start and anchor
  at::Tensor w_mean_sampling;  // the same z through g_ema's mapping: the sampling convention's mean
  at::Tensor w_ref;            // [1, style_dim]
  std::unique_ptr<Adam> ref_adam;

  at::Tensor target;       // [1, 3, R, R] in [-1, 1]
  at::Tensor target_clip;  // [1, D] unit CLIP embedding of the target
  at::Tensor preview_z;
  int crop = 0, patch_res = 0;

  const Generator::Impl& source() const { return m.g->impl(); }
  const stylegan2::GeneratorConfig& cfg() const { return m.g->config(); }
  int64_t Resolution() const { return cfg().resolution; }

  at::Tensor Raw(const std::string& name) const {
    for (size_t i = 0; i < g_names.size(); ++i) {
      if (g_names[i] == name) return g_leaves[i];
    }
    return g_raw.at(name);
  }
  void RebuildTrain() {
    WriteSynthesisWeights([this](const std::string& n) { return Raw(n); }, cfg().style_dim, &train);
  }
  void SetGeneratorGrad(bool on) {
    for (auto& t : g_leaves) t.requires_grad_(on);
  }
  void SetDiscriminatorGrad(bool on) {
    for (const auto& n : d_names) d_raw.at(n).requires_grad_(on);
    head_weight.requires_grad_(on);
    head_bias.requires_grad_(on);
  }

  // D's logits for the global head (which == 0) or the patch head's map.
  at::Tensor Discriminate(const at::Tensor& images, bool patch) const {
    const stylegan2::Discriminator::Impl d = stylegan2::BuildDiscriminatorImpl(d_config, d_raw);
    if (!patch) return d.Forward(images);
    stylegan2::DiscConv head;
    head.kernel = 3;
    head.weight = head_weight * (1.0 / std::sqrt(static_cast<double>(head_weight.size(1)) * 9));
    head.bias = head_bias;
    return head.Forward(d.BlockFeatures(images, patch_res));
  }

  at::Tensor Embed(const at::Tensor& images) const { return EmbedGeneratorImages(m.clip, images); }

  // LPIPS (mean over the batch, as the official module reduces) + MSE against the target.
  std::pair<at::Tensor, at::Tensor> Reconstruction(const at::Tensor& images) const {
    const at::Tensor t = target.expand_as(images);
    return {m.lpips->impl().Forward(images, t).mean(), (images - t).pow(2).mean()};
  }

  at::Tensor WPlus(const at::Tensor& w) const { return w.unsqueeze(1).expand({w.size(0), cfg().n_latent, -1}); }

  std::vector<at::Tensor> Noise(int64_t batch, at::Generator& gen) const {
    return RandomNoiseMaps(cfg(), batch, gen, device);
  }

  // The step's random streams: LibTorch's for tensors, a 64-bit Mersenne twister for the
  // augmentation parameters and crop positions.
  uint64_t StepSeed() const { return opt.seed * 1000003ULL + static_cast<uint64_t>(step) + 1; }

  std::map<std::string, float> ReferenceStep();
  std::map<std::string, float> FineTuneStep(int64_t i);
  void StepDiscriminator(const at::Tensor& loss);

  // The EMA generator as a renderable Impl (synthesis and mapping from `ema`).
  Generator::Impl EmaGenerator() const;
  // The sampling convention's w+ for z.
  at::Tensor ConventionWPlus(const Generator::Impl& g, const at::Tensor& z) const;
};

std::map<std::string, float> OneshotTrainer::State::ReferenceStep() {
  at::Generator gen = at::detail::createCPUGenerator(StepSeed());
  std::mt19937_64 rng(StepSeed());
  w_ref.requires_grad_(true);
  const at::Tensor img = source().RenderWPlus(WPlus(w_ref), Noise(1, gen));
  // One parameter draw for all copies: torchvision's transforms on a batch tensor.
  const OneshotAugmentParams params = DrawOneshotAugmentParams(Resolution(), Resolution(), rng);
  const at::Tensor views = ApplyOneshotAugment(img.repeat({opt.reference_views, 1, 1, 1}), params, kAugmentSize);
  const at::Tensor fake = Embed(views);
  const at::Tensor clip_loss = (1 - at::cosine_similarity(target_clip, fake, 1, 1e-8)).mean();
  const at::Tensor l2 = (w_ref - w_mean).pow(2).mean();
  const auto [lp, mse] = Reconstruction(img);
  const at::Tensor total =
      opt.lambda_reference_clip * clip_loss + opt.lambda_reference_l2 * l2 + opt.lambda_reference_rec * (lp + mse);
  total.backward();
  ref_adam->Step({w_ref}, opt.reference_lr);
  w_ref.requires_grad_(false);
  return {{"total", total.item<float>()},
          {"clip_ref", clip_loss.item<float>()},
          {"w_l2", l2.item<float>()},
          {"ref_lpips", lp.item<float>()},
          {"ref_mse", mse.item<float>()}};
}

// One D update: backward, then Adam on every discriminator tensor (PyTorch 1.x's
// zero_grad keeps zero gradients, so a tensor the loss did not reach still steps: its
// second moment decays and its count advances) and on the patch head once it has had a
// gradient.
void OneshotTrainer::State::StepDiscriminator(const at::Tensor& loss) {
  loss.backward();
  std::vector<at::Tensor> d_params;
  for (const auto& n : d_names) {
    at::Tensor& p = d_raw.at(n);
    if (!p.grad().defined()) p.mutable_grad() = at::zeros_like(p);
    d_params.push_back(p);
  }
  d_adam->Step(d_params, opt.lr * LazyRatio(opt.d_reg_every));
  const bool head_used = head_weight.grad().defined() || head_adam->steps() > 0;
  if (head_used) {
    for (at::Tensor* p : {&head_weight, &head_bias}) {
      if (!p->grad().defined()) p->mutable_grad() = at::zeros_like(*p);
    }
    head_adam->Step({head_weight, head_bias}, opt.lr * LazyRatio(opt.d_reg_every));
  }
}

std::map<std::string, float> OneshotTrainer::State::FineTuneStep(int64_t i) {
  at::Generator gen = at::detail::createCPUGenerator(StepSeed());
  std::mt19937_64 rng(StepSeed());
  const bool patch = i % opt.ref_every != 0;
  const int64_t b = patch ? opt.batch_size : 1;
  std::map<std::string, float> out;

  // Real images: the target, each copy flipped with probability 1/2 on patch steps (the
  // official loader), unflipped on alignment steps.
  at::Tensor real = target.repeat({b, 1, 1, 1});
  if (patch) {
    const at::Tensor flip = (at::rand({b}, gen) < 0.5).to(device).view({b, 1, 1, 1});
    real = at::where(flip, real.flip({3}), real);
  }

  // Discriminator.
  SetGeneratorGrad(false);
  RebuildTrain();
  SetDiscriminatorGrad(true);
  at::Tensor fake;
  {
    c10::NoGradGuard ng;
    if (patch) {
      const StepLatents lat = DrawStepLatents(source(), b, opt.mixing, gen);
      fake = train.RenderWPlus(lat.train_wplus, Noise(b, gen));
    } else {
      fake = train.RenderWPlus(WPlus(w_ref), Noise(1, gen));
    }
  }
  const at::Tensor fake_pred = Discriminate(fake, patch);
  const at::Tensor real_pred = Discriminate(real, patch);
  const at::Tensor d_loss = DiscriminatorLogisticLoss(real_pred, fake_pred);
  out["adv_d"] = d_loss.item<float>();
  StepDiscriminator(d_loss);
  if (i % opt.d_reg_every == 0) {
    const at::Tensor r = real.detach().requires_grad_(true);
    const at::Tensor pred = Discriminate(r, patch).view({b, -1}).mean(1, true);
    const at::Tensor r1 = R1Penalty(pred, r);
    out["r1"] = r1.item<float>();
    StepDiscriminator(opt.r1 / 2 * r1 * opt.d_reg_every);
  }

  // Generator.
  SetDiscriminatorGrad(false);
  SetGeneratorGrad(true);
  RebuildTrain();
  at::Tensor src;
  if (patch) {
    const StepLatents lat = DrawStepLatents(source(), b, opt.mixing, gen);
    fake = train.RenderWPlus(lat.train_wplus, Noise(b, gen));
    c10::NoGradGuard ng;
    src = source().RenderWPlus(lat.frozen_wplus, Noise(b, gen));
  } else {
    fake = train.RenderWPlus(WPlus(w_ref), Noise(1, gen));
  }
  const at::Tensor adv = NonSaturatingLoss(Discriminate(fake, patch));
  at::Tensor g_loss = adv;
  out["adv_g"] = adv.item<float>();
  if (patch) {
    at::Tensor src_feat, src_patch;
    const std::vector<CropBox> boxes = DrawCropBoxes(Resolution(), crop, opt.crops, rng);
    {
      c10::NoGradGuard ng;
      src_feat = Embed(src);
      src_patch = Embed(GatherCrops(src, boxes, crop));
    }
    const at::Tensor fake_feat = Embed(fake);
    const at::Tensor fake_patch = Embed(GatherCrops(fake, boxes, crop));
    const at::Tensor p_loss = opt.lambda_patch * PatchContrastiveLoss(fake_patch, src_patch, b, opt.tau).mean();
    const at::Tensor c_loss = opt.lambda_const * CrossDomainConsistencyLoss(fake_feat, src_feat);
    out["patch"] = p_loss.item<float>();
    out["const"] = c_loss.item<float>();
    g_loss = g_loss + c_loss + p_loss;
  } else {
    const auto [lp, mse] = Reconstruction(fake);
    out["ref_lpips"] = lp.item<float>();
    out["ref_mse"] = mse.item<float>();
    g_loss = g_loss + lp + mse;
  }
  out["total"] = g_loss.item<float>();
  g_loss.backward();
  g_adam->Step(g_leaves, opt.lr * LazyRatio(opt.g_reg_every));
  SetGeneratorGrad(false);

  // EMA of every generator parameter toward the trainable one (frozen ones included).
  c10::NoGradGuard ng;
  for (auto& [name, e] : ema) e.mul_(opt.ema_decay).add_(Raw(name), 1 - opt.ema_decay);
  return out;
}

Generator::Impl OneshotTrainer::State::EmaGenerator() const {
  Generator::Impl g = m.g_ema->impl();
  WriteGeneratorWeights([this](const std::string& n) { return ema.at(n); }, &g);
  return g;
}

at::Tensor OneshotTrainer::State::ConventionWPlus(const Generator::Impl& g, const at::Tensor& z) const {
  const at::Tensor w = at::lerp(g.Map(z), w_mean_sampling, 1 - kOneshotTruncation);
  at::Tensor wplus = WPlus(w).clone();
  if (kOneshotMixIndex < cfg().n_latent) {
    const int64_t rows = cfg().n_latent - kOneshotMixIndex;
    wplus.narrow(1, kOneshotMixIndex, rows)
        .copy_(WPlus(w_mean_sampling.expand_as(w)).narrow(1, kOneshotMixIndex, rows));
  }
  return wplus;
}

OneshotTrainer::OneshotTrainer(std::unique_ptr<State> state) : state_(std::move(state)) {}
OneshotTrainer::~OneshotTrainer() = default;
int64_t OneshotTrainer::total_steps() const { return state_->reference_steps + state_->opt.iterations; }
int64_t OneshotTrainer::step() const { return state_->step; }
const char* OneshotTrainer::phase() const {
  return state_->step < state_->reference_steps ? "reference_search" : "fine_tune";
}
const OneshotOptions& OneshotTrainer::options() const { return state_->opt; }

absl::StatusOr<std::unique_ptr<OneshotTrainer>> OneshotTrainer::Create(OneshotModels models, const Rgb8Image& target,
                                                                       const OneshotOptions& opt) {
  if (models.g == nullptr || models.g_ema == nullptr || models.d == nullptr) {
    return absl::InvalidArgumentError("one-shot adaptation needs the checkpoint's g, g_ema and d");
  }
  if (models.clip.model == nullptr) return absl::InvalidArgumentError("one-shot adaptation needs a CLIP model");
  if (models.lpips == nullptr) return absl::InvalidArgumentError("one-shot adaptation needs the AlexNet LPIPS");
  const auto& cfg = models.g->config();
  const auto& ecfg = models.g_ema->config();
  if (ecfg.resolution != cfg.resolution || ecfg.style_dim != cfg.style_dim || ecfg.n_mlp != cfg.n_mlp ||
      ecfg.channels != cfg.channels) {
    return absl::InvalidArgumentError("the checkpoint's g and g_ema have different architectures");
  }
  if (models.d->config().resolution != cfg.resolution) {
    return absl::InvalidArgumentError(absl::StrCat("the discriminator takes ", models.d->config().resolution,
                                                   " px images but the generator makes ", cfg.resolution, " px"));
  }
  if (cfg.resolution < 32) return absl::InvalidArgumentError("one-shot adaptation needs a generator of 32 px or more");
  if (target.width < 1 || target.height < 1) return absl::InvalidArgumentError("the target image is empty");
  const std::pair<const char*, bool> checks[] = {
      {"reference_steps >= 0", opt.reference_steps >= 0},
      {"iterations >= 1", opt.iterations >= 1},
      {"batch_size >= 2", opt.batch_size >= 2},
      {"reference_views >= 1", opt.reference_views >= 1},
      {"ref_every >= 1", opt.ref_every >= 1},
      {"d_reg_every >= 1 and g_reg_every >= 1", opt.d_reg_every >= 1 && opt.g_reg_every >= 1},
      {"crops >= 1 and crop_size >= 1", opt.crops >= 1 && opt.crop_size >= 1},
      {"lr > 0 and reference_lr > 0", opt.lr > 0 && opt.reference_lr > 0},
      {"mixing in [0, 1]", opt.mixing >= 0 && opt.mixing <= 1},
      {"tau > 0", opt.tau > 0},
      {"mean_latent_samples >= 1", opt.mean_latent_samples >= 1},
      {"preview_count >= 0", opt.preview_count >= 0},
  };
  for (const auto& [what, ok] : checks) {
    if (!ok) return absl::InvalidArgumentError(absl::StrCat("one-shot options out of range: need ", what));
  }
  if (!opt.w_ref.empty() && static_cast<int>(opt.w_ref.size()) != cfg.style_dim) {
    return absl::InvalidArgumentError(
        absl::StrCat("w_ref must have style_dim = ", cfg.style_dim, " values, got ", opt.w_ref.size()));
  }
  // The batch must form discriminator minibatch-stddev groups.
  const int group = std::min(opt.batch_size, models.d->config().stddev_group);
  if (opt.batch_size % group != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("batch_size ", opt.batch_size, " does not form the discriminator's groups of ", group));
  }
  auto st = std::make_unique<State>();
  st->opt = opt;
  st->m = std::move(models);
  const auto& src = st->m.g->impl();
  st->device = src.device;
  st->reference_steps = opt.w_ref.empty() ? opt.reference_steps : 0;
  st->crop = EffectiveCropSize(opt, cfg.resolution);
  st->patch_res = PatchFeatureResolution(cfg.resolution);
  try {
    c10::NoGradGuard ng;
    const c10::Device dev = st->device;
    st->train = src;
    for (const auto& [name, t] : src.state_dict) st->g_raw[name] = ToTorch(t, dev);
    for (const std::string& u : TrainedUnits(static_cast<int>(src.convs.size()))) {
      for (const std::string& p : SynthesisUnitParams(u)) {
        st->g_names.push_back(p);
        st->g_leaves.push_back(st->g_raw.at(p).clone());
      }
    }
    const double rg = LazyRatio(opt.g_reg_every), rd = LazyRatio(opt.d_reg_every);
    st->g_adam = std::make_unique<Adam>(st->g_leaves, 0.0, std::pow(0.99, rg));
    for (const auto& [name, t] : st->m.g_ema->impl().state_dict) {
      if (IsGeneratorParameter(name)) st->ema[name] = ToTorch(t, dev);
    }
    // Discriminator leaves: copies of its raw tensors (training updates them in place).
    st->d_config = st->m.d->config();
    for (const auto& [name, t] : st->m.d->impl().raw) {
      st->d_raw[name] = t.clone();
      if (!absl::EndsWith(name, "kernel")) st->d_names.push_back(name);
    }
    std::vector<at::Tensor> d_params;
    for (const auto& n : st->d_names) d_params.push_back(st->d_raw.at(n));
    st->d_adam = std::make_unique<Adam>(d_params, 0.0, std::pow(0.99, rd));
    // The patch head: EqualConv2d(C, 1, 3) ~ N(0, 1) and a zero activation bias, drawn
    // from the job's seed.
    at::Generator init = at::detail::createCPUGenerator(opt.seed * 1000003ULL + 13);
    const int64_t c = st->d_config.channels.at(st->patch_res);
    st->head_weight = at::randn({1, c, 3, 3}, init, at::TensorOptions().dtype(at::kFloat)).to(dev);
    st->head_bias = at::zeros({1}, at::TensorOptions().dtype(at::kFloat).device(dev));
    st->head_adam =
        std::make_unique<Adam>(std::vector<at::Tensor>{st->head_weight, st->head_bias}, 0.0, std::pow(0.99, rd));

    // w_mean: the mean of mean_latent_samples mapped z (in chunks), and w_ref.
    at::Generator mean_gen = at::detail::createCPUGenerator(opt.seed * 1000003ULL + 17);
    // The official test_sample.py takes the sampling mean from the source's g_ema.
    at::Tensor sum = at::zeros({1, cfg.style_dim}, at::TensorOptions().dtype(at::kFloat).device(dev));
    at::Tensor sum_ema = sum.clone();
    for (int done = 0; done < opt.mean_latent_samples; done += 1000) {
      const int n = std::min(1000, opt.mean_latent_samples - done);
      const at::Tensor z = at::randn({n, cfg.style_dim}, mean_gen, at::TensorOptions().dtype(at::kFloat)).to(dev);
      sum += src.Map(z).sum(0, true);
      sum_ema += st->m.g_ema->impl().Map(z).sum(0, true);
    }
    st->w_mean = sum / opt.mean_latent_samples;
    st->w_mean_sampling = sum_ema / opt.mean_latent_samples;
    st->w_ref = opt.w_ref.empty() ? st->w_mean.clone() : ToTorch(FloatTensor{{1, cfg.style_dim}, opt.w_ref}, dev);
    st->ref_adam = std::make_unique<Adam>(std::vector<at::Tensor>{st->w_ref});

    // The target at the generator's resolution (the official Resize on the PIL image,
    // then [-1, 1]) and its CLIP embedding.
    const Rgb8Image fitted = clip::PilResize(target, cfg.resolution, cfg.resolution, clip::PilFilter::kBilinear);
    const int64_t r = cfg.resolution;
    at::Tensor hwc = at::from_blob(const_cast<uint8_t*>(fitted.pixels.data()), {r, r, 3}, at::kByte).clone();
    st->target = (hwc.permute({2, 0, 1}).unsqueeze(0).to(at::kFloat) / 127.5 - 1).contiguous().to(dev);
    st->target_clip = st->Embed(st->target);
    st->preview_z = PreviewLatents(opt.seed, opt.preview_count, cfg.style_dim, dev);
    st->RebuildTrain();
  } catch (const c10::Error& e) {
    return TorchErrorStatus(e, "setting up one-shot training failed");
  }
  return std::unique_ptr<OneshotTrainer>(new OneshotTrainer(std::move(st)));
}

absl::StatusOr<std::map<std::string, float>> OneshotTrainer::Step() {
  State& s = *state_;
  if (s.step >= total_steps()) return absl::FailedPreconditionError("training is complete");
  try {
    std::map<std::string, float> out =
        s.step < s.reference_steps ? s.ReferenceStep() : s.FineTuneStep(s.step - s.reference_steps);
    s.step += 1;
    return out;
  } catch (const c10::Error& e) {
    s.SetGeneratorGrad(false);
    s.SetDiscriminatorGrad(false);
    return TorchErrorStatus(e, absl::StrCat("one-shot step ", s.step, " (", phase(), ") failed"));
  }
}

FloatTensor OneshotTrainer::ReferenceLatent() const { return FromTorch(state_->w_ref.detach().view({-1})); }
FloatTensor OneshotTrainer::MeanLatent() const { return FromTorch(state_->w_mean.view({-1})); }
FloatTensor OneshotTrainer::SamplingMeanLatent() const { return FromTorch(state_->w_mean_sampling.view({-1})); }

absl::StatusOr<FloatTensor> OneshotTrainer::Preview(bool source) const {
  const State& s = *state_;
  try {
    c10::NoGradGuard ng;
    if (source) {
      const auto& g = s.source();
      return FromTorch(g.RenderWPlus(s.ConventionWPlus(g, s.preview_z), g.noises));
    }
    const bool searching = s.step < s.reference_steps;
    const Generator::Impl g = searching ? s.source() : s.EmaGenerator();
    at::Tensor grid = g.RenderWPlus(s.ConventionWPlus(g, s.preview_z), g.noises);
    const at::Tensor ref = g.RenderWPlus(s.WPlus(s.w_ref.detach()), g.noises);
    return FromTorch(at::cat({grid, s.target, ref}, 0));
  } catch (const c10::Error& e) {
    return TorchErrorStatus(e, "preview failed");
  }
}

std::map<std::string, FloatTensor> OneshotTrainer::Delta() const {
  std::map<std::string, FloatTensor> out;
  for (const auto& [name, t] : state_->ema) out[name] = FromTorch(t);
  return out;
}

absl::Status OneshotTrainer::SaveCheckpoint(const std::string& path) const {
  const State& s = *state_;
  TrainingState t;
  t.metadata = {{"format", kCheckpointFormat}, {"step", std::to_string(s.step)}};
  for (size_t i = 0; i < s.g_names.size(); ++i) t.Put("g/" + s.g_names[i], s.g_leaves[i]);
  t.PutAdam("g_adam", s.g_names, *s.g_adam);
  for (const auto& n : s.d_names) t.Put("d/" + n, s.d_raw.at(n));
  t.PutAdam("d_adam", s.d_names, *s.d_adam);
  t.Put("head/weight", s.head_weight);
  t.Put("head/bias", s.head_bias);
  t.PutAdam("head_adam", {"weight", "bias"}, *s.head_adam);
  for (const auto& [n, e] : s.ema) t.Put("ema/" + n, e);
  t.Put("w_ref", s.w_ref);
  t.PutAdam("ref_adam", {"w_ref"}, *s.ref_adam);
  return SaveSafetensors(path, t.tensors, t.metadata);
}

absl::Status OneshotTrainer::RestoreCheckpoint(const std::string& path) {
  ASSIGN_OR_RETURN(SafetensorsFile f, LoadSafetensors(path));
  State& s = *state_;
  int64_t step = 0;
  if (f.metadata["format"] != kCheckpointFormat || !absl::SimpleAtoi(f.metadata["step"], &step)) {
    return absl::InvalidArgumentError(absl::StrCat(path, " is not a ganserve one-shot training checkpoint"));
  }
  try {
    c10::NoGradGuard ng;
    TrainingStateReader r(std::move(f), path, s.device);
    for (size_t i = 0; i < s.g_names.size(); ++i) {
      ASSIGN_OR_RETURN(s.g_leaves[i], r.Read("g/" + s.g_names[i], s.g_leaves[i]));
    }
    RETURN_IF_ERROR(r.ReadAdam("g_adam", s.g_names, s.g_adam.get()));
    for (const auto& n : s.d_names) {
      ASSIGN_OR_RETURN(s.d_raw[n], r.Read("d/" + n, s.d_raw.at(n)));
    }
    RETURN_IF_ERROR(r.ReadAdam("d_adam", s.d_names, s.d_adam.get()));
    ASSIGN_OR_RETURN(s.head_weight, r.Read("head/weight", s.head_weight));
    ASSIGN_OR_RETURN(s.head_bias, r.Read("head/bias", s.head_bias));
    RETURN_IF_ERROR(r.ReadAdam("head_adam", {"weight", "bias"}, s.head_adam.get()));
    for (auto& [n, e] : s.ema) {
      ASSIGN_OR_RETURN(e, r.Read("ema/" + n, e));
    }
    ASSIGN_OR_RETURN(s.w_ref, r.Read("w_ref", s.w_ref));
    RETURN_IF_ERROR(r.ReadAdam("ref_adam", {"w_ref"}, s.ref_adam.get()));
  } catch (const c10::Error& e) {
    return TorchErrorStatus(e, "restoring the one-shot checkpoint failed");
  }
  s.step = step;
  s.RebuildTrain();
  return absl::OkStatus();
}

}  // namespace ganserve::core::adapt
