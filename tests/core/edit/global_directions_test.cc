// StyleCLIP global directions: channel selection, statistics against a direct
// computation, checkpoint/resume, the beta threshold on a planted relevance matrix,
// and the text direction.
#include "core/edit/global_directions.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>

#include "core/models/clip/random_init.h"
#include "core/models/stylegan2/random_init.h"
#include "core/util/np_random.h"
#include "tests/testing/tiny_models.h"

namespace ganserve::core::edit {
namespace {

std::shared_ptr<const stylegan2::Generator> TinyGenerator() { return testing::TinyGenerator(16, 32, 4); }
std::shared_ptr<const clip::ClipModel> TinyClip() { return testing::TinyClip(3); }

std::string TempPath(const std::string& name) {
  auto dir = std::filesystem::temp_directory_path() / ("ganserve_gd_test_" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  return (dir / name).string();
}

TEST(GlobalDirectionsTest, RelevanceChannelsFollowTheReferenceAt1024AndScaleDown) {
  // 1024 px config-f: conv layers up to 128 px, 5376 channels (the reference's fs3 rows).
  auto big = stylegan2::MakeConfig(1024, 512, 8, 2);
  auto ch = RelevanceChannels(big, 128);
  EXPECT_EQ(ch.size(), 5376u);
  EXPECT_EQ(ch.front(), 0);  // conv1 at 4 px
  EXPECT_EQ(ch[512], 1024);  // to_rgb1 (512..1023) skipped
  // A 16 px model: every conv layer (4: conv1; 8, 16: two convs each), ToRGBs skipped.
  auto small = stylegan2::MakeConfig(16, 32, 2, 1, 8);
  int64_t expected = 0;
  for (const auto& l : small.style_layers) expected += l.demodulate ? l.in_channel : 0;
  EXPECT_EQ(static_cast<int64_t>(RelevanceChannels(small, 128).size()), expected);
  EXPECT_LT(RelevanceChannels(small, 8).size(), static_cast<size_t>(expected));
}

GlobalStatsOptions SmallOptions() {
  GlobalStatsOptions o;
  o.num_samples = 40;
  o.num_images = 3;
  o.batch_size = 4;  // 2 pairs per step: 2 steps per channel
  o.sample_batch = 16;
  o.max_resolution = 8;
  return o;
}

TEST(GlobalDirectionsTest, StatisticsMatchADirectComputationAndRowsAreUnit) {
  auto gen = TinyGenerator();
  auto b = GlobalStatsBuilder::Create(gen, TinyClip(), SmallOptions());
  ASSERT_TRUE(b.ok()) << b.status();
  const auto channels = RelevanceChannels(gen->config(), 8);
  EXPECT_EQ((*b)->total_steps(), 3 + static_cast<int64_t>(channels.size()) * 2);
  while ((*b)->step() < (*b)->total_steps()) ASSERT_TRUE((*b)->Step().ok());
  auto s = (*b)->Result();
  ASSERT_TRUE(s.ok()) << s.status();

  // The same 40 z from the seed-5 NumPy stream, truncation 0.7, straight through S.
  NumpyRandomState rng(5);
  stylegan2::GenerateParams p;
  p.latents.shape = {40, 32};
  p.latents.data = rng.Randn(40 * 32);
  p.truncation = 0.7f;
  p.return_s = true;
  p.render_images = false;
  auto direct = gen->Generate(p);
  ASSERT_TRUE(direct.ok());
  const int64_t sd = gen->config().s_dim;
  for (int64_t j = 0; j < sd; j += 7) {
    double m = 0, v = 0;
    for (int i = 0; i < 40; ++i) m += direct->s.data[i * sd + j];
    m /= 40;
    for (int i = 0; i < 40; ++i) v += std::pow(direct->s.data[i * sd + j] - m, 2);
    EXPECT_NEAR(s->s_mean.data[j], m, 1e-4) << j;
    EXPECT_NEAR(s->s_std.data[j], std::sqrt(v / 40), 1e-4) << j;
  }
  ASSERT_EQ(s->relevance.shape, (std::vector<int64_t>{static_cast<int64_t>(channels.size()), 64}));
  EXPECT_EQ(s->channels, channels);
  for (size_t r = 0; r < channels.size(); ++r) {
    double n = 0;
    for (int j = 0; j < 64; ++j) n += std::pow(s->relevance.data[r * 64 + j], 2);
    EXPECT_NEAR(n, 1.0, 1e-4) << r;
  }
}

TEST(GlobalDirectionsTest, ResumingFromACheckpointGivesTheSameResult) {
  auto gen = TinyGenerator();
  auto clip = TinyClip();
  auto whole = GlobalStatsBuilder::Create(gen, clip, SmallOptions());
  ASSERT_TRUE(whole.ok());
  while ((*whole)->step() < (*whole)->total_steps()) ASSERT_TRUE((*whole)->Step().ok());
  auto expected = (*whole)->Result();
  ASSERT_TRUE(expected.ok());

  // Stop once inside the statistics phase and once mid-channel.
  for (int64_t stop : {int64_t{1}, int64_t{6}}) {
    auto first = GlobalStatsBuilder::Create(gen, clip, SmallOptions());
    ASSERT_TRUE(first.ok());
    while ((*first)->step() < stop) ASSERT_TRUE((*first)->Step().ok());
    const std::string ckpt = TempPath("ckpt.safetensors");
    ASSERT_TRUE((*first)->SaveCheckpoint(ckpt).ok());
    auto resumed = GlobalStatsBuilder::Create(gen, clip, SmallOptions());
    ASSERT_TRUE(resumed.ok());
    ASSERT_TRUE((*resumed)->RestoreCheckpoint(ckpt).ok());
    EXPECT_EQ((*resumed)->step(), stop);
    while ((*resumed)->step() < (*resumed)->total_steps()) ASSERT_TRUE((*resumed)->Step().ok());
    auto got = (*resumed)->Result();
    ASSERT_TRUE(got.ok());
    for (size_t i = 0; i < got->relevance.data.size(); ++i) {
      ASSERT_NEAR(got->relevance.data[i], expected->relevance.data[i], 1e-6) << "stop " << stop << " at " << i;
    }
    EXPECT_EQ(got->s_std.data, expected->s_std.data);
  }
  // A checkpoint of other options is refused.
  GlobalStatsOptions other = SmallOptions();
  other.num_images = 2;
  auto mismatched = GlobalStatsBuilder::Create(gen, clip, other);
  ASSERT_TRUE(mismatched.ok());
  EXPECT_EQ((*mismatched)->RestoreCheckpoint(TempPath("ckpt.safetensors")).code(), absl::StatusCode::kInvalidArgument);

  // Stored statistics round-trip.
  const std::string path = TempPath("stats.safetensors");
  ASSERT_TRUE(SaveGlobalStats(path, *expected, "tiny", "clip-demo").ok());
  auto loaded = LoadGlobalStats(path);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->channels, expected->channels);
  EXPECT_EQ(loaded->relevance.data, expected->relevance.data);
  EXPECT_EQ(loaded->num_images, 3);
  EXPECT_EQ(LoadGlobalStats(TempPath("missing.safetensors")).status().code(), absl::StatusCode::kNotFound);
}

TEST(GlobalDirectionsTest, BetaThresholdOnAPlantedRelevanceMatrix) {
  GlobalStats s;
  s.s_mean = FloatTensor{{8}, std::vector<float>(8, 0.0f)};
  s.s_std = FloatTensor{{8}, {1, 2, 3, 4, 5, 6, 7, 8}};
  s.channels = {1, 3, 5};
  // Rows against dt = e0 give relevance 0.9, 0.1, -0.5.
  s.relevance = FloatTensor{{3, 2}, {0.9f, 0.43589f, 0.1f, 0.99499f, -0.5f, 0.86603f}};
  FloatTensor dt{{2}, {1.0f, 0.0f}};
  auto g = MakeGlobalDirection(s, dt, 0.2f);
  ASSERT_TRUE(g.ok());
  EXPECT_EQ(g->channels_moved, 2);
  EXPECT_NEAR(g->max_relevance, 0.9f, 1e-6);
  const std::vector<float> want = {0, 2.0f, 0, 0, 0, -0.5f / 0.9f * 6.0f, 0, 0};
  ASSERT_EQ(g->delta_s.shape, (std::vector<int64_t>{1, 8}));
  for (int i = 0; i < 8; ++i) EXPECT_NEAR(g->delta_s.data[i], want[i], 1e-5) << i;
  // A higher beta keeps fewer channels; above every relevance, none.
  EXPECT_EQ(MakeGlobalDirection(s, dt, 0.05f)->channels_moved, 3);
  auto none = MakeGlobalDirection(s, dt, 0.95f);
  EXPECT_EQ(none->channels_moved, 0);
  for (float v : none->delta_s.data) EXPECT_EQ(v, 0.0f);
  EXPECT_EQ(MakeGlobalDirection(s, FloatTensor{{3}, {1, 0, 0}}, 0.1f).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(GlobalDirectionsTest, TextDirectionAveragesUnitTemplateEmbeddings) {
  // Neutral templates point along x (different lengths), target along y.
  FloatTensor neutral{{2, 2}, {2.0f, 0.0f, 0.5f, 0.0f}};
  FloatTensor target{{2, 2}, {0.0f, 3.0f, 0.0f, 1.0f}};
  FloatTensor dt = TextDirection(neutral, target);
  EXPECT_NEAR(dt.data[0], -std::sqrt(0.5f), 1e-6);
  EXPECT_NEAR(dt.data[1], std::sqrt(0.5f), 1e-6);
}

TEST(GlobalDirectionsTest, RejectsBadOptions) {
  auto gen = TinyGenerator();
  auto clip = TinyClip();
  GlobalStatsOptions o = SmallOptions();
  o.batch_size = 3;
  EXPECT_EQ(GlobalStatsBuilder::Create(gen, clip, o).status().code(), absl::StatusCode::kInvalidArgument);
  o = SmallOptions();
  o.num_images = 41;
  EXPECT_EQ(GlobalStatsBuilder::Create(gen, clip, o).status().code(), absl::StatusCode::kInvalidArgument);
  o = SmallOptions();
  o.max_resolution = 2;
  EXPECT_EQ(GlobalStatsBuilder::Create(gen, clip, o).status().code(), absl::StatusCode::kInvalidArgument);
  auto b = GlobalStatsBuilder::Create(gen, clip, SmallOptions());
  ASSERT_TRUE(b.ok());
  EXPECT_EQ((*b)->Result().status().code(), absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace ganserve::core::edit
