// Small seeded models for tests that need a real generator or CLIP, not their values.
#ifndef GANSERVE_TESTS_TESTING_TINY_MODELS_H_
#define GANSERVE_TESTS_TESTING_TINY_MODELS_H_

#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <memory>
#include <string>
#include <utility>

#include "core/models/arcface/arcface.h"
#include "core/models/arcface/random_init.h"
#include "core/models/clip/clip_model.h"
#include "core/models/clip/random_init.h"
#include "core/models/lpips/alex_lpips.h"
#include "core/models/lpips/random_init.h"
#include "core/models/psp/random_init.h"
#include "core/models/psp/style_encoder.h"
#include "core/models/stylegan2/discriminator.h"
#include "core/models/stylegan2/generator.h"
#include "core/models/stylegan2/random_init.h"

namespace ganserve::testing {

// A random rosinality generator: `resolution` px, style `style_dim`, 2 mapping layers,
// channel multiplier 1, widths capped at 8; biases perturbed so no term is trivial.
inline std::shared_ptr<const core::stylegan2::Generator> TinyGenerator(int resolution, int style_dim, uint32_t seed) {
  auto cfg = core::stylegan2::MakeConfig(resolution, style_dim, 2, 1, 8);
  auto g = core::stylegan2::Generator::FromTensors(
      core::ViewsOf(std::make_shared<const std::map<std::string, core::FloatTensor>>(
          core::stylegan2::RandomGeneratorWeights(cfg, seed, 0.1f))),
      nullptr, {});
  EXPECT_TRUE(g.ok()) << g.status();
  return g.ok() ? std::shared_ptr<const core::stylegan2::Generator>(std::move(*g)) : nullptr;
}

// A random ArcFace IR-SE-50 (the real architecture; 43.8M seeded weights).
inline std::shared_ptr<const core::arcface::ArcFace> RandomArcFace(uint32_t seed) {
  auto a = core::arcface::ArcFace::FromTensors(
      core::ViewsOf(
          std::make_shared<const std::map<std::string, core::FloatTensor>>(core::arcface::RandomArcFaceWeights(seed))),
      "cpu");
  EXPECT_TRUE(a.ok()) << a.status();
  return a.ok() ? std::shared_ptr<const core::arcface::ArcFace>(std::move(*a)) : nullptr;
}

// A random CLIP of TinyClipConfig (embed 64, 224 px input).
inline std::shared_ptr<const core::clip::ClipModel> TinyClip(uint32_t seed) {
  auto c =
      core::clip::ClipModel::FromTensors(core::ViewsOf(std::make_shared<const std::map<std::string, core::FloatTensor>>(
                                             core::clip::RandomClipWeights(core::clip::TinyClipConfig(), seed))),
                                         "cpu");
  EXPECT_TRUE(c.ok()) << c.status();
  return c.ok() ? std::shared_ptr<const core::clip::ClipModel>(std::move(*c)) : nullptr;
}

// A random StyleGAN2 discriminator for TinyGenerator's architecture.
inline std::shared_ptr<const core::stylegan2::Discriminator> TinyDiscriminator(int resolution, int style_dim,
                                                                               uint32_t seed) {
  auto cfg = core::stylegan2::MakeDiscriminatorConfig(core::stylegan2::MakeConfig(resolution, style_dim, 2, 1, 8));
  auto d = core::stylegan2::Discriminator::FromTensors(
      core::ViewsOf(std::make_shared<const std::map<std::string, core::FloatTensor>>(
          core::stylegan2::RandomDiscriminatorWeights(cfg, seed, 0.1f))),
      "cpu");
  EXPECT_TRUE(d.ok()) << d.status();
  return d.ok() ? std::shared_ptr<const core::stylegan2::Discriminator>(std::move(*d)) : nullptr;
}

// StarGAN v2's AlexNet LPIPS with random weights.
inline std::shared_ptr<const core::lpips::AlexLpips> TinyAlexLpips(uint32_t seed) {
  auto lp = core::lpips::AlexLpips::FromTensors(
      core::ViewsOf(
          std::make_shared<const std::map<std::string, core::FloatTensor>>(core::lpips::RandomAlexNetFeatures(seed))),
      core::ViewsOf(std::make_shared<const std::map<std::string, core::FloatTensor>>(
          core::lpips::RandomAlexLpipsLayers(seed + 1))),
      "cpu");
  EXPECT_TRUE(lp.ok()) << lp.status();
  return lp.ok() ? std::shared_ptr<const core::lpips::AlexLpips>(std::move(*lp)) : nullptr;
}

// The tensors of an e4e encoder (official names, plus "latent_avg") for w+ rows of 512:
// random IR-SE trunk and heads (seeded), except that every head's EqualLinear weight is
// zero and the biases make it answer `wplus` [1, styles, 512] for any photo: row 0's bias
// = wplus[0] - latent_avg[0], row i's = wplus[i] - latent_avg[i] - row 0's. An encoder
// that is right by construction, to test everything around it.
inline std::map<std::string, core::FloatTensor> OracleEncoderWeights(const core::FloatTensor& wplus, uint32_t seed) {
  const int64_t styles = wplus.shape.at(1), d = core::psp::kEncoderStyleDim;
  EXPECT_EQ(wplus.shape, (std::vector<int64_t>{1, styles, d}));
  // The draw (~120M numbers, seconds) once per (styles, seed) in a test binary.
  static std::map<std::pair<int64_t, uint32_t>, std::map<std::string, core::FloatTensor>> drawn;
  auto& cached = drawn[{styles, seed}];
  if (cached.empty()) {
    core::NumpyRandomState rs(seed);
    for (auto& [k, v] : core::psp::RandomEncoderWeights(&rs, styles)) cached[k] = std::move(v);
  }
  std::map<std::string, core::FloatTensor> out = cached;
  const std::vector<float>& avg = out.at("latent_avg").data;
  for (int64_t i = 0; i < styles; ++i) {
    auto& w = out.at("styles." + std::to_string(i) + ".linear.weight").data;
    std::fill(w.begin(), w.end(), 0.0f);
    auto& b = out.at("styles." + std::to_string(i) + ".linear.bias").data;
    for (int64_t k = 0; k < d; ++k) {
      const float target = wplus.data[static_cast<size_t>(i * d + k)] - avg[static_cast<size_t>(i * d + k)];
      b[static_cast<size_t>(k)] =
          i == 0 ? target : target - out.at("styles.0.linear.bias").data[static_cast<size_t>(k)];
    }
  }
  return out;
}

// An Encoder4Editing from named tensors (e.g. OracleEncoderWeights).
inline std::shared_ptr<const core::psp::StyleEncoder> EncoderOf(std::map<std::string, core::FloatTensor> tensors) {
  auto shared = std::make_shared<const std::map<std::string, core::FloatTensor>>(std::move(tensors));
  const auto views = core::ViewsOf(shared);
  auto e = core::psp::StyleEncoder::FromTensors(views, views.at("latent_avg"), {}, "cpu");
  EXPECT_TRUE(e.ok()) << e.status();
  return e.ok() ? std::shared_ptr<const core::psp::StyleEncoder>(std::move(*e)) : nullptr;
}

}  // namespace ganserve::testing

#endif  // GANSERVE_TESTS_TESTING_TINY_MODELS_H_
