// StyleCLIP latent optimization on a tiny generator and CLIP: the CLIP term falls, the
// L2 term holds the latent near its start, and bad inputs are refused.
#include "core/edit/latent_optimizer.h"

#include <gtest/gtest.h>

#include "core/models/arcface/random_init.h"
#include "core/models/clip/random_init.h"
#include "core/models/stylegan2/random_init.h"
#include "core/util/np_random.h"
#include "tests/testing/tiny_models.h"

namespace ganserve::core::edit {
namespace {

std::shared_ptr<const stylegan2::Generator> Gen(int resolution) { return testing::TinyGenerator(resolution, 32, 6); }
std::shared_ptr<const clip::ClipModel> Clip() { return testing::TinyClip(4); }

FloatTensor StartOf(const stylegan2::Generator& g) {
  stylegan2::GenerateParams p;
  p.latents.shape = {1, 32};
  p.latents.data = stylegan2::SeedToZ(3, 32);
  p.truncation = 0.7f;
  p.return_wplus = true;
  p.render_images = false;
  auto r = g.Generate(p);
  EXPECT_TRUE(r.ok());
  return r->wplus;
}

FloatTensor Text() {
  NumpyRandomState rng(11);
  return FloatTensor{{64}, rng.Randn(64)};
}

double Distance(const FloatTensor& a, const FloatTensor& b) {
  double d = 0;
  for (size_t i = 0; i < a.data.size(); ++i) d += std::pow(a.data[i] - b.data[i], 2);
  return d;
}

TEST(LatentOptimizerTest, ClipLossFallsAndL2HoldsTheStart) {
  auto gen = Gen(32);
  auto clip = Clip();
  const FloatTensor start = StartOf(*gen);
  LatentOptimizationOptions o;
  o.steps = 25;
  o.lr = 0.1f;
  o.l2_lambda = 0.0f;
  auto free = LatentOptimizer::Create(gen, clip, start, Text(), {}, o);
  ASSERT_TRUE(free.ok()) << free.status();
  std::vector<float> clip_losses;
  while ((*free)->step() < (*free)->total_steps()) {
    auto l = (*free)->Step();
    ASSERT_TRUE(l.ok()) << l.status();
    clip_losses.push_back(l->at("clip"));
  }
  EXPECT_LT(clip_losses.back(), clip_losses.front() - 1e-3) << "the CLIP loss did not fall";
  EXPECT_EQ((*free)->WPlus().shape, start.shape);
  EXPECT_EQ((*free)->Step().status().code(), absl::StatusCode::kFailedPrecondition);
  // A strong L2 keeps the latent much closer to where it started.
  o.l2_lambda = 10.0f;
  auto held = LatentOptimizer::Create(gen, clip, start, Text(), {}, o);
  ASSERT_TRUE(held.ok());
  while ((*held)->step() < (*held)->total_steps()) ASSERT_TRUE((*held)->Step().ok());
  EXPECT_LT(Distance((*held)->WPlus(), start), 0.5 * Distance((*free)->WPlus(), start));
}

// The identity loss: zero where the optimisation starts (the image is its own
// reference), then reported as the latent moves; refused without an ArcFace.
TEST(LatentOptimizerTest, IdentityLossStartsAtZeroAndIsReported) {
  auto gen = Gen(64);
  auto clip = Clip();
  auto arc = testing::RandomArcFace(3);
  ASSERT_NE(arc, nullptr);
  LatentOptimizationOptions o;
  o.steps = 6;
  o.id_lambda = 0.5f;
  EXPECT_EQ(LatentOptimizer::Create(gen, clip, StartOf(*gen), Text(), {}, o).status().code(),
            absl::StatusCode::kInvalidArgument);
  auto opt = LatentOptimizer::Create(gen, clip, StartOf(*gen), Text(), {}, o, arc);
  ASSERT_TRUE(opt.ok()) << opt.status();
  std::vector<float> ids;
  for (int i = 0; i < 6; ++i) {
    auto l = (*opt)->Step();
    ASSERT_TRUE(l.ok()) << l.status();
    ids.push_back(l->at("id"));
  }
  EXPECT_NEAR(ids[0], 0.0f, 1e-5);  // step 0 renders the start itself (lr 0 at step 0, too)
  EXPECT_GT(ids.back(), ids[0]);
}

TEST(LatentOptimizerTest, RejectsBadInputs) {
  auto gen = Gen(32);
  auto clip = Clip();
  const FloatTensor start = StartOf(*gen);
  EXPECT_EQ(LatentOptimizer::Create(Gen(16), clip, StartOf(*Gen(16)), Text(), {}, {}).status().code(),
            absl::StatusCode::kInvalidArgument);
  FloatTensor wrong = start;
  wrong.shape = {1, static_cast<int64_t>(start.data.size())};
  EXPECT_EQ(LatentOptimizer::Create(gen, clip, wrong, Text(), {}, {}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(LatentOptimizer::Create(gen, clip, start, FloatTensor{{3}, {1, 2, 3}}, {}, {}).status().code(),
            absl::StatusCode::kInvalidArgument);
  LatentOptimizationOptions o;
  o.steps = 0;
  EXPECT_EQ(LatentOptimizer::Create(gen, clip, start, Text(), {}, o).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace ganserve::core::edit
