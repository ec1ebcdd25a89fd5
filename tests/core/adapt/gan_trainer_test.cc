#include "core/adapt/gan_trainer.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "core/models/stylegan2/generator.h"
#include "core/models/stylegan2/random_init.h"

namespace ganserve::core::adapt {
namespace {

namespace sg = stylegan2;

struct Models {
  sg::GeneratorConfig config = sg::MakeConfigWithChannels(16, 16, 2, {{4, 16}, {8, 8}, {16, 8}});
  std::map<std::string, FloatTensor> g = sg::RandomGeneratorWeights(config, 3);
  std::map<std::string, FloatTensor> d = sg::RandomDiscriminatorWeights(sg::MakeDiscriminatorConfig(config), 4);
};

// Real images: a bright square in the middle, the rest dark.
FloatTensor Reals(int batch) {
  FloatTensor t;
  t.shape = {batch, 3, 16, 16};
  for (int b = 0; b < batch; ++b) {
    for (int c = 0; c < 3; ++c) {
      for (int y = 0; y < 16; ++y) {
        for (int x = 0; x < 16; ++x) t.data.push_back(x >= 4 && x < 12 && y >= 4 && y < 12 ? 0.8f : -0.8f);
      }
    }
  }
  return t;
}

TEST(GanTrainerTest, StepsUpdateBothNetworksAndTheEma) {
  Models s;
  GanTrainerOptions opt;
  opt.batch_size = 4;
  opt.d_reg_every = 2;
  auto trainer = GanTrainer::Create(s.config, s.g, s.d, opt);
  ASSERT_TRUE(trainer.ok()) << trainer.status();
  for (int i = 0; i < 4; ++i) {
    auto losses = (*trainer)->Step(Reals(4));
    ASSERT_TRUE(losses.ok()) << losses.status();
    for (const char* k : {"d", "g", "real_score", "fake_score"}) {
      ASSERT_TRUE(losses->count(k)) << k;
      EXPECT_TRUE(std::isfinite(losses->at(k))) << k;
    }
    EXPECT_EQ(losses->count("r1"), i % 2 == 0 ? 1u : 0u);
  }
  EXPECT_EQ((*trainer)->step(), 4);
  EXPECT_EQ((*trainer)->images_seen(), 16);
  // Every parameter moved (mapping included); buffers did not.
  const auto g = (*trainer)->GeneratorWeights(false);
  const auto ema = (*trainer)->GeneratorWeights(true);
  for (const char* k : {"style.1.weight", "convs.1.conv.weight", "to_rgbs.1.bias", "input.input"}) {
    EXPECT_NE(g.at(k).data, s.g.at(k).data) << k;
    EXPECT_NE(ema.at(k).data, s.g.at(k).data) << k;
    EXPECT_NE(ema.at(k).data, g.at(k).data) << k;  // the EMA lags behind
  }
  EXPECT_EQ(g.at("noises.noise_0").data, s.g.at("noises.noise_0").data);
  const auto d = (*trainer)->DiscriminatorWeights();
  EXPECT_NE(d.at("final_linear.0.weight").data, s.d.at("final_linear.0.weight").data);
  // The result loads as an ordinary generator.
  std::map<std::string, TensorView> views;
  for (const auto& [k, t] : ema) views[k] = ViewOf(std::make_shared<const FloatTensor>(t));
  EXPECT_TRUE(sg::Generator::FromTensors(views, nullptr, {}).ok());
  FloatTensor z{{2, 16}, std::vector<float>(32, 0.5f)};
  auto images = (*trainer)->Sample(z, 0.7f);
  ASSERT_TRUE(images.ok()) << images.status();
  EXPECT_EQ(images->shape, (std::vector<int64_t>{2, 3, 16, 16}));
}

TEST(GanTrainerTest, ResumeRepeatsTheSameSteps) {
  Models s;
  GanTrainerOptions opt;
  opt.batch_size = 2;
  opt.d_reg_every = 2;
  auto straight = GanTrainer::Create(s.config, s.g, s.d, opt);
  auto resumed = GanTrainer::Create(s.config, s.g, s.d, opt);
  ASSERT_TRUE(straight.ok() && resumed.ok());
  const std::string path = (std::filesystem::temp_directory_path() / "gan_trainer_test.safetensors").string();
  ASSERT_TRUE((*straight)->Step(Reals(2)).ok());
  ASSERT_TRUE((*straight)->Step(Reals(2)).ok());
  ASSERT_TRUE((*straight)->SaveCheckpoint(path).ok());
  ASSERT_TRUE((*straight)->Step(Reals(2)).ok());
  ASSERT_TRUE((*resumed)->RestoreCheckpoint(path).ok());
  EXPECT_EQ((*resumed)->step(), 2);
  ASSERT_TRUE((*resumed)->Step(Reals(2)).ok());
  // Same draws, same arithmetic on one machine and batch: equal up to float rounding.
  const auto a = (*straight)->GeneratorWeights(true), b = (*resumed)->GeneratorWeights(true);
  for (const auto& [k, t] : a) {
    for (size_t i = 0; i < t.data.size(); ++i) ASSERT_NEAR(t.data[i], b.at(k).data[i], 1e-5) << k;
  }
  std::filesystem::remove(path);
  EXPECT_EQ((*resumed)->RestoreCheckpoint("/nonexistent.safetensors").code(), absl::StatusCode::kNotFound);
}

TEST(GanTrainerTest, RefusesBadInput) {
  Models s;
  GanTrainerOptions opt;
  opt.batch_size = 1;
  EXPECT_EQ(GanTrainer::Create(s.config, s.g, s.d, opt).status().code(), absl::StatusCode::kInvalidArgument);
  opt.batch_size = 2;
  auto other = sg::MakeConfigWithChannels(8, 16, 2, {{4, 16}, {8, 8}});
  EXPECT_EQ(
      GanTrainer::Create(s.config, s.g, sg::RandomDiscriminatorWeights(sg::MakeDiscriminatorConfig(other), 1), opt)
          .status()
          .code(),
      absl::StatusCode::kInvalidArgument);
  auto trainer = GanTrainer::Create(s.config, s.g, s.d, opt);
  ASSERT_TRUE(trainer.ok());
  EXPECT_EQ((*trainer)->Step(Reals(3)).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace ganserve::core::adapt
