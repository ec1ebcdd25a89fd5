// ganserve_bench: timing scenarios with random weights at the official sizes (values do
// not change speed). Prints one JSON object per scenario on stdout.
//
//   ganserve_bench --scenario generate --resolution 256 --batch 1 --iters 5
#include <sys/resource.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <vector>

#include "core/adapt/domain_trainer.h"
#include "core/adapt/nada_trainer.h"
#include "core/adapt/oneshot_trainer.h"
#include "core/adapt/text_templates.h"
#include "core/checkpoint/safetensors.h"
#include "core/edit/global_directions.h"
#include "core/edit/latent_optimizer.h"
#include "core/edit/mapper_trainer.h"
#include "core/invert/encoder_inversion.h"
#include "core/invert/projector.h"
#include "core/models/psp/random_init.h"
#include "core/models/psp/style_encoder.h"
#include "core/service/render.h"
#ifndef GANSERVE_BENCH_NO_SERVER
#include <google/protobuf/util/json_util.h>
#include <grpcpp/grpcpp.h>
#include <httplib.h>

#include "absl/strings/escaping.h"
#include "absl/strings/str_split.h"

#include "ganserve/v1/ganserve.grpc.pb.h"
#include "server/server.h"
#endif
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <functional>
#include <thread>
#include "bench/op_profile.h"
#include "core/models/clip/clip_model.h"
#include "core/models/clip/clip_model_impl.h"
#include "core/models/clip/random_init.h"
#include "core/models/common/torch_convert.h"
#include "core/models/lpips/alex_lpips.h"
#include "core/models/lpips/random_init.h"
#include "core/models/stylegan2/discriminator.h"
#include "core/models/stylegan2/generator.h"
#include "core/models/stylegan2/random_init.h"
#include "core/registry/model_repository.h"
#include "core/runtime/torch_setup.h"
#include "core/util/np_random.h"

namespace {

using Clock = std::chrono::steady_clock;
namespace sg = ganserve::core::stylegan2;

// --profile-top: after the timed runs, one more under LibTorch's profiler (0: none).
int g_profile_top = 0;

// Adds the op profile of one more `step` to `out` when --profile-top asks for it.
void MaybeProfile(const std::function<bool()>& step, nlohmann::json* out) {
  if (g_profile_top > 0) (*out)["profile"] = ganserve::bench::ProfileOps(step, g_profile_top);
}

double PeakRssMb() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss / 1024.0;
}

nlohmann::json Stats(std::vector<double> secs) {
  std::sort(secs.begin(), secs.end());
  return {{"median_s", secs[secs.size() / 2]}, {"min_s", secs.front()}, {"max_s", secs.back()}, {"runs", secs.size()}};
}

// Forward declaration: defined with the nada_step scenario below.
// --upsample: the upsampling convolutions' form for the generator scenarios.
sg::UpsampleMode g_upsample = sg::UpsampleMode::kAuto;

std::shared_ptr<const sg::Generator> RandomGenerator(int resolution, const std::string& device,
                                                     sg::ModConvMode modconv = sg::ModConvMode::kAuto);

// z of seeds 0..batch-1 (style_dim 512), truncation 0.7.
sg::GenerateParams SeedParams(int batch) {
  sg::GenerateParams p;
  p.latents.shape = {batch, 512};
  for (int i = 0; i < batch; ++i) {
    auto z = sg::SeedToZ(static_cast<uint32_t>(i), 512);
    p.latents.data.insert(p.latents.data.end(), z.begin(), z.end());
  }
  p.truncation = 0.7f;
  return p;
}

int BenchGenerate(int resolution, int batch, int iters, const std::string& device, sg::ModConvMode modconv,
                  nlohmann::json* out) {
  auto gen = RandomGenerator(resolution, device, modconv);
  if (gen == nullptr) return 1;
  const sg::GenerateParams p = SeedParams(batch);
  (void)gen->Generate(p);  // warm-up
  std::vector<double> secs;
  for (int i = 0; i < iters; ++i) {
    auto t0 = Clock::now();
    auto r = gen->Generate(p);
    secs.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
    if (!r.ok()) return 1;
  }
  *out = Stats(secs);
  (*out)["images_per_s"] = batch / (*out)["median_s"].get<double>();
  MaybeProfile([&] { return gen->Generate(p).ok(); }, out);
  return 0;
}

// Random ViT-B/32-sized CLIP (vision 768 x 12, patch 32, 224 px; text 512 x 12; embed
// 512), N(0, 0.02) weights.
// ViT-B/32 encode_image (inference, and with the gradient to the input as the training
// losses need it) and encode_text of 79 prompts, in the given arithmetic precision.
int BenchClip(int batch, int iters, const std::string& device, ganserve::core::clip::ClipPrecision precision,
              nlohmann::json* out) {
  std::map<std::string, std::vector<int64_t>> shapes;
  const int64_t vw = 768, tw = 512, e = 512;
  shapes["visual.conv1.weight"] = {vw, 3, 32, 32};
  shapes["visual.class_embedding"] = {vw};
  shapes["visual.positional_embedding"] = {50, vw};
  for (const char* n : {"visual.ln_pre.weight", "visual.ln_pre.bias", "visual.ln_post.weight", "visual.ln_post.bias"}) {
    shapes[n] = {vw};
  }
  shapes["visual.proj"] = {vw, e};
  shapes["token_embedding.weight"] = {49408, tw};
  shapes["positional_embedding"] = {77, tw};
  shapes["ln_final.weight"] = {tw};
  shapes["ln_final.bias"] = {tw};
  shapes["text_projection"] = {tw, e};
  shapes["logit_scale"] = {};
  auto blocks = [&](const std::string& p, int64_t w) {
    for (int i = 0; i < 12; ++i) {
      const std::string b = p + std::to_string(i) + ".";
      shapes[b + "attn.in_proj_weight"] = {3 * w, w};
      shapes[b + "attn.in_proj_bias"] = {3 * w};
      shapes[b + "attn.out_proj.weight"] = {w, w};
      shapes[b + "attn.out_proj.bias"] = {w};
      for (const char* n : {"ln_1.weight", "ln_1.bias", "ln_2.weight", "ln_2.bias"}) shapes[b + n] = {w};
      shapes[b + "mlp.c_fc.weight"] = {4 * w, w};
      shapes[b + "mlp.c_fc.bias"] = {4 * w};
      shapes[b + "mlp.c_proj.weight"] = {w, 4 * w};
      shapes[b + "mlp.c_proj.bias"] = {w};
    }
  };
  blocks("visual.transformer.resblocks.", vw);
  blocks("transformer.resblocks.", tw);
  ganserve::core::NumpyRandomState rng(3);
  std::vector<std::shared_ptr<ganserve::core::FloatTensor>> keep;
  std::map<std::string, ganserve::core::TensorView> views;
  for (const auto& [name, shape] : shapes) {
    auto t = std::make_shared<ganserve::core::FloatTensor>();
    t->shape = shape;
    t->data = rng.Randn(static_cast<size_t>(ganserve::core::NumElements(shape)));
    for (auto& v : t->data) v *= 0.02f;
    views[name] = ganserve::core::ViewOf(t);
  }
  auto model = ganserve::core::clip::ClipModel::FromTensors(views, device, precision);
  if (!model.ok()) {
    std::fprintf(stderr, "%s\n", model.status().ToString().c_str());
    return 1;
  }
  ganserve::core::FloatTensor images{{batch, 3, 224, 224}, rng.Randn(static_cast<size_t>(batch) * 3 * 224 * 224)};
  std::vector<std::vector<int>> tokens(79, std::vector<int>(77, 0));
  for (auto& row : tokens) {
    row[0] = 49406;
    for (int i = 1; i < 12; ++i) row[i] = 320 + i;
    row[12] = 49407;
  }
  (void)(*model)->EncodeImage(images);
  (void)(*model)->EncodeText(tokens);
  std::vector<double> img_s, txt_s;
  for (int i = 0; i < iters; ++i) {
    auto t0 = Clock::now();
    if (!(*model)->EncodeImage(images).ok()) return 1;
    auto t1 = Clock::now();
    if (!(*model)->EncodeText(tokens).ok()) return 1;
    auto t2 = Clock::now();
    img_s.push_back(std::chrono::duration<double>(t1 - t0).count());
    txt_s.push_back(std::chrono::duration<double>(t2 - t1).count());
  }
  (*out)["encode_image"] = Stats(img_s);
  (*out)["encode_text_79"] = Stats(txt_s);
  std::vector<double> grad_s;
  const auto& impl = (*model)->impl();
  at::Tensor x = at::randn({batch, 3, 224, 224}).to(impl.device);
  for (int i = 0; i <= iters; ++i) {  // the first is warm-up
    auto t0 = Clock::now();
    at::Tensor xi = x.detach().requires_grad_(true);
    impl.EncodeImage(xi).sum().backward();
    (void)xi.grad().sum().item<float>();  // waits for the device
    if (i > 0) grad_s.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
  }
  (*out)["encode_image_with_input_grad"] = Stats(grad_s);
  MaybeProfile(
      [&] {
        at::Tensor xi = x.detach().requires_grad_(true);
        impl.EncodeImage(xi).sum().backward();
        return std::isfinite(xi.grad().sum().item<float>());
      },
      out);
  (*out)["clip_precision"] = ganserve::core::clip::ClipPrecisionName((*model)->precision());
  return 0;
}

// Shared by the generate and nada_step scenarios: a random config-f generator.
std::shared_ptr<const sg::Generator> RandomGenerator(int resolution, const std::string& device,
                                                     sg::ModConvMode modconv) {
  const auto cfg = sg::MakeConfig(resolution, 512, 8, 2);
  auto views = ganserve::core::ViewsOf(
      std::make_shared<const std::map<std::string, ganserve::core::FloatTensor>>(sg::RandomGeneratorWeights(cfg, 1)));
  sg::LoadOptions opt;
  opt.device = device;
  opt.modconv = modconv;
  opt.upsample = g_upsample;
  auto gen = sg::Generator::FromTensors(views, nullptr, opt);
  if (!gen.ok()) {
    std::fprintf(stderr, "%s\n", gen.status().ToString().c_str());
    return nullptr;
  }
  return std::move(*gen);
}

// One StyleGAN-NADA training step: frozen and trainable forward, directional loss with
// a ViT-B/32-sized CLIP, backward, Adam; optionally adaptive layer selection.
int BenchNadaStep(int resolution, int batch, int k, int iters, const std::string& device, sg::ModConvMode modconv,
                  nlohmann::json* out) {
  auto gen = RandomGenerator(resolution, device, modconv);
  if (gen == nullptr) return 1;
  auto views = ganserve::core::ViewsOf(std::make_shared<const std::map<std::string, ganserve::core::FloatTensor>>(
      ganserve::core::clip::RandomClipWeights(ganserve::core::clip::VitB32Config(), 5)));
  auto clip = ganserve::core::clip::ClipModel::FromTensors(views, device);
  auto tok = ganserve::core::clip::Tokenizer::FromText(ganserve::core::clip::SyntheticVocabulary());
  if (!clip.ok() || !tok.ok()) return 1;
  ganserve::core::clip::TextEmbeddingCache cache;
  ganserve::core::adapt::NadaOptions o;
  o.target_text = "pencil sketch";
  o.batch_size = batch;
  o.auto_layer_k = k;
  o.auto_layer_iters = k > 0 ? 1 : 0;
  o.iterations = iters + 1;
  auto trainer = ganserve::core::adapt::NadaTrainer::Create(
      gen, {{"vit-b-32", std::move(*clip), std::move(*tok), 1.0f}}, o, &cache);
  if (!trainer.ok()) {
    std::fprintf(stderr, "%s\n", trainer.status().ToString().c_str());
    return 1;
  }
  if (!(*trainer)->Step().ok()) return 1;  // warm-up
  std::vector<double> secs;
  for (int i = 0; i < iters; ++i) {
    auto t0 = Clock::now();
    if (!(*trainer)->Step().ok()) return 1;
    secs.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
  }
  *out = Stats(secs);
  (*out)["auto_layer_k"] = k;
  MaybeProfile([&] { return (*trainer)->Step().ok(); }, out);
  return 0;
}

double Since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// One warm-up call of `step`, then `iters` timed ones: their Stats, or nullopt when a
// call failed.
template <typename Step>
std::optional<nlohmann::json> TimeSteps(int iters, Step step) {
  if (!step()) return std::nullopt;
  std::vector<double> secs;
  for (int i = 0; i < iters; ++i) {
    auto t0 = Clock::now();
    if (!step()) return std::nullopt;
    secs.push_back(Since(t0));
  }
  return Stats(secs);
}

std::shared_ptr<const ganserve::core::clip::ClipModel> RandomVitB32(const std::string& device) {
  auto views = ganserve::core::ViewsOf(std::make_shared<const std::map<std::string, ganserve::core::FloatTensor>>(
      ganserve::core::clip::RandomClipWeights(ganserve::core::clip::VitB32Config(), 5)));
  auto clip = ganserve::core::clip::ClipModel::FromTensors(views, device);
  if (!clip.ok()) {
    std::fprintf(stderr, "%s\n", clip.status().ToString().c_str());
    return nullptr;
  }
  return std::move(*clip);
}

// A ViT-B/32-sized random CLIP guide (synthetic vocabulary).
std::optional<ganserve::core::adapt::ClipGuide> VitB32Guide(const std::string& device) {
  auto clip = RandomVitB32(device);
  auto tok = ganserve::core::clip::Tokenizer::FromText(ganserve::core::clip::SyntheticVocabulary());
  if (clip == nullptr || !tok.ok()) return std::nullopt;
  return ganserve::core::adapt::ClipGuide{"vit-b-32", std::move(clip), std::move(*tok), 1.0f};
}

// One training step of a lightweight domain (HyperDomainNet's recipe for its kind) with a
// ViT-B/32-sized CLIP: the frozen forward, the forward and backward through the
// generator to the domain's parameters (no weight gradients), Adam.
int BenchDomainStep(int resolution, int batch, const std::string& kind_name, int iters, const std::string& device,
                    sg::ModConvMode form, nlohmann::json* out) {
  const auto kind = sg::ParseDomainKind(kind_name);
  if (!kind) {
    std::fprintf(stderr, "--parameterization must be domain_modulation | stylespace_direction | affine_light\n");
    return 2;
  }
  auto gen = RandomGenerator(resolution, device);
  auto guide = VitB32Guide(device);
  if (gen == nullptr || !guide) return 1;
  ganserve::core::clip::TextEmbeddingCache cache;
  auto o = ganserve::core::adapt::DomainTrainerDefaults(*kind);
  o.target_text = "pencil sketch";
  o.batch_size = batch;
  o.iterations = iters + 1;
  if (form != sg::ModConvMode::kAuto) o.form = form;  // auto: the trainer's default (scaled)
  auto trainer = ganserve::core::adapt::DomainTrainer::Create(gen, {*guide}, o, &cache);
  if (!trainer.ok()) {
    std::fprintf(stderr, "%s\n", trainer.status().ToString().c_str());
    return 1;
  }
  auto stats = TimeSteps(iters, [&] { return (*trainer)->Step().ok(); });
  if (!stats) return 1;
  *out = *stats;
  (*out)["parameterization"] = kind_name;
  (*out)["trained_parameters"] = static_cast<int64_t>([&] {
    int64_t n = 0;
    for (const auto& [name, t] : (*trainer)->Parameters().tensors) n += t.numel();
    return n;
  }());
  return 0;
}

// OneshotCLIP's models at the official sizes, random: a config-f generator (`g` and
// `g_ema`), its discriminator, a ViT-B/32-sized CLIP and StarGAN v2's AlexNet LPIPS.
std::optional<ganserve::core::adapt::OneshotModels> RandomOneshotModels(int resolution, const std::string& device) {
  namespace core = ganserve::core;
  ganserve::core::adapt::OneshotModels m;
  m.g = RandomGenerator(resolution, device);
  m.g_ema = m.g;  // the trainer copies g_ema's tensors into its EMA; one set of weights serves both
  auto guide = VitB32Guide(device);
  if (m.g == nullptr || !guide) return std::nullopt;
  m.clip = std::move(*guide);
  auto d = sg::Discriminator::FromTensors(
      core::ViewsOf(std::make_shared<const std::map<std::string, core::FloatTensor>>(
          sg::RandomDiscriminatorWeights(sg::MakeDiscriminatorConfig(sg::MakeConfig(resolution, 512, 8, 2)), 2))),
      device);
  auto lp = core::lpips::AlexLpips::FromTensors(
      core::ViewsOf(
          std::make_shared<const std::map<std::string, core::FloatTensor>>(core::lpips::RandomAlexNetFeatures(7))),
      core::ViewsOf(
          std::make_shared<const std::map<std::string, core::FloatTensor>>(core::lpips::RandomAlexLpipsLayers(8))),
      device);
  if (!d.ok() || !lp.ok()) {
    std::fprintf(stderr, "%s\n", (!d.ok() ? d.status() : lp.status()).ToString().c_str());
    return std::nullopt;
  }
  m.d = std::move(*d);
  m.lpips = std::move(*lp);
  return m;
}

// OneshotCLIP (OneshotTrainer) at the official defaults except ref_every 2: reference-search
// steps, then fine-tuning iterations alternating the reference-alignment kind (even i)
// and the random (patch) kind (odd i). Each kind: its first step is the warm-up (i = 0
// also runs the lazy R1, as every 16th iteration does), then `iters` timed ones; the
// iterations stop before i = 16 (R1 again), so iters <= 6. Also the default job
// (1001 search steps, 2001 iterations of which 501 align), estimated from the medians
// without R1.
int BenchOneshot(int resolution, int batch, int iters, const std::string& device, nlohmann::json* out) {
  if (iters > 6) {
    std::fprintf(stderr, "oneshot: --iters must be at most 6 (iteration 16 runs the lazy R1)\n");
    return 2;
  }
  auto models = RandomOneshotModels(resolution, device);
  if (!models) return 1;
  ganserve::core::Rgb8Image target;  // a random target at the generator's size
  target.width = target.height = resolution;
  std::mt19937 rng(11);
  target.pixels.resize(static_cast<size_t>(resolution) * resolution * 3);
  for (auto& v : target.pixels) v = static_cast<uint8_t>(rng() & 255);
  namespace adapt = ganserve::core::adapt;
  adapt::OneshotOptions o;
  o.batch_size = batch;
  o.ref_every = 2;
  const int profiled = g_profile_top > 0 ? 1 : 0;
  o.reference_steps = iters + 1 + profiled;
  o.iterations = 2 * (iters + 1 + profiled);
  const auto t_create = Clock::now();
  auto trainer = adapt::OneshotTrainer::Create(std::move(*models), target, o);
  if (!trainer.ok()) {
    std::fprintf(stderr, "%s\n", trainer.status().ToString().c_str());
    return 1;
  }
  (*out)["setup_s"] = Since(t_create);  // w_mean of 10,000 mapped z, the target's CLIP embedding
  auto step = [&] { return (*trainer)->Step().ok(); };
  auto search = TimeSteps(iters, step);
  if (!search) return 1;
  (*out)["reference_search"] = *search;
  if (profiled) (*out)["reference_search"]["profile"] = ganserve::bench::ProfileOps(step, g_profile_top);
  std::vector<double> kinds[2];  // [0]: reference alignment, [1]: random (patch)
  for (int i = 0; i < 2 * (iters + 1); ++i) {
    const auto t0 = Clock::now();
    if (!step()) return 1;
    if (i >= 2) kinds[i % 2].push_back(Since(t0));
  }
  (*out)["fine_tune_reference"] = Stats(kinds[0]);
  (*out)["fine_tune_random"] = Stats(kinds[1]);
  if (profiled) {
    (*out)["fine_tune_reference"]["profile"] = ganserve::bench::ProfileOps(step, g_profile_top);
    (*out)["fine_tune_random"]["profile"] = ganserve::bench::ProfileOps(step, g_profile_top);
  }
  auto median = [&](const char* k) { return (*out)[k]["median_s"].get<double>(); };
  (*out)["default_job_estimate_s"] =
      1001 * median("reference_search") + 501 * median("fine_tune_reference") + 1500 * median("fine_tune_random");
  (*out)["ref_every"] = o.ref_every;
  (*out)["crop_size"] = adapt::EffectiveCropSize(o, resolution);
  (*out)["crops"] = o.crops;
  return 0;
}

// The same prompt and seed trained for `iters` steps with each parameterization (FULL:
// StyleGAN-NADA's recipe at the same batch): the directional CLIP similarity reached on
// a fixed evaluation batch (1 - the directional loss) and the diversity of the adapted
// samples (mean 1 - cos between the CLIP embeddings of pairs), before and after.
int BenchDomainQuality(int resolution, int batch, int iters, const std::string& device, nlohmann::json* out) {
  auto gen = RandomGenerator(resolution, device);
  auto guide = VitB32Guide(device);
  if (gen == nullptr || !guide) return 1;
  ganserve::core::clip::TextEmbeddingCache cache;
  constexpr uint64_t kEvalSeed = 4242;
  constexpr int kEvalBatch = 8;
  // Diversity of images through CLIP: mean over pairs of 1 - cos.
  auto diversity = [&](const ganserve::core::FloatTensor& images) -> double {
    c10::InferenceMode guard;
    const auto& impl = guide->model->impl();
    const ganserve::core::FloatTensor emb =
        ganserve::core::FromTorch(impl.EncodeImage(ganserve::core::clip::PreprocessGeneratorOutput(
            ganserve::core::ToTorch(images, impl.device), impl.config.image_resolution)));
    const auto* e = &emb;
    const int64_t n = e->shape[0], d = e->shape[1];
    double sum = 0;
    int pairs = 0;
    for (int64_t i = 0; i < n; ++i) {
      for (int64_t j = i + 1; j < n; ++j) {
        double dot = 0, na = 0, nb = 0;
        for (int64_t k = 0; k < d; ++k) {
          const double a = e->data[i * d + k], b = e->data[j * d + k];
          dot += a * b;
          na += a * a;
          nb += b * b;
        }
        sum += 1 - dot / std::sqrt(na * nb);
        ++pairs;
      }
    }
    return sum / pairs;
  };
  // Trains `t` for `iters` steps and records what it reached.
  auto measure = [&](auto& t, nlohmann::json& r) -> bool {
    r["diversity_source"] = diversity(*t.Preview(true));
    for (int i = 0; i < iters; ++i) {
      if (!t.Step().ok()) return false;
      if (i == 0) r["direction_similarity_after_1"] = 1 - *t.EvalDirectionLoss(kEvalSeed, kEvalBatch);
    }
    r["direction_similarity"] = 1 - *t.EvalDirectionLoss(kEvalSeed, kEvalBatch);
    r["diversity"] = diversity(*t.Preview(false));
    return true;
  };
  auto count = [](const std::map<std::string, ganserve::core::FloatTensor>& tensors) {
    int64_t n = 0;
    for (const auto& [k, v] : tensors) n += v.numel();
    return n;
  };
  for (const std::string name : {"full", "domain_modulation", "stylespace_direction", "affine_light"}) {
    nlohmann::json r;
    auto t0 = Clock::now();
    if (name == "full") {
      ganserve::core::adapt::NadaOptions o;
      o.target_text = "pencil sketch";
      o.batch_size = batch;
      o.iterations = iters;
      o.preview_count = kEvalBatch;
      auto t = ganserve::core::adapt::NadaTrainer::Create(gen, {*guide}, o, &cache);
      if (!t.ok() || !measure(**t, r)) return 1;
      r["trained_parameters"] = count((*t)->Delta());
    } else {
      auto o = ganserve::core::adapt::DomainTrainerDefaults(*sg::ParseDomainKind(name));
      o.target_text = "pencil sketch";
      o.batch_size = batch;
      o.iterations = iters;
      o.preview_count = kEvalBatch;
      auto t = ganserve::core::adapt::DomainTrainer::Create(gen, {*guide}, o, &cache);
      if (!t.ok() || !measure(**t, r)) return 1;
      r["trained_parameters"] = count((*t)->Parameters().tensors);
    }
    r["seconds"] = Since(t0);
    (*out)[name] = r;
    std::fprintf(stderr, "%s: %s\n", name.c_str(), r.dump().c_str());
  }
  (*out)["steps"] = iters;
  return 0;
}

// Current resident set size of this process, MB (/proc/self/statm).
double RssMb() {
  std::ifstream in("/proc/self/statm");
  long pages = 0, resident = 0;
  in >> pages >> resident;
  return static_cast<double>(resident) * static_cast<double>(sysconf(_SC_PAGESIZE)) / (1024.0 * 1024.0);
}

// A repository of one random base and `count` domain-modulation domains of it: the time
// to load every domain (after the base), the RSS they add, and one mixed batch of 16.
int BenchDomainRepository(int resolution, int count, const std::string& device, nlohmann::json* out) {
  namespace fs = std::filesystem;
  const fs::path root = fs::temp_directory_path() / ("ganserve_bench_domains_" + std::to_string(::getpid()));
  fs::remove_all(root);
  fs::create_directories(root / "base");
  const auto cfg = sg::MakeConfig(resolution, 512, 8, 2);
  if (!ganserve::core::SaveSafetensors((root / "base" / "g.safetensors").string(), sg::RandomGeneratorWeights(cfg, 1),
                                       {})
           .ok()) {
    return 1;
  }
  std::ofstream(root / "base" / "manifest.json") << R"({"kind": "generator", "checkpoint": "g.safetensors"})";
  for (int i = 0; i < count; ++i) {
    const fs::path dir = root / ("d" + std::to_string(i));
    fs::create_directories(dir);
    std::map<std::string, ganserve::core::FloatTensor> t;
    ganserve::core::NumpyRandomState rng(static_cast<uint32_t>(i));
    for (const auto& [name, shape] : sg::DomainTensorShapes(cfg, sg::DomainKind::kDomainModulation)) {
      t[name] = {shape, rng.Randn(static_cast<size_t>(shape[0]))};
    }
    if (!ganserve::core::SaveSafetensors((dir / "domain.safetensors").string(), t, {}).ok()) return 1;
    std::ofstream(dir / "manifest.json") << R"({"kind": "adapted_generator", "base_model": "base", )"
                                         << R"("parameterization": "domain_modulation", "domain_file": )"
                                         << R"("domain.safetensors"})";
  }
  sg::LoadOptions opt;
  opt.device = device;
  ganserve::core::ResidencyOptions residency;
  residency.preload = ganserve::core::ResidencyOptions::Preload::kNone;
  auto t0 = Clock::now();
  auto repo = ganserve::core::ModelRepository::Create(root.string(), opt, {}, residency);
  if (!repo.ok()) return 1;
  (*repo)->LoadAll();  // scans the manifests; loads nothing
  (*out)["scan_s"] = Since(t0);
  t0 = Clock::now();
  auto base = (*repo)->GetGenerator("base");
  if (!base.ok()) return 1;
  (*out)["base_load_s"] = Since(t0);
  const double rss_base = RssMb();
  t0 = Clock::now();
  std::vector<std::shared_ptr<const sg::Generator>> views;
  for (int i = 0; i < count; ++i) {
    auto g = (*repo)->GetGenerator("d" + std::to_string(i));
    if (!g.ok()) {
      std::fprintf(stderr, "%s\n", g.status().ToString().c_str());
      return 1;
    }
    views.push_back(*g);
  }
  (*out)["domains_load_s"] = Since(t0);
  (*out)["rss_with_base_mb"] = rss_base;
  // Freed memory that glibc retains (--retain-host-memory) absorbs small allocations, so
  // the RSS change can undercount; the repository's own accounting is exact.
  (*out)["rss_added_by_domains_mb"] = RssMb() - rss_base;
  int64_t accounted = 0;
  for (const auto& m : (*repo)->List()) {
    if (m.lightweight()) accounted += m.resident.host_bytes + m.resident.device_bytes;
  }
  (*out)["domains_resident_mb"] = static_cast<double>(accounted) / (1024.0 * 1024.0);
  (*out)["domains"] = count;
  sg::GenerateParams p = SeedParams(16);
  for (int i = 0; i < 16; ++i) p.domains.push_back(views[static_cast<size_t>(i * count / 16)]->domain());
  t0 = Clock::now();
  if (!(*base)->Generate(p).ok()) return 1;
  (*out)["mixed_batch_16_s"] = Since(t0);
  fs::remove_all(root);
  return 0;
}

// Serving lightweight domains: a batch of `batch` images from `batch` different domains,
// from one domain, and as `batch` separate one-image calls; the memory a resident domain
// holds beside its base.
int BenchDomainServe(int resolution, int batch, int iters, const std::string& device, nlohmann::json* out) {
  auto gen = RandomGenerator(resolution, device);
  if (gen == nullptr) return 1;
  std::vector<std::shared_ptr<const sg::Domain>> domains;
  for (int i = 0; i < batch; ++i) {
    sg::DomainTensors t;
    t.kind = sg::DomainKind::kDomainModulation;
    ganserve::core::NumpyRandomState rng(static_cast<uint32_t>(100 + i));
    for (const auto& [name, shape] : sg::DomainTensorShapes(gen->config(), t.kind)) {
      ganserve::core::FloatTensor v{shape, rng.Randn(static_cast<size_t>(shape[0]))};
      for (float& x : v.data) x *= 0.1f;
      t.tensors[name] = v;
    }
    auto d = gen->MakeDomain(t);
    if (!d.ok()) return 1;
    domains.push_back(*d);
  }
  sg::GenerateParams mixed = SeedParams(batch), single = SeedParams(batch);
  mixed.domains = {domains.begin(), domains.end()};
  single.domains.assign(static_cast<size_t>(batch), domains[0]);
  auto many = TimeSteps(iters, [&] { return gen->Generate(mixed).ok(); });
  auto one = TimeSteps(iters, [&] { return gen->Generate(single).ok(); });
  auto separate = TimeSteps(iters, [&] {
    for (int i = 0; i < batch; ++i) {
      sg::GenerateParams p = SeedParams(1);
      p.domains = {domains[static_cast<size_t>(i)]};
      if (!gen->Generate(p).ok()) return false;
    }
    return true;
  });
  if (!many || !one || !separate) return 1;
  (*out)["mixed_domains"] = *many;
  (*out)["one_domain"] = *one;
  (*out)["separate_calls"] = *separate;
  for (const char* k : {"mixed_domains", "one_domain", "separate_calls"}) {
    (*out)[k]["images_per_s"] = batch / (*out)[k]["median_s"].get<double>();
  }
  const auto fp = domains[0]->Footprint();
  (*out)["domain_bytes"] = fp.host_bytes + fp.device_bytes;
  (*out)["domain_parameters"] = domains[0]->parameter_count();
  const auto g = gen->Footprint();
  (*out)["generator_bytes"] = g.host_bytes + g.device_bytes;
  return 0;
}

// One StyleCLIP global-direction edit of `batch` images: the text direction from
// cached template embeddings, relevance (5376 x 512 at 1024 px) times it, the beta
// threshold, and the render from S; compared with a plain z render of the same batch.
int BenchEditGlobal(int resolution, int batch, int iters, const std::string& device, nlohmann::json* out) {
  namespace ed = ganserve::core::edit;
  using ganserve::core::FloatTensor;
  auto gen = RandomGenerator(resolution, device);
  auto clip = RandomVitB32(device);
  auto tok = ganserve::core::clip::Tokenizer::FromText(ganserve::core::clip::SyntheticVocabulary());
  if (gen == nullptr || clip == nullptr || !tok.ok()) return 1;
  const auto& cfg = gen->config();
  ed::GlobalStats stats;
  stats.channels = ed::RelevanceChannels(cfg, 128);
  ganserve::core::NumpyRandomState rng(7);
  const int64_t rows = static_cast<int64_t>(stats.channels.size());
  stats.relevance = FloatTensor{{rows, 512}, rng.Randn(static_cast<size_t>(rows) * 512)};
  for (int64_t r = 0; r < rows; ++r) {
    double n = 0;
    for (int j = 0; j < 512; ++j) n += std::pow(stats.relevance.data[r * 512 + j], 2);
    for (int j = 0; j < 512; ++j) stats.relevance.data[r * 512 + j] /= static_cast<float>(std::sqrt(n));
  }
  stats.s_mean = FloatTensor{{cfg.s_dim}, std::vector<float>(static_cast<size_t>(cfg.s_dim), 0.0f)};
  stats.s_std = FloatTensor{{cfg.s_dim}, std::vector<float>(static_cast<size_t>(cfg.s_dim), 1.0f)};
  ganserve::core::clip::TextEmbeddingCache cache;
  auto embed = [&](const std::string& text) {
    return cache.Encode("vit-b-32", *clip, **tok, ganserve::core::adapt::ApplyTemplates(text));
  };
  auto t0 = Clock::now();
  if (!embed("a face").ok() || !embed("a smiling face").ok()) return 1;
  (*out)["text_encode_cold_s"] = Since(t0);  // 2 x 79 prompts, once per prompt pair
  sg::GenerateParams z;
  z.latents.shape = {batch, 512};
  z.latents.data = rng.Randn(static_cast<size_t>(batch) * 512);
  z.truncation = 0.7f;
  z.return_s = true;
  auto base = gen->Generate(z);  // warm-up, and the starting S codes
  if (!base.ok()) return 1;
  std::vector<double> direction_s, render_s, plain_s;
  for (int i = 0; i < iters; ++i) {
    auto t1 = Clock::now();
    auto n = embed("a face");
    auto t = embed("a smiling face");
    if (!n.ok() || !t.ok()) return 1;
    auto dir = ed::MakeGlobalDirection(stats, ed::TextDirection(*n, *t), 0.05f);
    if (!dir.ok()) return 1;
    direction_s.push_back(Since(t1));
    sg::GenerateParams s;
    s.space = sg::LatentSpace::kS;
    s.latents = base->s;
    for (int64_t b = 0; b < batch; ++b) {
      for (int64_t j = 0; j < cfg.s_dim; ++j) s.latents.data[b * cfg.s_dim + j] += 4.0f * dir->delta_s.data[j];
    }
    auto t2 = Clock::now();
    if (!gen->Generate(s).ok()) return 1;
    render_s.push_back(Since(t2));
    auto t3 = Clock::now();
    z.return_s = false;
    if (!gen->Generate(z).ok()) return 1;
    plain_s.push_back(Since(t3));
  }
  (*out)["direction"] = Stats(direction_s);
  (*out)["render_from_s"] = Stats(render_s);
  (*out)["plain_generate"] = Stats(plain_s);
  (*out)["relevance_rows"] = rows;
  return 0;
}

// The global-direction statistics job: one statistics step (1000 mapped samples) and
// relevance steps of `batch` renders + CLIP (ViT-B/32 size), extrapolated to the full
// reference job (100,000 samples, 100 images per channel).
int BenchGlobalStats(int resolution, int batch, int iters, int render_resolution, const std::string& device,
                     nlohmann::json* out) {
  namespace ed = ganserve::core::edit;
  auto gen = RandomGenerator(resolution, device);
  auto clip = RandomVitB32(device);
  if (gen == nullptr || clip == nullptr) return 1;
  ed::GlobalStatsOptions o;
  o.num_samples = 1000;
  o.num_images = 100;
  o.batch_size = batch % 2 == 0 ? batch : batch + 1;
  o.render_resolution = render_resolution;
  auto b = ed::GlobalStatsBuilder::Create(gen, clip, o);
  if (!b.ok()) {
    std::fprintf(stderr, "%s\n", b.status().ToString().c_str());
    return 1;
  }
  auto t0 = Clock::now();
  if (!(*b)->Step().ok()) return 1;
  const double sample_step = Since(t0);
  if (!(*b)->Step().ok()) return 1;  // warm-up relevance step
  std::vector<double> secs;
  for (int i = 0; i < iters; ++i) {
    auto t1 = Clock::now();
    if (!(*b)->Step().ok()) return 1;
    secs.push_back(Since(t1));
  }
  *out = Stats(secs);
  const double channels = static_cast<double>(ed::RelevanceChannels(gen->config(), 128).size());
  const double steps_per_channel = std::ceil(200.0 / o.batch_size);
  const double full = 100 * sample_step + channels * steps_per_channel * (*out)["median_s"].get<double>();
  (*out)["sample_step_1000_s"] = sample_step;
  (*out)["relevance_channels"] = channels;
  (*out)["full_job_estimate_hours"] = full / 3600;
  (*out)["render_resolution"] = render_resolution;
  return 0;
}

// How relevance rows measured on partial images (render_resolution) agree with rows
// measured on full images: every `stride`-th relevance channel, `images` images per
// channel, both from the same samples. Per row the cosine; and for each full row taken
// as the text direction, the channels selected at beta 0.1 / 0.15 / 0.2 (|r| >= beta)
// in both, as a Jaccard index. Also the time of each pass.
int BenchGlobalStatsAgreement(int resolution, int render_resolution, int stride, int images, const std::string& device,
                              nlohmann::json* out) {
  namespace ed = ganserve::core::edit;
  auto gen = RandomGenerator(resolution, device);
  auto clip = RandomVitB32(device);
  if (gen == nullptr || clip == nullptr) return 1;
  std::map<int, ed::GlobalStats> stats;
  for (int render : {0, render_resolution}) {
    ed::GlobalStatsOptions o;
    o.num_samples = 1000;
    o.num_images = images;
    o.sample_batch = 1000;
    o.channel_stride = stride;
    o.render_resolution = render;
    auto b = ed::GlobalStatsBuilder::Create(gen, clip, o);
    if (!b.ok()) {
      std::fprintf(stderr, "%s\n", b.status().ToString().c_str());
      return 1;
    }
    auto t0 = Clock::now();
    while ((*b)->step() < (*b)->total_steps()) {
      if (!(*b)->Step().ok()) return 1;
    }
    (*out)[render == 0 ? "full_s" : "partial_s"] = Since(t0);
    auto r = (*b)->Result();
    if (!r.ok()) return 1;
    stats[render] = std::move(*r);
  }
  const auto& full = stats[0].relevance;
  const auto& part = stats[render_resolution].relevance;
  const int64_t rows = full.shape[0], d = full.shape[1];
  auto dot = [&](const ganserve::core::FloatTensor& a, int64_t i, const ganserve::core::FloatTensor& b, int64_t j) {
    double s = 0;
    for (int64_t k = 0; k < d; ++k) s += double{a.data[i * d + k]} * b.data[j * d + k];
    return s;
  };
  std::vector<double> cos;
  for (int64_t i = 0; i < rows; ++i) cos.push_back(dot(full, i, part, i));  // unit rows
  std::sort(cos.begin(), cos.end());
  double mean = 0;
  for (double c : cos) mean += c;
  (*out)["rows"] = rows;
  (*out)["cosine"] = {{"mean", mean / rows}, {"min", cos.front()}, {"median", cos[cos.size() / 2]}};
  for (double beta : {0.1, 0.15, 0.2}) {
    double jaccard = 0, selected = 0;
    for (int64_t t = 0; t < rows; ++t) {  // direction: full row t
      int both = 0, either = 0;
      for (int64_t j = 0; j < rows; ++j) {
        const bool a = std::fabs(dot(full, j, full, t)) >= beta, b = std::fabs(dot(part, j, full, t)) >= beta;
        both += a && b;
        either += a || b;
        selected += a;
      }
      jaccard += either == 0 ? 1.0 : static_cast<double>(both) / either;
    }
    (*out)["beta_" + std::to_string(beta).substr(0, 4)] = {{"jaccard", jaccard / rows},
                                                           {"mean_selected_full", selected / rows}};
  }
  (*out)["render_resolution"] = render_resolution;
  (*out)["channel_stride"] = stride;
  (*out)["images_per_channel"] = images;
  return 0;
}

// One rosinality-projector step (forward, MSE + CLIP image loss with a ViT-B/32-sized
// CLIP, noise regulariser, backward, Adam) on a generated target.
int BenchInvertStep(int resolution, int iters, const std::string& device, nlohmann::json* out) {
  auto gen = RandomGenerator(resolution, device);
  auto clip = RandomVitB32(device);
  if (gen == nullptr || clip == nullptr) return 1;
  ganserve::core::Rgb8Image target;
  target.width = target.height = resolution;
  target.pixels.assign(static_cast<size_t>(resolution) * resolution * 3, 128);
  ganserve::core::invert::ProjectorOptions o;
  o.steps = iters + 2;
  auto p = ganserve::core::invert::Projector::Create(gen, target, o, clip);
  if (!p.ok()) {
    std::fprintf(stderr, "%s\n", p.status().ToString().c_str());
    return 1;
  }
  auto timed = TimeSteps(iters, [&] { return (*p)->Step().ok(); });
  if (!timed) return 1;
  *out = *timed;
  (*out)["steps_per_s"] = 1.0 / (*out)["median_s"].get<double>();
  return 0;
}

// One StyleCLIP latent-optimization step (edit mode, batch 1): render from w+, the CLIP
// loss on the 7x-upsampled and pooled image with a ViT-B/32-sized CLIP, the l2 term,
// backward to w+, Adam.
int BenchLatentOptStep(int resolution, int iters, const std::string& device, nlohmann::json* out) {
  auto gen = RandomGenerator(resolution, device);
  auto clip = RandomVitB32(device);
  if (gen == nullptr || clip == nullptr) return 1;
  sg::GenerateParams p = SeedParams(1);
  p.render_images = false;
  p.return_wplus = true;
  auto start = gen->Generate(p);
  if (!start.ok()) return 1;
  ganserve::core::NumpyRandomState rng(11);
  ganserve::core::FloatTensor text{{512}, rng.Randn(512)};
  ganserve::core::edit::LatentOptimizationOptions o;
  o.steps = iters + 2;
  auto opt = ganserve::core::edit::LatentOptimizer::Create(gen, clip, start->wplus, text, {}, o);
  if (!opt.ok()) {
    std::fprintf(stderr, "%s\n", opt.status().ToString().c_str());
    return 1;
  }
  auto timed = TimeSteps(iters, [&] { return (*opt)->Step().ok(); });
  if (!timed) return 1;
  *out = *timed;
  (*out)["steps_per_s"] = 1.0 / (*out)["median_s"].get<double>();
  return 0;
}

// StyleCLIP's latent mapper: an edit (w + 0.1 * mapper(w) for `batch` w+ latents, then
// their render, as Edit runs it) and a training step (batch 2, the official: the mapper,
// a render with its backward, ViT-B/32's CLIP loss, latent L2 and Ranger; no identity
// loss).
int BenchMapper(int resolution, int batch, int iters, const std::string& device, nlohmann::json* out) {
  namespace ce = ganserve::core::edit;
  auto gen = RandomGenerator(resolution, device);
  auto clip = RandomVitB32(device);
  if (gen == nullptr || clip == nullptr) return 1;
  ganserve::core::NumpyRandomState rng(11);
  ganserve::core::FloatTensor text{{512}, rng.Randn(512)};
  ce::MapperTrainerOptions o;
  o.steps = iters + 2;
  o.train_latents = 64;
  o.id_lambda = 0;  // no ArcFace here (the official side runs with --id_lambda 0 too)
  auto trainer = ce::MapperTrainer::Create(gen, clip, text, {}, o);
  if (!trainer.ok()) {
    std::fprintf(stderr, "%s\n", trainer.status().ToString().c_str());
    return 1;
  }
  sg::GenerateParams p = SeedParams(batch);
  p.render_images = false;
  p.return_wplus = true;
  auto start = gen->Generate(p);
  if (!start.ok()) return 1;
  const ce::LatentMapper& mapper = (*trainer)->mapper();
  auto edit = TimeSteps(iters, [&] {
    auto w = mapper.Apply(start->wplus, 1.0f);
    if (!w.ok()) return false;
    sg::GenerateParams r;
    r.space = sg::LatentSpace::kWPlus;
    r.latents = *std::move(w);
    return gen->Generate(r).ok();
  });
  auto residual = TimeSteps(iters, [&] { return mapper.Residual(start->wplus).ok(); });
  auto train = TimeSteps(iters, [&] { return (*trainer)->Step().ok(); });
  if (!edit || !residual || !train) return 1;
  (*out)["edit"] = *edit;
  (*out)["edit_images_per_s"] = batch / (*edit)["median_s"].get<double>();
  (*out)["mapper_forward"] = *residual;
  (*out)["train_step"] = *train;
  (*out)["train_steps_per_s"] = 1.0 / (*train)["median_s"].get<double>();
  return 0;
}

// Inversion by encoder (e4e): `batch` random 256 px photos through the encoder alone
// ("encode"), and one photo's whole ENCODER inversion ("invert": the encoder, the render
// with the stored noise maps at `resolution` and the PSNR, as the job's step runs it).
int BenchEncoder(int resolution, int batch, int iters, const std::string& device, nlohmann::json* out) {
  namespace ci = ganserve::core::invert;
  namespace cp = ganserve::core::psp;
  auto gen = RandomGenerator(resolution, device);
  if (gen == nullptr) return 1;
  ganserve::core::NumpyRandomState rs(12);
  auto weights = std::make_shared<std::map<std::string, ganserve::core::FloatTensor>>();
  for (auto& [k, v] : cp::RandomEncoderWeights(&rs, cp::StyleCountFor(resolution))) (*weights)[k] = std::move(v);
  const auto views = ganserve::core::ViewsOf(weights);
  auto loaded = cp::StyleEncoder::FromTensors(views, views.at("latent_avg"), {}, device);
  if (!loaded.ok()) {
    std::fprintf(stderr, "%s\n", loaded.status().ToString().c_str());
    return 1;
  }
  std::shared_ptr<const cp::StyleEncoder> encoder = std::move(*loaded);
  weights.reset();
  const int64_t side = cp::kEncoderInputSize;
  ganserve::core::FloatTensor photos{{batch, 3, side, side}, rs.Randn(static_cast<size_t>(batch * 3 * side * side))};
  for (float& v : photos.data) v = std::clamp(v * 0.5f, -1.0f, 1.0f);
  auto photo = ganserve::core::FloatToRgb8(photos, 0);
  if (!photo.ok()) return 1;
  auto encode = TimeSteps(iters, [&] { return encoder->Encode(photos).ok(); });
  ci::ProjectorOptions none;
  none.steps = 0;
  auto invert = TimeSteps(iters, [&] {
    auto inv = ci::EncoderInverter::Create(encoder, gen, *photo, none, nullptr);
    return inv.ok() && (*inv)->Step().ok() && (*inv)->Result().ok();
  });
  if (!encode || !invert) return 1;
  (*out)["encode"] = *encode;
  (*out)["encode_images_per_s"] = batch / (*encode)["median_s"].get<double>();
  (*out)["invert"] = *invert;
  (*out)["encoder_parameters_m"] =
      static_cast<double>(encoder->Footprint().host_bytes + encoder->Footprint().device_bytes) / 4e6;
  return 0;
}

#ifndef GANSERVE_BENCH_NO_SERVER
// The service's overhead: GenerateSamples of `batch` seeds (PNG) through a real server
// on loopback, over gRPC and over the HTTP/JSON gateway (base64 PNGs in NDJSON, parsed
// by the client as a caller would), against the same render and encoding in-process;
// the three alternate within each iteration.
int BenchServer(int resolution, int batch, int iters, int callers, const std::string& device, nlohmann::json* out) {
  namespace fs = std::filesystem;
  const fs::path root = fs::temp_directory_path() / ("ganserve_bench_server_" + std::to_string(getpid()));
  fs::create_directories(root / "models" / "g");
  const auto cfg = sg::MakeConfig(resolution, 512, 8, 2);
  if (!ganserve::core::SaveSafetensors((root / "models/g/g.safetensors").string(), sg::RandomGeneratorWeights(cfg, 1),
                                       {})
           .ok()) {
    return 1;
  }
  std::ofstream(root / "models/g/manifest.json")
      << R"({"kind": "generator", "checkpoint": "g.safetensors", "default_truncation": 0.7})";
  ganserve::server::ServerOptions o;
  o.listen = "127.0.0.1:0";
  o.metrics_listen = "";
  o.app.data_dir = (root / "data").string();
  o.app.model_repository = (root / "models").string();
  o.app.device = device;
  o.app.limits.max_message_mb = 64;
  o.http_listen = "127.0.0.1:0";
  auto server = ganserve::server::GanServer::Start(o);
  if (!server.ok()) {
    std::fprintf(stderr, "%s\n", server.status().ToString().c_str());
    return 1;
  }
  (*server)->WaitUntilLoaded();
  auto channel =
      grpc::CreateChannel("127.0.0.1:" + std::to_string((*server)->port()), grpc::InsecureChannelCredentials());
  auto stub = ganserve::v1::GanService::NewStub(channel);
  ganserve::v1::GenerateSamplesRequest req;
  req.set_model("g");
  for (int i = 0; i < batch; ++i) req.add_seeds(i);
  req.set_batch_size(batch);
  ganserve::v1::ImageBatch last_batch;
  auto rpc = [&]() {
    grpc::ClientContext ctx;
    auto reader = stub->GenerateSamples(&ctx, req);
    ganserve::v1::ImageBatch b;
    while (reader->Read(&b)) last_batch = b;
    return reader->Finish().ok();
  };
  httplib::Client http_client("127.0.0.1", (*server)->http_port());
  http_client.set_read_timeout(600, 0);
  nlohmann::json http_body = {{"seeds", nlohmann::json::array()}, {"batchSize", batch}};
  for (int i = 0; i < batch; ++i) http_body["seeds"].push_back(i);
  const std::string http_request = http_body.dump();
  auto http = [&]() {
    auto res = http_client.Post("/v1/models/g:generate", http_request, "application/json");
    if (!res || res->status != 200) return false;
    size_t images = 0;
    for (absl::string_view line : absl::StrSplit(res->body, '\n', absl::SkipEmpty())) {
      const nlohmann::json m = nlohmann::json::parse(line);
      for (const auto& img : m["images"]) {
        std::string png;
        if (absl::Base64Unescape(img["data"].get<std::string>(), &png) && png.rfind("\x89PNG", 0) == 0) ++images;
      }
    }
    return images == static_cast<size_t>(batch);
  };
  // In-process: the same plan, render and PNG encoding without gRPC.
  auto gen = sg::Generator::Load((root / "models/g/g.safetensors").string(), {device, "", sg::ModConvMode::kAuto});
  if (!gen.ok()) return 1;
  ganserve::core::service::GeneratePlan plan;
  plan.model = "g";
  plan.generator = std::shared_ptr<const sg::Generator>(std::move(*gen));
  plan.total = plan.batch_size = batch;
  for (int i = 0; i < batch; ++i) plan.seeds.push_back(static_cast<uint32_t>(i));
  plan.truncation = 0.7f;
  std::vector<double> encode_s;  // the PNG encoding alone: what the host pool takes off the device thread
  auto local = [&]() {
    auto w = ganserve::core::service::PrepareGenerateBatch(plan, 0, batch);
    auto r = w.generator->Generate(w.params);
    if (!r.ok()) return false;
    auto t0 = Clock::now();
    const bool ok = ganserve::core::service::EncodeBatch(w, *r).ok();
    encode_s.push_back(Since(t0));
    return ok;
  };
  if (!rpc() || !http() || !local()) return 1;  // warm-up
  std::vector<double> server_s, http_s, local_s;
  for (int i = 0; i < iters; ++i) {
    auto t0 = Clock::now();
    if (!rpc()) return 1;
    server_s.push_back(Since(t0));
    auto th = Clock::now();
    if (!http()) return 1;
    http_s.push_back(Since(th));
    auto t1 = Clock::now();
    if (!local()) return 1;
    local_s.push_back(Since(t1));
  }
  if (callers > 1) {
    // `callers` concurrent streams, each of `iters` requests: images/s over the wall time
    // (the render batcher may coalesce their batches).
    std::atomic<bool> ok{true};
    std::vector<std::thread> threads;
    auto t0 = Clock::now();
    for (int c = 0; c < callers; ++c) {
      threads.emplace_back([&] {
        for (int i = 0; i < iters; ++i) {
          if (!rpc()) ok = false;
        }
      });
    }
    for (auto& t : threads) t.join();
    const double wall = Since(t0);
    if (!ok) return 1;
    (*out)["concurrent"] = {
        {"callers", callers}, {"wall_s", wall}, {"images_per_s", static_cast<double>(callers) * iters * batch / wall}};
  }
  // What the gateway adds to a call, without the render's noise: one batch's protobuf
  // JSON (base64 PNGs) printed, then parsed and decoded as a client does.
  std::vector<double> transcode_s;
  for (int i = 0; i < 20; ++i) {
    auto t0 = Clock::now();
    std::string text;
    if (!google::protobuf::util::MessageToJsonString(last_batch, &text).ok()) return 1;
    const nlohmann::json m = nlohmann::json::parse(text);
    size_t bytes = 0;
    for (const auto& img : m["images"]) {
      std::string png;
      if (!absl::Base64Unescape(img["data"].get<std::string>(), &png)) return 1;
      bytes += png.size();
    }
    transcode_s.push_back(Since(t0));
    (*out)["batch_png_bytes"] = bytes;
  }
  (*out)["http_transcode"] = Stats(transcode_s);
  (*server)->Shutdown(absl::Seconds(2));
  fs::remove_all(root);
  (*out)["server"] = Stats(server_s);
  (*out)["http_json"] = Stats(http_s);
  (*out)["in_process"] = Stats(local_s);
  (*out)["png_encode"] = Stats(encode_s);
  const double s = (*out)["server"]["median_s"].get<double>(), l = (*out)["in_process"]["median_s"].get<double>();
  (*out)["overhead_percent"] = 100.0 * (s - l) / l;
  const double h = (*out)["http_json"]["median_s"].get<double>();
  (*out)["http_over_grpc_percent"] = 100.0 * (h - s) / s;
  (*out)["images_per_s"] = batch / s;
  (*out)["in_process_images_per_s"] = batch / l;
  return 0;
}

#endif  // GANSERVE_BENCH_NO_SERVER

// The device's arithmetic against the CPU's on the same random weights and inputs: a
// 256 px generator (both modulated-convolution forms, constant noise) and a
// ViT-B/32-sized CLIP image encoder in float32 and in the device's default precision.
// Reports the largest differences; it fails only when the device cannot run them.
int BenchDeviceParity(int batch, const std::string& device, nlohmann::json* out) {
  const sg::GenerateParams p = SeedParams(batch);
  auto compare = [](const ganserve::core::FloatTensor& ref, const ganserve::core::FloatTensor& got) {
    double max_abs = 0, sum_abs = 0, max_ref = 0;
    for (size_t i = 0; i < ref.data.size(); ++i) {
      const double d = std::fabs(static_cast<double>(ref.data[i]) - got.data[i]);
      max_abs = std::max(max_abs, d);
      sum_abs += d;
      max_ref = std::max(max_ref, std::fabs(static_cast<double>(ref.data[i])));
    }
    return nlohmann::json{{"max_abs_diff", max_abs},
                          {"mean_abs_diff", sum_abs / std::max<size_t>(1, ref.data.size())},
                          {"max_abs_value", max_ref}};
  };
  auto cpu_gen = RandomGenerator(256, "cpu");
  if (cpu_gen == nullptr) return 1;
  auto ref = cpu_gen->Generate(p);
  if (!ref.ok()) return 1;
  for (auto [name, mode] : {std::pair{"grouped", sg::ModConvMode::kGrouped}, {"scaled", sg::ModConvMode::kScaled}}) {
    auto gen = RandomGenerator(256, device, mode);
    if (gen == nullptr) return 1;
    auto r = gen->Generate(p);
    if (!r.ok() || r->images.data.size() != ref->images.data.size()) return 1;
    (*out)[std::string("generator_256_") + name] = compare(ref->images, r->images);
  }
  auto views = ganserve::core::ViewsOf(std::make_shared<const std::map<std::string, ganserve::core::FloatTensor>>(
      ganserve::core::clip::RandomClipWeights(ganserve::core::clip::VitB32Config(), 5)));
  ganserve::core::NumpyRandomState rng(7);
  const ganserve::core::FloatTensor images{{batch, 3, 224, 224}, rng.Randn(static_cast<size_t>(batch) * 3 * 224 * 224)};
  auto cpu_clip =
      ganserve::core::clip::ClipModel::FromTensors(views, "cpu", ganserve::core::clip::ClipPrecision::kFloat32);
  if (!cpu_clip.ok()) return 1;
  auto ref_emb = (*cpu_clip)->EncodeImage(images);
  if (!ref_emb.ok()) return 1;
  for (auto prec : {ganserve::core::clip::ClipPrecision::kFloat32, ganserve::core::clip::ClipPrecision::kAuto}) {
    auto clip = ganserve::core::clip::ClipModel::FromTensors(views, device, prec);
    if (!clip.ok()) {
      std::fprintf(stderr, "%s\n", clip.status().ToString().c_str());
      return 1;
    }
    auto emb = (*clip)->EncodeImage(images);
    if (!emb.ok()) return 1;
    auto j = compare(*ref_emb, *emb);
    const int64_t e = ref_emb->shape[1];
    double min_cos = 1;
    for (int i = 0; i < batch; ++i) {
      double dot = 0, na = 0, nb = 0;
      for (int64_t k = 0; k < e; ++k) {
        const double a = ref_emb->data[i * e + k], b = emb->data[i * e + k];
        dot += a * b;
        na += a * a;
        nb += b * b;
      }
      min_cos = std::min(min_cos, dot / std::sqrt(na * nb));
    }
    j["min_cosine"] = min_cos;
    (*out)[std::string("clip_image_") + ganserve::core::clip::ClipPrecisionName((*clip)->precision())] = j;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app("ganserve benchmarks");
  std::string scenario = "generate", device = "cpu", modconv = "auto";
  int resolution = 256, batch = 1, iters = 5, threads = 0;
  app.add_option("--scenario", scenario,
                 "generate | clip | nada_step | edit_global | global_stats | global_stats_agreement | invert_step | "
                 "latent_opt_step | server | device_parity | domain_step | domain_quality | domain_serve | "
                 "domain_repository | oneshot | mapper | encoder")
      ->check(CLI::IsMember({"generate", "clip", "nada_step", "edit_global", "global_stats", "global_stats_agreement",
                             "invert_step", "latent_opt_step", "server", "device_parity", "domain_step",
                             "domain_quality", "domain_serve", "domain_repository", "oneshot", "mapper", "encoder"}));
  int auto_layer_k = 0;
  app.add_option("--auto-layer-k", auto_layer_k, "nada_step: layers to select (0: no selection)");
  int domains = 1000;
  app.add_option("--domains", domains, "domain_repository: domains in the repository")->check(CLI::Range(1, 100000));
  std::string parameterization = "domain_modulation";
  app.add_option("--parameterization", parameterization,
                 "domain_step: domain_modulation | stylespace_direction | affine_light");
  app.add_option("--resolution", resolution)->check(CLI::IsMember({32, 64, 128, 256, 512, 1024}));
  app.add_option("--batch", batch)->check(CLI::Range(1, 64));
  app.add_option("--iters", iters)->check(CLI::Range(1, 1000));
  app.add_option("--threads", threads);
  int render_resolution = 0, stride = 168, images = 8;
  app.add_option("--render-resolution", render_resolution,
                 "global_stats: stop relevance renders at this size; global_stats_agreement: the size compared with "
                 "full images");
  app.add_option("--channel-stride", stride, "global_stats_agreement: every k-th relevance channel");
  app.add_option("--images", images, "global_stats_agreement: images per channel");
  app.add_option("--profile-top", g_profile_top,
                 "generate, nada_step, clip (encode_image with the input gradient), oneshot (each step kind): one more "
                 "run under LibTorch's profiler; print the N ops with the most self time")
      ->check(CLI::Range(0, 1000));
  int callers = 1;
  app.add_option("--callers", callers, "server: concurrent callers for the images/s figure")->check(CLI::Range(1, 64));
  bool retain = true;
  app.add_option("--retain-host-memory", retain, "glibc keeps freed memory (as ganserve does by default)");
  app.add_option("--device", device);
  std::string clip_precision = "auto";
  app.add_option("--clip-precision", clip_precision, "clip: auto | fp32 | fp16 | bf16")
      ->check(CLI::IsMember({"auto", "fp32", "fp16", "bf16"}));
  app.add_option("--modconv", modconv, "auto | grouped | scaled")->check(CLI::IsMember({"auto", "grouped", "scaled"}));
  std::string upsample = "auto";
  app.add_option("--upsample", upsample,
                 "generate, nada_step: upsampling convolutions as auto | phases (four stride-1 convolutions) | "
                 "transposed (LibTorch's transposed convolution)")
      ->check(CLI::IsMember({"auto", "phases", "transposed"}));
  std::string tf32 = "default";
  app.add_option("--tf32", tf32, "CUDA TensorFloat-32 for convolutions and matmuls: default (LibTorch's) | on | off")
      ->check(CLI::IsMember({"default", "on", "off"}));
  CLI11_PARSE(app, argc, argv);
  if (scenario == "oneshot") {  // a 1024 px step takes tens of seconds on a 2-core CPU
    if (app.count("--iters") == 0) iters = 2;
    if (app.count("--batch") == 0) batch = 2;
  }
  if (tf32 != "default") {
    at::globalContext().setAllowTF32CuDNN(tf32 == "on");
    at::globalContext().setAllowTF32CuBLAS(tf32 == "on");
  }
#ifdef GANSERVE_BENCH_NO_SERVER
  if (scenario == "server") {
    std::fprintf(stderr, "the server scenario needs a build without GANSERVE_CORE_ONLY\n");
    return 2;
  }
#endif
  g_upsample = upsample == "phases"       ? sg::UpsampleMode::kPhases
               : upsample == "transposed" ? sg::UpsampleMode::kTransposed
                                          : sg::UpsampleMode::kAuto;
  const auto info = ganserve::core::ConfigureTorch(threads, retain);
  nlohmann::json j;
  const sg::ModConvMode mode = modconv == "grouped"  ? sg::ModConvMode::kGrouped
                               : modconv == "scaled" ? sg::ModConvMode::kScaled
                                                     : sg::ModConvMode::kAuto;
  int rc = scenario == "clip"
               ? BenchClip(batch, iters, device, *ganserve::core::clip::ParseClipPrecision(clip_precision), &j)
           : scenario == "nada_step"    ? BenchNadaStep(resolution, batch, auto_layer_k, iters, device, mode, &j)
           : scenario == "edit_global"  ? BenchEditGlobal(resolution, batch, iters, device, &j)
           : scenario == "global_stats" ? BenchGlobalStats(resolution, batch, iters, render_resolution, device, &j)
           : scenario == "global_stats_agreement"
               ? BenchGlobalStatsAgreement(resolution, render_resolution, stride, images, device, &j)
           : scenario == "invert_step"     ? BenchInvertStep(resolution, iters, device, &j)
           : scenario == "latent_opt_step" ? BenchLatentOptStep(resolution, iters, device, &j)
#ifndef GANSERVE_BENCH_NO_SERVER
           : scenario == "server" ? BenchServer(resolution, batch, iters, callers, device, &j)
#endif
           : scenario == "device_parity" ? BenchDeviceParity(batch, device, &j)
           : scenario == "domain_step"   ? BenchDomainStep(resolution, batch, parameterization, iters, device, mode, &j)
           : scenario == "domain_quality"    ? BenchDomainQuality(resolution, batch, iters, device, &j)
           : scenario == "domain_serve"      ? BenchDomainServe(resolution, batch, iters, device, &j)
           : scenario == "domain_repository" ? BenchDomainRepository(resolution, domains, device, &j)
           : scenario == "oneshot"           ? BenchOneshot(resolution, batch, iters, device, &j)
           : scenario == "mapper"            ? BenchMapper(resolution, batch, iters, device, &j)
           : scenario == "encoder"           ? BenchEncoder(resolution, batch, iters, device, &j)
                                             : BenchGenerate(resolution, batch, iters, device, mode, &j);
  if (scenario == "generate" || scenario == "nada_step" || scenario == "domain_step") {
    j["modconv"] = modconv;
    j["upsample"] = upsample;
  }

  j["scenario"] = scenario;
  if (scenario != "clip" && scenario != "device_parity") j["resolution"] = resolution;
  j["batch"] = batch;
  j["threads"] = info.threads;
  j["retain_host_memory"] = info.retain_host_memory;
  j["blas"] = info.blas_library;
  j["blas_core"] = info.blas_core;
  j["device"] = device;
  j["torch_version"] = info.torch_version;
  if (info.cuda_available) {
    j["tf32_cudnn"] = at::globalContext().allowTF32CuDNN();
    j["tf32_cublas"] = at::globalContext().allowTF32CuBLAS();
  }
  j["peak_rss_mb"] = PeakRssMb();
  std::printf("%s\n", j.dump().c_str());
  return rc;
}
