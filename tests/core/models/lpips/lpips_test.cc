// LPIPS v0.1 (VGG16): distances checked against an independent forward.
#include <gtest/gtest.h>

#include <cmath>

#include "core/checkpoint/torch_file.h"
#include "core/io/npy.h"
#include "core/models/lpips/lpips.h"
#include "tests/testing/checkpoint_fixtures.h"
#include "tests/testing/tensor_compare.h"

namespace ganserve::core {
namespace {

using ::ganserve::testing::CheckpointFixtureDir;
using ::ganserve::testing::MaxAbsDiff;

std::string FixtureDir() { return CheckpointFixtureDir(); }
class LpipsTest : public ::ganserve::testing::CheckpointFixtureTest {};

TEST_F(LpipsTest, MatchesAnIndependentForward) {
  auto lp = lpips::Lpips::Load(FixtureDir() + "/vgg16_features.pt", FixtureDir() + "/lpips_vgg.pth", "cpu");
  ASSERT_TRUE(lp.ok()) << lp.status();
  auto a = ReadNpyFloat(FixtureDir() + "/lpips_a.npy");
  auto b = ReadNpyFloat(FixtureDir() + "/lpips_b.npy");
  auto ref = ReadNpyFloat(FixtureDir() + "/lpips_d.npy");
  ASSERT_TRUE(a.ok() && b.ok() && ref.ok());
  auto d = (*lp)->Distance(*a, *b);
  ASSERT_TRUE(d.ok()) << d.status();
  ASSERT_EQ(d->shape, std::vector<int64_t>{2});
  for (int i = 0; i < 2; ++i) EXPECT_NEAR(d->data[i], ref->data[i], 1e-5 + 1e-4 * ref->data[i]) << i;
  auto same = (*lp)->Distance(*a, *a);
  ASSERT_TRUE(same.ok());
  EXPECT_NEAR(same->data[0], 0.0f, 1e-7);
  FloatTensor small{{1, 3, 16, 16}, std::vector<float>(3 * 16 * 16, 0.0f)};
  EXPECT_EQ((*lp)->Distance(small, small).status().code(), absl::StatusCode::kInvalidArgument);
  // The linear layers' file in place of VGG16 names what is missing.
  auto swapped = lpips::Lpips::Load(FixtureDir() + "/lpips_vgg.pth", FixtureDir() + "/lpips_vgg.pth", "cpu");
  EXPECT_EQ(swapped.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(swapped.status().message().find("features.0.weight"), std::string::npos) << swapped.status();
}

}  // namespace
}  // namespace ganserve::core
