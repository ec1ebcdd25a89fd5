#include "core/train/clip_trainer.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>

#include <cmath>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/models/clip/clip_model_impl.h"
#include "core/models/clip/random_init.h"
#include "core/models/common/adam.h"
#include "core/models/common/torch_convert.h"
#include "core/util/np_random.h"
#include "core/util/status_macros.h"

namespace ganserve::core::train {

std::map<std::string, FloatTensor> InitialClipWeights(const clip::ClipConfig& c, uint32_t seed) {
  std::map<std::string, FloatTensor> w = clip::RandomClipWeights(c, seed);  // every key, shape and layer norm
  NumpyRandomState rng(seed);
  auto normal = [&](const std::string& name, double std) {
    for (float& v : w.at(name).data) v = static_cast<float>(std * rng.Gauss());
  };
  auto uniform = [&](const std::string& name, double bound) {
    for (float& v : w.at(name).data) v = static_cast<float>(bound * (2 * rng.RandomSample() - 1));
  };
  const double tw = c.transformer_width, vw = c.vision_width;
  normal("token_embedding.weight", 0.02);
  normal("positional_embedding", 0.01);
  const double proj_std = std::pow(tw, -0.5) * std::pow(2.0 * c.transformer_layers, -0.5);
  for (int i = 0; i < c.transformer_layers; ++i) {
    const std::string b = absl::StrCat("transformer.resblocks.", i, ".");
    normal(b + "attn.in_proj_weight", std::pow(tw, -0.5));
    normal(b + "attn.out_proj.weight", proj_std);
    normal(b + "mlp.c_fc.weight", std::pow(2 * tw, -0.5));
    normal(b + "mlp.c_proj.weight", proj_std);
    uniform(b + "mlp.c_fc.bias", std::pow(tw, -0.5));  // biases keep PyTorch's defaults
    uniform(b + "mlp.c_proj.bias", std::pow(4 * tw, -0.5));
  }
  normal("text_projection", std::pow(tw, -0.5));
  normal("visual.class_embedding", std::pow(vw, -0.5));
  normal("visual.positional_embedding", std::pow(vw, -0.5));
  normal("visual.proj", std::pow(vw, -0.5));
  uniform("visual.conv1.weight", std::pow(3.0 * c.vision_patch_size * c.vision_patch_size, -0.5));
  for (int i = 0; i < c.vision_layers; ++i) {
    const std::string b = absl::StrCat("visual.transformer.resblocks.", i, ".");
    uniform(b + "attn.in_proj_weight", std::sqrt(6.0 / (vw + 3 * vw)));
    uniform(b + "attn.out_proj.weight", std::pow(vw, -0.5));
    uniform(b + "mlp.c_fc.weight", std::pow(vw, -0.5));
    uniform(b + "mlp.c_fc.bias", std::pow(vw, -0.5));
    uniform(b + "mlp.c_proj.weight", std::pow(4 * vw, -0.5));
    uniform(b + "mlp.c_proj.bias", std::pow(4 * vw, -0.5));
  }
  w.at("logit_scale").data = {static_cast<float>(std::log(1 / 0.07))};
  return w;
}

struct ClipTrainer::State {
  ClipTrainerOptions opt;
  clip::ClipModel::Impl shape;  // config, device, dtype
  std::vector<std::string> names;
  std::vector<at::Tensor> leaves;  // every tensor but logit_scale
  at::Tensor log_scale;            // [] leaf
  std::unique_ptr<Adam> adam;
  int64_t step = 0;

  double LearningRate() const {
    const double s = static_cast<double>(step);
    if (s < opt.warmup_steps) return opt.lr * (s + 1) / opt.warmup_steps;
    const double t = std::min(1.0, (s - opt.warmup_steps) / std::max<double>(1, opt.total_steps - opt.warmup_steps));
    return opt.lr * 0.5 * (1 + std::cos(M_PI * t));
  }

  absl::StatusOr<clip::ClipModel::Impl> Model() const {
    clip::ClipModel::Impl impl;
    impl.config = shape.config;
    impl.device = shape.device;
    impl.dtype = at::kFloat;
    std::map<std::string, at::Tensor> by_name;
    for (size_t i = 0; i < names.size(); ++i) by_name[names[i]] = leaves[i];
    by_name["logit_scale"] = log_scale.detach();
    RETURN_IF_ERROR(clip::FillClipImpl(
        [&by_name](const std::string& k) -> absl::StatusOr<at::Tensor> {
          auto it = by_name.find(k);
          if (it == by_name.end()) return absl::InvalidArgumentError(absl::StrCat("missing ", k));
          return it->second;
        },
        &impl));
    return impl;
  }
};

ClipTrainer::ClipTrainer(std::unique_ptr<State> state) : state_(std::move(state)) {}
ClipTrainer::~ClipTrainer() = default;
const clip::ClipConfig& ClipTrainer::config() const { return state_->shape.config; }
int64_t ClipTrainer::step() const { return state_->step; }

absl::StatusOr<std::unique_ptr<ClipTrainer>> ClipTrainer::Create(const std::map<std::string, FloatTensor>& weights,
                                                                 const ClipTrainerOptions& opt) {
  if (!(opt.lr > 0 && opt.lr < 1)) return absl::InvalidArgumentError("lr must be in (0, 1)");
  if (opt.warmup_steps < 1 || opt.total_steps < 1) {
    return absl::InvalidArgumentError("warmup_steps and total_steps must be >= 1");
  }
  if (!(opt.weight_decay >= 0 && opt.weight_decay < 1)) {
    return absl::InvalidArgumentError("weight_decay must be in [0, 1)");
  }
  std::map<std::string, TensorView> views;
  for (const auto& [name, t] : weights) views[name] = ViewOf(std::make_shared<const FloatTensor>(t));
  ASSIGN_OR_RETURN(clip::ClipConfig config, clip::InferClipConfig(views));
  auto st = std::make_unique<State>();
  st->opt = opt;
  ASSIGN_OR_RETURN(st->shape.device, ParseDevice(opt.device));
  st->shape.config = config;
  try {
    c10::NoGradGuard ng;
    for (const auto& [name, t] : weights) {
      if (name == "logit_scale") {
        st->log_scale = ToTorch(t, st->shape.device).reshape({});
      } else if (name != "input_resolution" && name != "context_length" && name != "vocab_size") {
        st->names.push_back(name);
        st->leaves.push_back(ToTorch(t, st->shape.device));
      }
    }
    if (!st->log_scale.defined()) return absl::InvalidArgumentError("the weights have no logit_scale");
    std::vector<at::Tensor> params = st->leaves;
    params.push_back(st->log_scale);
    st->adam = std::make_unique<Adam>(params, 0.9, 0.98);
    ASSIGN_OR_RETURN(auto check, st->Model());
    (void)check;
  } catch (const c10::Error& e) {
    return TorchErrorStatus(e, "setting up CLIP training failed");
  }
  return std::unique_ptr<ClipTrainer>(new ClipTrainer(std::move(st)));
}

absl::StatusOr<std::map<std::string, float>> ClipTrainer::Step(const FloatTensor& images,
                                                               const std::vector<std::vector<int>>& tokens,
                                                               const std::vector<uint8_t>& truth) {
  State& s = *state_;
  const auto& c = s.shape.config;
  const int64_t r = c.image_resolution;
  if (images.shape.size() != 4 || images.shape[0] < 2 || images.shape[1] != 3 || images.shape[2] != r ||
      images.shape[3] != r) {
    return absl::InvalidArgumentError(absl::StrCat("images must be [B >= 2, 3, ", r, ", ", r, "]"));
  }
  const int64_t b = images.shape[0], t = static_cast<int64_t>(tokens.size());
  if (t < 2 || truth.size() != static_cast<size_t>(b * t)) {
    return absl::InvalidArgumentError("need at least 2 captions and one truth flag per (image, caption) pair");
  }
  std::vector<int64_t> ids;
  ids.reserve(static_cast<size_t>(t * c.context_length));
  for (const auto& row : tokens) {
    if (static_cast<int>(row.size()) != c.context_length) {
      return absl::InvalidArgumentError(absl::StrCat("every token row must hold ", c.context_length, " ids"));
    }
    for (int id : row) {
      if (id < 0 || id >= c.vocab_size) {
        return absl::InvalidArgumentError(absl::StrCat("token id ", id, " is out of range"));
      }
      ids.push_back(id);
    }
  }
  try {
    const auto dev = s.shape.device;
    const at::Tensor truth_t =
        at::from_blob(const_cast<uint8_t*>(truth.data()), {b, t}, at::kByte).to(at::kFloat).to(dev);
    if ((truth_t.sum(1) == 0).any().item<bool>() || (truth_t.sum(0) == 0).any().item<bool>()) {
      return absl::InvalidArgumentError("every image and every caption needs at least one true pairing");
    }
    const at::Tensor tok = at::from_blob(ids.data(), {t, c.context_length}, at::kLong).clone().to(dev);
    for (auto& l : s.leaves) l.requires_grad_(true);
    s.log_scale.requires_grad_(true);
    ASSIGN_OR_RETURN(clip::ClipModel::Impl m, s.Model());
    const at::Tensor img = m.EncodeImage(ToTorch(images, dev));
    const at::Tensor txt = m.EncodeText(tok);
    const at::Tensor logits =
        s.log_scale.exp() * at::matmul(img / img.norm(2, -1, true), (txt / txt.norm(2, -1, true)).t());
    const at::Tensor row_target = truth_t / truth_t.sum(1, true);
    const at::Tensor col_target = truth_t / truth_t.sum(0, true);
    const at::Tensor loss = -(row_target * at::log_softmax(logits, 1)).sum(1).mean() / 2 -
                            (col_target * at::log_softmax(logits, 0)).sum(0).mean() / 2;
    loss.backward();
    const double lr = s.LearningRate();
    {
      c10::NoGradGuard ng;
      for (size_t i = 0; i < s.leaves.size(); ++i) {
        const bool matrix = s.leaves[i].dim() >= 2 && !absl::StrContains(s.names[i], "embedding");
        if (matrix && s.opt.weight_decay > 0) s.leaves[i].mul_(1 - lr * s.opt.weight_decay);
      }
    }
    std::vector<at::Tensor> params = s.leaves;
    params.push_back(s.log_scale);
    s.adam->Step(params, lr);
    c10::NoGradGuard ng;
    s.log_scale.clamp_(0, std::log(100.0));
    for (auto& l : s.leaves) l.requires_grad_(false);
    s.log_scale.requires_grad_(false);
    const at::Tensor best = logits.argmax(1);
    const float accuracy = truth_t.gather(1, best.unsqueeze(1)).mean().item<float>();
    s.step += 1;
    return std::map<std::string, float>{
        {"loss", loss.item<float>()}, {"accuracy", accuracy}, {"temperature", s.log_scale.exp().item<float>()}};
  } catch (const c10::Error& e) {
    return TorchErrorStatus(e, "CLIP training step failed");
  }
}

std::map<std::string, FloatTensor> ClipTrainer::Weights() const {
  std::map<std::string, FloatTensor> out;
  for (size_t i = 0; i < state_->names.size(); ++i) out[state_->names[i]] = FromTorch(state_->leaves[i].detach());
  out["logit_scale"] = FromTorch(state_->log_scale.detach().reshape({}));
  return out;
}

}  // namespace ganserve::core::train
