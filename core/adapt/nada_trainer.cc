#include "core/adapt/nada_trainer.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <c10/core/GradMode.h>
#include <c10/core/InferenceMode.h>

#include <cmath>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "core/adapt/guidance_impl.h"
#include "core/adapt/nada_adam.h"
#include "core/adapt/text_templates.h"
#include "core/checkpoint/safetensors.h"
#include "core/models/clip/clip_model_impl.h"
#include "core/models/clip/preprocess.h"
#include "core/models/common/torch_convert.h"
#include "core/models/stylegan2/generator_impl.h"
#include "core/util/status_macros.h"

namespace ganserve::core::adapt {
namespace {

using stylegan2::Generator;

constexpr double kSelectionLr = 0.01;

struct Leaf {
  at::Tensor value;  // raw parameter (checkpoint units), requires_grad when selected
  AdamSlot adam;
  bool touched = false;  // trained at least once (part of the delta)
};

// Per CLIP model: the text direction and the template-averaged source/target embeddings.
struct ClipTargets {
  at::Tensor direction;  // [D], unit
  at::Tensor source;     // [D], unit (manifold loss)
  at::Tensor target;     // [D], unit (manifold loss)
  at::Tensor global;     // [D], unit: "a <target>" (global loss)
  at::Tensor selection;  // [D], unit: raw target text (layer selection)
};

}  // namespace

struct NadaTrainer::State {
  NadaOptions opt;
  std::shared_ptr<const Generator> base;
  std::vector<ClipGuide> clips;
  std::vector<ClipTargets> targets;
  c10::Device device{c10::kCPU};
  Generator::Impl train;  // trainable copy; its tensors are rebuilt from `leaves` each step
  std::map<std::string, Leaf> leaves;
  std::vector<std::string> units;  // every trainable unit
  std::vector<std::string> last_units;
  std::pair<int, int> last_inject{0, 0};
  int64_t step = 0;
  at::Tensor preview_z;

  const Generator::Impl& frozen() const { return base->impl(); }
  bool Selecting() const { return opt.auto_layer_k > 0 && opt.auto_layer_iters > 0; }
  // Under AdamSteps::kShared with layer selection every parameter is stepped each
  // iteration (see AdamSteps).
  bool StepAllLeaves() const { return Selecting() && opt.adam_steps == AdamSteps::kShared; }
  const stylegan2::GeneratorConfig& cfg() const { return base->config(); }

  at::Tensor L(const std::string& name) const { return leaves.at(name).value; }

  // Writes the scaled forms of the raw leaves into the trainable generator.
  void Rebuild() {
    WriteSynthesisWeights([this](const std::string& name) { return L(name); }, cfg().style_dim, &train);
  }

  void SetTrainable(const std::vector<std::string>& selected) {
    for (auto& [name, leaf] : leaves) leaf.value.requires_grad_(false);
    for (const std::string& u : selected) {
      for (const std::string& p : SynthesisUnitParams(u)) leaves.at(p).value.requires_grad_(true);
    }
  }

  std::vector<at::Tensor> RandomNoise(int64_t batch, at::Generator& gen) const {
    return RandomNoiseMaps(cfg(), batch, gen, device);
  }

  at::Tensor Embed(size_t m, const at::Tensor& images) const { return EmbedGeneratorImages(clips[m], images); }

  absl::StatusOr<at::Tensor> TemplateEmbedding(size_t m, const std::string& text, clip::TextEmbeddingCache* cache) {
    return TemplateEmbeddings(clips[m], text, cache, device);
  }

  std::vector<std::string> SelectLayers(at::Generator& gen) {
    const auto& c = cfg();
    at::Tensor z =
        at::randn({opt.auto_layer_batch, c.style_dim}, gen, at::TensorOptions().dtype(at::kFloat)).to(device);
    at::Tensor w0;
    {
      c10::NoGradGuard ng;
      w0 = frozen().Map(z).unsqueeze(1).repeat({1, c.n_latent, 1});
    }
    at::Tensor w = w0.clone().requires_grad_(true);
    for (int it = 0; it < opt.auto_layer_iters; ++it) {
      at::Tensor img = train.RenderWPlus(w, RandomNoise(opt.auto_layer_batch, gen));
      at::Tensor loss = at::zeros({}, img.options());
      for (size_t m = 0; m < clips.size(); ++m) {
        at::Tensor logits = Embed(m, img).matmul(targets[m].selection) * std::exp(clips[m].model->logit_scale());
        loss = loss + clips[m].weight * (1 - logits / 100).mean();
      }
      loss.backward();  // only w requires grad here (every leaf is frozen)
      c10::NoGradGuard ng;
      w.sub_(kSelectionLr * w.grad());
      w.mutable_grad() = at::Tensor();
    }
    c10::NoGradGuard ng;
    std::vector<std::string> out;
    for (int i : RankLatentIndices(FromTorch(w0), FromTorch(w), opt.auto_layer_k)) {
      out.push_back(LayerForLatentIndex(i, c.n_latent, opt.layer_mapping));
    }
    return out;
  }
};

std::vector<int> RankLatentIndices(const FloatTensor& w0, const FloatTensor& w, int k) {
  const int64_t b = w.shape[0], n = w.shape[1], d = w.shape[2];
  std::vector<std::pair<double, int>> score(static_cast<size_t>(n));
  for (int64_t r = 0; r < n; ++r) {
    double sum = 0;
    for (int64_t i = 0; i < b; ++i) {
      for (int64_t j = 0; j < d; ++j) {
        const size_t at = static_cast<size_t>((i * n + r) * d + j);
        sum += std::fabs(w.data[at] - w0.data[at]);
      }
    }
    score[r] = {sum / static_cast<double>(b * d), static_cast<int>(r)};
  }
  std::stable_sort(score.begin(), score.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  std::vector<int> out;
  for (int i = 0; i < std::min<int>(k, static_cast<int>(n)); ++i) out.push_back(score[i].second);
  return out;
}

std::vector<std::string> PresetLayers(LayerPreset preset, int n_convs) {
  std::vector<std::string> out;
  auto convs = [&](int a, int b) {
    for (int i = a; i < std::min(b, n_convs); ++i) out.push_back(absl::StrCat("convs.", i));
  };
  switch (preset) {
    case LayerPreset::kDefault:
      out = {"input", "conv1"};
      convs(0, n_convs);
      break;
    case LayerPreset::kAll:
      out = {"input", "conv1", "to_rgb1"};
      convs(0, n_convs);
      for (int j = 0; j < n_convs / 2; ++j) out.push_back(absl::StrCat("to_rgbs.", j));
      break;
    case LayerPreset::kTexture:
      out = {"input", "conv1"};
      convs(2, 10);
      break;
    case LayerPreset::kShape:
      out = {"input", "conv1"};
      convs(0, 2);
      break;
    case LayerPreset::kNoFine:
      out = {"input", "conv1"};
      convs(0, 10);
      break;
    case LayerPreset::kShapeExpanded:
      out = {"input", "conv1"};
      convs(0, 3);
      break;
  }
  return out;
}

std::string LayerForLatentIndex(int index, int n_latent, LayerMapping mapping) {
  if (mapping == LayerMapping::kOfficial) {
    if (index == 0) return "conv1";
    if (index == 1) return "to_rgb1";
    return absl::StrCat("convs.", index - 2);
  }
  if (index == 0) return "conv1";
  if (index == n_latent - 1) return absl::StrCat("to_rgbs.", (n_latent - 4) / 2);
  return absl::StrCat("convs.", index - 1);
}

NadaTrainer::NadaTrainer(std::unique_ptr<State> state) : state_(std::move(state)) {}
NadaTrainer::~NadaTrainer() = default;
int64_t NadaTrainer::step() const { return state_->step; }
const NadaOptions& NadaTrainer::options() const { return state_->opt; }
const std::vector<std::string>& NadaTrainer::last_trained_layers() const { return state_->last_units; }
std::pair<int, int> NadaTrainer::last_inject_indices() const { return state_->last_inject; }

absl::StatusOr<std::unique_ptr<NadaTrainer>> NadaTrainer::Create(const std::shared_ptr<const Generator>& base,
                                                                 std::vector<ClipGuide> clips, const NadaOptions& opt,
                                                                 clip::TextEmbeddingCache* text_cache) {
  if (base == nullptr) return absl::InvalidArgumentError("no base generator");
  const bool image_mode = !opt.target_images.empty();
  if (opt.target_text.empty() && !image_mode) {
    return absl::InvalidArgumentError("target_text or target images are required");
  }
  if (opt.target_text.empty() && (opt.auto_layer_k > 0 || opt.lambda_global != 0 || opt.lambda_manifold != 0)) {
    return absl::InvalidArgumentError(
        "adaptive layer selection and the global/manifold losses need target_text, also with target images");
  }
  if (clips.empty()) return absl::InvalidArgumentError("at least one CLIP model is required");
  if (opt.batch_size < 1 || opt.iterations < 1 || opt.auto_layer_batch < 1 || opt.auto_layer_iters < 0 ||
      opt.auto_layer_k < 0 || opt.preview_count < 0 || !(opt.lr > 0) || opt.mixing < 0 || opt.mixing > 1) {
    return absl::InvalidArgumentError("adaptation options out of range");
  }
  auto st = std::make_unique<State>();
  st->opt = opt;
  st->base = base;
  st->clips = std::move(clips);
  const auto& frozen = base->impl();
  st->device = frozen.device;
  st->train = frozen;  // copies handles; Rebuild() replaces every trained tensor
  try {
    // Raw leaves for every trainable unit, from the base checkpoint values.
    const int n_convs = static_cast<int>(frozen.convs.size());
    st->units = PresetLayers(LayerPreset::kAll, n_convs);
    const auto& sd = frozen.state_dict;
    for (const std::string& u : st->units) {
      for (const std::string& p : SynthesisUnitParams(u)) {
        Leaf leaf;
        leaf.value = ToTorch(sd.at(p), st->device);
        leaf.adam.v = at::zeros_like(leaf.value);
        st->leaves.emplace(p, std::move(leaf));
      }
    }
    st->Rebuild();
    // Targets per CLIP model: text directions, or image directions in image mode.
    at::Generator img_gen = at::detail::createCPUGenerator(opt.seed * 1000003ULL + 99991);
    for (size_t m = 0; m < st->clips.size(); ++m) {
      ClipTargets t;
      auto& c = st->clips[m];
      if (image_mode) {
        // 16 samples of the generator at truncation 1 against the user's images (CLIP's
        // own PIL preprocessing for them); the reference does not renormalise the means.
        c10::NoGradGuard ng;
        const auto& cfg = base->config();
        at::Tensor z = at::randn({16, cfg.style_dim}, img_gen, at::TensorOptions().dtype(at::kFloat)).to(st->device);
        at::Tensor w = frozen.Map(z).unsqueeze(1).expand({16, cfg.n_latent, cfg.style_dim});
        at::Tensor samples = frozen.RenderWPlus(w, st->RandomNoise(16, img_gen));
        at::Tensor src = st->Embed(m, samples).mean(0);
        const int res = c.model->config().image_resolution;
        FloatTensor batch{{0, 3, res, res}, {}};
        for (const Rgb8Image& im : opt.target_images) {
          FloatTensor one = clip::PreprocessForClip(im, res);
          batch.data.insert(batch.data.end(), one.data.begin(), one.data.end());
          batch.shape[0] += 1;
        }
        ASSIGN_OR_RETURN(FloatTensor emb, c.model->EncodeImage(batch));
        at::Tensor tgt = NormalizeRows(ToTorch(emb, st->device)).mean(0);
        t.direction = NormalizeRows(tgt - src);
      } else {
        ASSIGN_OR_RETURN(at::Tensor src, st->TemplateEmbedding(m, opt.source_text, text_cache));
        ASSIGN_OR_RETURN(at::Tensor tgt, st->TemplateEmbedding(m, opt.target_text, text_cache));
        t.direction = NormalizeRows((tgt - src).mean(0));
        t.source = NormalizeRows(src.mean(0));
        t.target = NormalizeRows(tgt.mean(0));
      }
      if (!opt.target_text.empty()) {
        ASSIGN_OR_RETURN(FloatTensor g, text_cache->Encode(c.name, *c.model, *c.tokenizer,
                                                           {"a " + opt.target_text, opt.target_text}, false));
        at::Tensor gt = NormalizeRows(ToTorch(g, st->device));
        t.global = gt[0];
        t.selection = gt[1];
        if (image_mode && opt.lambda_manifold != 0) {
          ASSIGN_OR_RETURN(at::Tensor s2, st->TemplateEmbedding(m, opt.source_text, text_cache));
          ASSIGN_OR_RETURN(at::Tensor t2, st->TemplateEmbedding(m, opt.target_text, text_cache));
          t.source = NormalizeRows(s2.mean(0));
          t.target = NormalizeRows(t2.mean(0));
        }
      }
      st->targets.push_back(std::move(t));
    }
    st->preview_z = PreviewLatents(opt.seed, opt.preview_count, base->config().style_dim, st->device);
  } catch (const c10::Error& e) {
    return TorchErrorStatus(e, "setting up training failed");
  }
  return std::unique_ptr<NadaTrainer>(new NadaTrainer(std::move(st)));
}

absl::StatusOr<std::map<std::string, float>> NadaTrainer::Step() {
  State& s = *state_;
  std::map<std::string, float> out;
  try {
    // Every random draw of a step comes from (seed, step), so a resumed job replays it.
    at::Generator gen = at::detail::createCPUGenerator(s.opt.seed * 1000003ULL + static_cast<uint64_t>(s.step) + 1);
    std::vector<std::string> selected = s.Selecting()
                                            ? (s.SetTrainable({}), s.Rebuild(), s.SelectLayers(gen))
                                            : PresetLayers(s.opt.layer_preset, static_cast<int>(s.train.convs.size()));
    s.SetTrainable(selected);
    s.Rebuild();
    s.last_units = selected;

    const int64_t b = s.opt.batch_size;
    const StepLatents latents = DrawStepLatents(s.frozen(), b, s.opt.mixing, gen);
    s.last_inject = {latents.frozen_inject, latents.train_inject};
    const at::Tensor& frozen_wplus = latents.frozen_wplus;
    const at::Tensor& train_wplus = latents.train_wplus;
    at::Tensor frozen_img;
    {
      c10::NoGradGuard ng;
      frozen_img = s.frozen().RenderWPlus(frozen_wplus, s.RandomNoise(b, gen));
    }
    at::Tensor train_img = s.train.RenderWPlus(train_wplus, s.RandomNoise(b, gen));

    at::Tensor total = at::zeros({}, train_img.options());
    double dir_sum = 0, glob_sum = 0, man_sum = 0;
    for (size_t m = 0; m < s.clips.size(); ++m) {
      at::Tensor e_f;
      {
        c10::NoGradGuard ng;
        e_f = s.Embed(m, frozen_img);
      }
      at::Tensor e_t = s.Embed(m, train_img);
      at::Tensor term = at::zeros({}, train_img.options());
      if (s.opt.lambda_direction != 0) {
        at::Tensor edit = e_t - e_f;
        edit = edit / (edit.norm(2, -1, true) + 1e-12);
        at::Tensor d = (1 - at::cosine_similarity(edit, s.targets[m].direction.unsqueeze(0), 1, 1e-8)).mean();
        dir_sum += s.clips[m].weight * d.item<double>();
        term = term + s.opt.lambda_direction * d;
      }
      if (s.opt.lambda_global != 0) {
        at::Tensor logits = e_t.matmul(s.targets[m].global) * std::exp(s.clips[m].model->logit_scale());
        at::Tensor g = (1 - logits / 100).mean();
        glob_sum += s.clips[m].weight * g.item<double>();
        term = term + s.opt.lambda_global * g;
      }
      if (s.opt.lambda_manifold != 0) {
        at::Tensor cos_img = (e_t * e_f).sum(-1).clamp(-1, 1);
        at::Tensor cos_txt = (s.targets[m].target * s.targets[m].source).sum();
        at::Tensor man = (cos_img - cos_txt).abs().mean();
        man_sum += s.clips[m].weight * man.item<double>();
        term = term + s.opt.lambda_manifold * man;
      }
      total = total + s.clips[m].weight * term;
    }
    total.backward();

    // Adam on the leaves that got a gradient (and, when counts are shared, on every leaf).
    c10::NoGradGuard ng;
    const bool all = s.StepAllLeaves();
    for (auto& [name, leaf] : s.leaves) {
      at::Tensor g = leaf.value.grad();
      AdamUpdate(s.opt.lr, g, all, leaf.value, leaf.adam);
      if (g.defined()) {
        leaf.touched = true;
        leaf.value.mutable_grad() = at::Tensor();
      }
    }
    s.step += 1;
    out["total"] = total.item<float>();
    if (s.opt.lambda_direction != 0) out["direction"] = static_cast<float>(dir_sum);
    if (s.opt.lambda_global != 0) out["global"] = static_cast<float>(glob_sum);
    if (s.opt.lambda_manifold != 0) out["manifold"] = static_cast<float>(man_sum);
  } catch (const c10::Error& e) {
    return TorchErrorStatus(e, absl::StrCat("training step ", s.step, " failed"));
  }
  return out;
}

absl::StatusOr<float> NadaTrainer::EvalDirectionLoss(uint64_t seed, int batch) const {
  State& s = const_cast<State&>(*state_);
  try {
    c10::NoGradGuard ng;
    s.SetTrainable({});
    s.Rebuild();
    at::Generator gen = at::detail::createCPUGenerator(seed);
    const auto& c = s.cfg();
    at::Tensor z = at::randn({batch, c.style_dim}, gen, at::TensorOptions().dtype(at::kFloat)).to(s.device);
    at::Tensor w = s.frozen().Map(z);
    at::Tensor wplus = w.unsqueeze(1).expand({batch, c.n_latent, c.style_dim});
    auto noise = s.RandomNoise(batch, gen);
    at::Tensor fi = s.frozen().RenderWPlus(wplus, noise);
    at::Tensor ti = s.train.RenderWPlus(wplus, noise);
    double total = 0;
    for (size_t m = 0; m < s.clips.size(); ++m) {
      at::Tensor edit = s.Embed(m, ti) - s.Embed(m, fi);
      edit = edit / (edit.norm(2, -1, true) + 1e-12);
      total += s.clips[m].weight *
               (1 - at::cosine_similarity(edit, s.targets[m].direction.unsqueeze(0), 1, 1e-8)).mean().item<double>();
    }
    return static_cast<float>(total);
  } catch (const c10::Error& e) {
    return TorchErrorStatus(e, "evaluation failed");
  }
}

absl::StatusOr<FloatTensor> NadaTrainer::Preview(bool frozen) const {
  const State& s = *state_;
  try {
    c10::NoGradGuard ng;
    at::Tensor w = s.frozen().Map(s.preview_z);
    w = s.frozen().mean_latent + s.opt.preview_truncation * (w - s.frozen().mean_latent);
    at::Tensor wplus = w.unsqueeze(1).expand({w.size(0), s.cfg().n_latent, s.cfg().style_dim});
    if (!frozen) {
      // The trainable tensors are graph outputs of the leaves; detach them for rendering.
      State& mut = const_cast<State&>(s);
      mut.SetTrainable({});
      mut.Rebuild();
    }
    const auto& g = frozen ? s.frozen() : s.train;
    return FromTorch(g.RenderWPlus(wplus, g.noises));
  } catch (const c10::Error& e) {
    return TorchErrorStatus(e, "preview failed");
  }
}

absl::StatusOr<FloatTensor> NadaTrainer::Render(const FloatTensor& wplus) const {
  State& s = const_cast<State&>(*state_);
  const auto& c = s.cfg();
  if (wplus.shape != std::vector<int64_t>{wplus.shape.empty() ? 0 : wplus.shape[0], c.n_latent, c.style_dim} ||
      wplus.shape[0] < 1) {
    return absl::InvalidArgumentError("Render needs [N, n_latent, style_dim] latents");
  }
  try {
    c10::NoGradGuard ng;
    s.SetTrainable({});
    s.Rebuild();
    at::Tensor w = ToTorch(wplus, s.device);
    return FromTorch(s.train.RenderWPlus(w, s.train.noises));
  } catch (const c10::Error& e) {
    return TorchErrorStatus(e, "rendering failed");
  }
}

std::map<std::string, FloatTensor> NadaTrainer::Delta() const {
  std::map<std::string, FloatTensor> out;
  for (const auto& [name, leaf] : state_->leaves) {
    if (leaf.touched) out[name] = FromTorch(leaf.value);
  }
  return out;
}

absl::StatusOr<FloatTensor> NadaTrainer::TextDirection(size_t clip_index) const {
  if (clip_index >= state_->targets.size()) return absl::OutOfRangeError("no such CLIP model");
  return FromTorch(state_->targets[clip_index].direction);
}

absl::Status NadaTrainer::SaveCheckpoint(const std::string& path) const {
  std::map<std::string, FloatTensor> tensors;
  std::map<std::string, std::string> meta{{"step", std::to_string(state_->step)}, {"format", "ganserve-nada-v1"}};
  for (const auto& [name, leaf] : state_->leaves) {
    if (!leaf.touched) continue;
    tensors["param/" + name] = FromTorch(leaf.value);
    tensors["adam_v/" + name] = FromTorch(leaf.adam.v);
    meta["adam_steps/" + name] = std::to_string(leaf.adam.steps);
  }
  return SaveSafetensors(path, tensors, meta);
}

absl::Status NadaTrainer::RestoreCheckpoint(const std::string& path) {
  ASSIGN_OR_RETURN(SafetensorsFile f, LoadSafetensors(path));
  int64_t step = 0;
  if (f.metadata["format"] != "ganserve-nada-v1" || !absl::SimpleAtoi(f.metadata["step"], &step)) {
    return absl::InvalidArgumentError(absl::StrCat(path, " is not a ganserve training checkpoint"));
  }
  // With shared counts every parameter was stepped each iteration: the ones never
  // trained (not stored) have v = 0 and the global count.
  if (state_->StepAllLeaves()) {
    for (auto& [name, leaf] : state_->leaves) leaf.adam.steps = step;
  }
  for (const auto& [key, view] : f.tensors) {
    if (!absl::StartsWith(key, "param/")) continue;
    const std::string name = key.substr(6);
    auto it = state_->leaves.find(name);
    auto v = f.tensors.find("adam_v/" + name);
    int64_t steps = 0;
    if (it == state_->leaves.end() || v == f.tensors.end() ||
        !absl::SimpleAtoi(f.metadata["adam_steps/" + name], &steps)) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": checkpoint entry ", name, " does not fit this generator"));
    }
    ASSIGN_OR_RETURN(at::Tensor value, ToTorchFloat(view, state_->device));
    ASSIGN_OR_RETURN(at::Tensor vv, ToTorchFloat(v->second, state_->device));
    if (!value.sizes().equals(it->second.value.sizes())) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": ", name, " has the wrong shape"));
    }
    it->second.value = value;
    it->second.adam.v = vv;
    it->second.adam.steps = steps;
    it->second.touched = true;
  }
  state_->step = step;
  state_->Rebuild();
  return absl::OkStatus();
}

}  // namespace ganserve::core::adapt
