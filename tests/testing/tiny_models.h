// Small seeded models for tests that need a real generator or CLIP, not their values.
#ifndef GANSERVE_TESTS_TESTING_TINY_MODELS_H_
#define GANSERVE_TESTS_TESTING_TINY_MODELS_H_

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <string>

#include "core/models/clip/clip_model.h"
#include "core/models/clip/random_init.h"
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

// A random CLIP of TinyClipConfig (embed 64, 224 px input).
inline std::shared_ptr<const core::clip::ClipModel> TinyClip(uint32_t seed) {
  auto c =
      core::clip::ClipModel::FromTensors(core::ViewsOf(std::make_shared<const std::map<std::string, core::FloatTensor>>(
                                             core::clip::RandomClipWeights(core::clip::TinyClipConfig(), seed))),
                                         "cpu");
  EXPECT_TRUE(c.ok()) << c.status();
  return c.ok() ? std::shared_ptr<const core::clip::ClipModel>(std::move(*c)) : nullptr;
}

}  // namespace ganserve::testing

#endif  // GANSERVE_TESTS_TESTING_TINY_MODELS_H_
