// What the CLIP-guided trainers (StyleGAN-NADA, lightweight domains) share: unit rows,
// fresh noise maps, CLIP embeddings of generator output and of templated text.
// LibTorch; internal to core/adapt.
#ifndef GANSERVE_CORE_ADAPT_GUIDANCE_IMPL_H_
#define GANSERVE_CORE_ADAPT_GUIDANCE_IMPL_H_

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

#include "absl/status/statusor.h"
#include "core/adapt/nada_trainer.h"
#include "core/adapt/text_templates.h"
#include "core/models/clip/clip_model_impl.h"
#include "core/models/common/torch_convert.h"
#include "core/models/stylegan2/config.h"
#include "core/models/stylegan2/generator_impl.h"
#include "core/util/status_macros.h"

namespace ganserve::core::adapt {

// The raw (checkpoint) parameters of one synthesis unit: "input", "conv1", "convs.K",
// "to_rgb1" or "to_rgbs.K".
inline std::vector<std::string> SynthesisUnitParams(const std::string& unit) {
  if (unit == "input") return {"input.input"};
  const bool rgb = absl::StartsWith(unit, "to_rgb");
  std::vector<std::string> p = {unit + ".conv.weight", unit + ".conv.modulation.weight",
                                unit + ".conv.modulation.bias"};
  if (rgb) {
    p.push_back(unit + ".bias");
  } else {
    p.push_back(unit + ".noise.weight");
    p.push_back(unit + ".activate.bias");
  }
  return p;
}

// Writes the scaled forms of raw synthesis tensors (`raw(state-dict name)`, e.g. a
// trainer's leaves) into `g`'s constant input, convolutions and ToRGBs; differentiable
// in them. The mapping network and the noise buffers are left as they are.
inline void WriteSynthesisWeights(const std::function<at::Tensor(const std::string&)>& raw, int style_dim,
                                  stylegan2::Generator::Impl* g) {
  const double sd = style_dim;
  g->const_input = raw("input.input");
  auto mod = [&](stylegan2::ModConv& c, const std::string& m) {
    c.weight =
        raw(m + ".conv.weight").squeeze(0) * (1.0 / std::sqrt(static_cast<double>(c.in_channel) * c.kernel * c.kernel));
    c.mod_weight = raw(m + ".conv.modulation.weight") * (1.0 / std::sqrt(sd));
    c.mod_bias = raw(m + ".conv.modulation.bias");
  };
  auto styled = [&](stylegan2::StyledConv& c, const std::string& m) {
    mod(c.conv, m);
    c.noise_weight = raw(m + ".noise.weight");
    c.act_bias = raw(m + ".activate.bias");
  };
  auto rgb = [&](stylegan2::ToRgb& t, const std::string& m) {
    mod(t.conv, m);
    t.bias = raw(m + ".bias");
  };
  styled(g->conv1, "conv1");
  rgb(g->to_rgb1, "to_rgb1");
  for (size_t i = 0; i < g->convs.size(); ++i) styled(g->convs[i], absl::StrCat("convs.", i));
  for (size_t j = 0; j < g->to_rgbs.size(); ++j) rgb(g->to_rgbs[j], absl::StrCat("to_rgbs.", j));
}

// WriteSynthesisWeights and the mapping network's scaled weights (the equalized-lr
// constant 1/sqrt(style_dim) and the mapping's learning-rate multiplier): the whole
// generator from raw tensors, differentiable in them.
inline void WriteGeneratorWeights(const std::function<at::Tensor(const std::string&)>& raw,
                                  stylegan2::Generator::Impl* g) {
  const auto& c = g->config;
  WriteSynthesisWeights(raw, c.style_dim, g);
  const double sd = c.style_dim, lr = c.lr_mlp;
  for (size_t k = 0; k < g->map_weight.size(); ++k) {
    g->map_weight[k] = raw(absl::StrCat("style.", k + 1, ".weight")) * ((1.0 / std::sqrt(sd)) * lr);
    g->map_bias[k] = raw(absl::StrCat("style.", k + 1, ".bias")) * lr;
  }
}

// Generator parameters (what rosinality's named_parameters() yields and an EMA averages):
// the state dict without the noise buffers and blur kernels.
inline bool IsGeneratorParameter(const std::string& name) {
  return !absl::StartsWith(name, "noises.") && !absl::EndsWith(name, "kernel");
}

// Adam's decays and learning rate under StyleGAN2's lazy regularisation: betas
// (0 ** r, 0.99 ** r), lr * r, r = every / (every + 1).
inline double LazyRatio(int every) { return static_cast<double>(every) / (every + 1); }

inline at::Tensor NormalizeRows(const at::Tensor& x) { return x / x.norm(2, -1, true); }

// Fresh noise maps [batch, 1, r, r] for every noise input of `config`, drawn from `gen`
// on the host (the same numbers on every device).
inline std::vector<at::Tensor> RandomNoiseMaps(const stylegan2::GeneratorConfig& config, int64_t batch,
                                               at::Generator& gen, const c10::Device& device) {
  std::vector<at::Tensor> noise;
  for (int i = 0; i < config.num_layers; ++i) {
    const int64_t r = int64_t{1} << ((i + 5) / 2);
    noise.push_back(at::randn({batch, 1, r, r}, gen, at::TensorOptions().dtype(at::kFloat)).to(device));
  }
  return noise;
}

// The latents of one training step.
struct StepLatents {
  at::Tensor frozen_wplus, train_wplus;     // [B, n_latent, style_dim]
  int frozen_inject = 0, train_inject = 0;  // crossovers; 0 when the step did not mix
};

// B z drawn from `gen` and mapped by `g`; with probability `mixing` a second set, and
// for each of the two generators its own crossover in [1, n_latent - 1] (the references'
// frozen and trainable generators each draw one).
inline StepLatents DrawStepLatents(const stylegan2::Generator::Impl& g, int64_t b, float mixing, at::Generator& gen) {
  const auto& c = g.config;
  const auto fopt = at::TensorOptions().dtype(at::kFloat);
  at::Tensor z = at::randn({b, c.style_dim}, gen, fopt).to(g.device);
  const bool mix = mixing > 0 && at::rand({1}, gen).item<float>() < mixing;
  c10::NoGradGuard ng;
  const at::Tensor w = g.Map(z);
  StepLatents out;
  if (!mix) {
    out.frozen_wplus = out.train_wplus = w.unsqueeze(1).expand({b, c.n_latent, c.style_dim});
    return out;
  }
  const at::Tensor w2 = g.Map(at::randn({b, c.style_dim}, gen, fopt).to(g.device));
  auto crossed = [&](int64_t k) {
    return at::cat({w.unsqueeze(1).expand({b, k, -1}), w2.unsqueeze(1).expand({b, c.n_latent - k, -1})}, 1);
  };
  out.frozen_inject = static_cast<int>(at::randint(1, c.n_latent, {1}, gen).item<int64_t>());
  out.train_inject = static_cast<int>(at::randint(1, c.n_latent, {1}, gen).item<int64_t>());
  out.frozen_wplus = crossed(out.frozen_inject);
  out.train_wplus = crossed(out.train_inject);
  return out;
}

// The preview grid's z [count, style_dim]: fixed for a job's seed, so every preview of
// it (and of its resumed run) shows the same latents.
inline at::Tensor PreviewLatents(uint64_t seed, int count, int style_dim, const c10::Device& device) {
  at::Generator gen = at::detail::createCPUGenerator(seed * 1000003ULL + 7);
  return at::randn({count, style_dim}, gen, at::TensorOptions().dtype(at::kFloat)).to(device);
}

// L2-normalised CLIP image embedding of generator output, differentiable.
inline at::Tensor EmbedGeneratorImages(const ClipGuide& guide, const at::Tensor& images) {
  const auto& impl = guide.model->impl();
  return NormalizeRows(impl.EncodeImage(clip::PreprocessGeneratorOutput(images, impl.config.image_resolution)));
}

// The text under every prompt template, encoded: [79, D], each row unit.
inline absl::StatusOr<at::Tensor> TemplateEmbeddings(const ClipGuide& guide, const std::string& text,
                                                     clip::TextEmbeddingCache* cache, const c10::Device& device) {
  ASSIGN_OR_RETURN(FloatTensor e, cache->Encode(guide.name, *guide.model, *guide.tokenizer, ApplyTemplates(text),
                                                /*truncate=*/false));
  return NormalizeRows(ToTorch(e, device));
}

}  // namespace ganserve::core::adapt

#endif  // GANSERVE_CORE_ADAPT_GUIDANCE_IMPL_H_
