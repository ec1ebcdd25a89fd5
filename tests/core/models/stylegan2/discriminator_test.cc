// The discriminator of training checkpoints (`d`): strict loading and a forward
// checked against an independent torch.nn.functional forward.
#include <gtest/gtest.h>

#include <cmath>

#include "core/checkpoint/torch_file.h"
#include "core/io/npy.h"
#include "core/models/stylegan2/discriminator.h"
#include "tests/testing/checkpoint_fixtures.h"
#include "tests/testing/tensor_compare.h"

namespace ganserve::core {
namespace {

using ::ganserve::testing::CheckpointFixtureDir;
using ::ganserve::testing::MaxAbsDiff;

std::string FixtureDir() { return CheckpointFixtureDir(); }
class DiscriminatorTest : public ::ganserve::testing::CheckpointFixtureTest {};

using stylegan2::Discriminator;

TEST_F(DiscriminatorTest, MatchesAnIndependentForward) {
  auto d = Discriminator::Load(FixtureDir() + "/legacy_full.pt", "cpu");
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ((*d)->config().resolution, 32);
  const std::map<int, int> widths = {{4, 16}, {8, 16}, {16, 12}, {32, 8}};
  EXPECT_EQ((*d)->config().channels, widths);
  auto images = ReadNpyFloat(FixtureDir() + "/disc_images.npy");
  auto ref4 = ReadNpyFloat(FixtureDir() + "/disc_logits4.npy");
  auto ref2 = ReadNpyFloat(FixtureDir() + "/disc_logits2.npy");
  ASSERT_TRUE(images.ok() && ref4.ok() && ref2.ok());
  auto all = (*d)->Score(*images);
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_EQ(all->shape, std::vector<int64_t>{8});
  EXPECT_LE(MaxAbsDiff(*all, *ref4), 1e-5f);
  // Two images form one group of two: different minibatch statistics, other logits.
  FloatTensor two;
  two.shape = {2, 3, 32, 32};
  two.data.assign(images->data.begin(), images->data.begin() + 2 * 3 * 32 * 32);
  auto pair = (*d)->Score(two);
  ASSERT_TRUE(pair.ok()) << pair.status();
  EXPECT_LE(MaxAbsDiff(*pair, *ref2), 1e-5f);
  EXPECT_GT(std::fabs(pair->data[0] - all->data[0]), 1e-5f);
}

TEST_F(DiscriminatorTest, RejectsBadBatchesAndMissingEntries) {
  auto d = Discriminator::Load(FixtureDir() + "/legacy_full.pt", "cpu");
  ASSERT_TRUE(d.ok()) << d.status();
  FloatTensor six;
  six.shape = {6, 3, 32, 32};
  six.data.assign(6 * 3 * 32 * 32, 0.0f);
  auto r = (*d)->Score(six);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("multiple of 4"), std::string::npos) << r.status();
  FloatTensor wrong;
  wrong.shape = {1, 3, 64, 64};
  wrong.data.assign(3 * 64 * 64, 0.0f);
  EXPECT_EQ((*d)->Score(wrong).status().code(), absl::StatusCode::kInvalidArgument);

  auto none = Discriminator::Load(FixtureDir() + "/zip_g_only.pt", "cpu");
  EXPECT_EQ(none.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(none.status().message().find("no 'd' entry"), std::string::npos) << none.status();

  auto file = LoadTorchFile(FixtureDir() + "/legacy_full.pt");
  ASSERT_TRUE(file.ok()) << file.status();
  auto tensors = StateDictTensors(file->root->Get("d"));
  ASSERT_TRUE(tensors.ok()) << tensors.status();
  tensors->erase("convs.2.skip.1.weight");
  auto broken = Discriminator::FromTensors(*tensors, "cpu");
  EXPECT_EQ(broken.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(broken.status().message().find("convs.2.skip.1.weight"), std::string::npos) << broken.status();
}

}  // namespace
}  // namespace ganserve::core
