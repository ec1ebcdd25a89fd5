// StyleCLIP global directions: channel selection, statistics against a direct
// computation, checkpoint/resume, the beta threshold on a planted relevance matrix,
// and the text direction.
#include "core/edit/global_directions.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <map>

#include "core/checkpoint/safetensors.h"
#include "core/io/image_codec.h"
#include "core/models/clip/preprocess.h"
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

// The official SingleChannel.py loop written out directly: the shared codes of the first
// images, each channel clamped to its mean in place (kept for every later channel),
// rendered at mean -/+ alpha*std, quantised, CLIP-embedded; GetFs on the embeddings.
// (Rendered in the builder's batches so float rounding is the same.)
std::vector<float> OfficialRelevance(const stylegan2::Generator& gen, const clip::ClipModel& clip,
                                     const GlobalStats& st, const GlobalStatsOptions& o, bool cumulative) {
  const int64_t sd = gen.config().s_dim, d = clip.config().embed_dim;
  NumpyRandomState rng(o.seed);
  stylegan2::GenerateParams p;
  p.latents.shape = {o.sample_batch, gen.config().style_dim};  // the builder's first statistics batch
  p.latents.data = rng.Randn(static_cast<size_t>(o.sample_batch) * gen.config().style_dim);
  p.truncation = o.truncation;
  p.return_s = true;
  p.render_images = false;
  auto first = gen.Generate(p);
  EXPECT_TRUE(first.ok());
  // [num_images, sd]: the codes every channel's renders start from (shared, as in the loop)
  std::vector<float> codes(first->s.data.begin(), first->s.data.begin() + o.num_images * sd);
  std::vector<float> out;
  for (int64_t c : st.channels) {
    std::vector<float> work = codes;
    for (int i = 0; i < o.num_images; ++i) work[i * sd + c] = st.s_mean.data[c];
    if (cumulative) codes = work;  // the in-place write through the shallow copy
    std::vector<double> acc(static_cast<size_t>(d), 0.0);
    for (int start = 0; start < o.num_images; start += o.batch_size / 2) {
      const int pairs = std::min(o.batch_size / 2, o.num_images - start);
      stylegan2::GenerateParams r;
      r.space = stylegan2::LatentSpace::kS;
      r.latents.shape = {2 * pairs, sd};
      r.max_resolution = o.render_resolution;
      for (int i = start; i < start + pairs; ++i) {
        for (float sign : {-1.0f, 1.0f}) {
          std::vector<float> row(work.begin() + i * sd, work.begin() + (i + 1) * sd);
          row[c] += sign * o.alpha * st.s_std.data[c];
          r.latents.data.insert(r.latents.data.end(), row.begin(), row.end());
        }
      }
      auto img = gen.Generate(r);
      EXPECT_TRUE(img.ok());
      FloatTensor batch{{2 * pairs, 3, clip.config().image_resolution, clip.config().image_resolution}, {}};
      for (int k = 0; k < 2 * pairs; ++k) {
        auto rgb = FloatToRgb8(img->images, k);
        EXPECT_TRUE(rgb.ok());
        FloatTensor x = clip::PreprocessForClip(*rgb, clip.config().image_resolution);
        batch.data.insert(batch.data.end(), x.data.begin(), x.data.end());
      }
      auto emb = clip.EncodeImage(batch);
      EXPECT_TRUE(emb.ok());
      auto unit = [&](std::vector<double> v) {
        double n = 0;
        for (double x : v) n += x * x;
        for (double& x : v) x /= std::sqrt(n);
        return v;
      };
      for (int k = 0; k < pairs; ++k) {
        auto lo = unit({emb->data.begin() + (2 * k) * d, emb->data.begin() + (2 * k + 1) * d});
        auto hi = unit({emb->data.begin() + (2 * k + 1) * d, emb->data.begin() + (2 * k + 2) * d});
        for (int64_t j = 0; j < d; ++j) hi[j] -= lo[j];
        hi = unit(hi);
        for (int64_t j = 0; j < d; ++j) acc[j] += hi[j];
      }
    }
    double n = 0;
    for (double x : acc) n += x * x;
    for (double x : acc) out.push_back(static_cast<float>(x / std::sqrt(n)));
  }
  return out;
}

TEST(GlobalDirectionsTest, RelevanceClampsCumulativelyAsTheOfficialLoopDoes) {
  auto gen = TinyGenerator();
  auto clip = TinyClip();
  GlobalStatsOptions o = SmallOptions();
  std::map<bool, std::vector<float>> built;
  for (bool cumulative : {true, false}) {
    o.clamping = cumulative ? ChannelClamping::kCumulative : ChannelClamping::kIndependent;
    auto b = GlobalStatsBuilder::Create(gen, clip, o);
    ASSERT_TRUE(b.ok()) << b.status();
    while ((*b)->step() < (*b)->total_steps()) ASSERT_TRUE((*b)->Step().ok());
    auto st = (*b)->Result();
    ASSERT_TRUE(st.ok());
    EXPECT_EQ(st->clamping, cumulative ? "cumulative" : "independent");
    const std::vector<float> want = OfficialRelevance(*gen, *clip, *st, o, cumulative);
    ASSERT_EQ(st->relevance.data.size(), want.size());
    for (size_t i = 0; i < want.size(); ++i) {
      ASSERT_NEAR(st->relevance.data[i], want[i], 1e-4) << (cumulative ? "cumulative" : "independent") << " " << i;
    }
    built[cumulative] = st->relevance.data;
  }
  // The first channel is measured the same way by both; later ones differ.
  const int64_t d = clip->config().embed_dim;
  double first = 0, rest = 0;
  for (int64_t j = 0; j < d; ++j) first += std::fabs(built[true][j] - built[false][j]);
  for (size_t j = static_cast<size_t>(d); j < built[true].size(); ++j)
    rest += std::fabs(built[true][j] - built[false][j]);
  EXPECT_LT(first, 1e-5);
  EXPECT_GT(rest, 1e-2);
}

TEST(GlobalDirectionsTest, RenderResolutionMeasuresOnThePartialImage) {
  auto gen = TinyGenerator();  // 16 px
  auto clip = TinyClip();
  GlobalStatsOptions o = SmallOptions();
  std::map<int, std::vector<float>> built;
  for (int render : {0, 8}) {
    o.render_resolution = render;
    auto b = GlobalStatsBuilder::Create(gen, clip, o);
    ASSERT_TRUE(b.ok()) << b.status();
    while ((*b)->step() < (*b)->total_steps()) ASSERT_TRUE((*b)->Step().ok());
    auto preview = (*b)->Preview();
    ASSERT_TRUE(preview.ok());
    EXPECT_EQ(preview->shape[2], render == 0 ? 16 : render);
    auto st = (*b)->Result();
    ASSERT_TRUE(st.ok());
    EXPECT_EQ(st->render_resolution, render);
    // The reference loop on images that stop at the same size.
    const std::vector<float> want = OfficialRelevance(*gen, *clip, *st, o, true);
    ASSERT_EQ(st->relevance.data.size(), want.size());
    for (size_t i = 0; i < want.size(); ++i) ASSERT_NEAR(st->relevance.data[i], want[i], 1e-4) << render << " " << i;
    built[render] = st->relevance.data;
    const std::string path = TempPath("render.safetensors");
    ASSERT_TRUE(SaveGlobalStats(path, *st, "m", "c").ok());
    auto loaded = LoadGlobalStats(path);
    ASSERT_TRUE(loaded.ok());
    EXPECT_EQ(loaded->render_resolution, render);
  }
  double diff = 0;
  for (size_t i = 0; i < built[0].size(); ++i) diff += std::fabs(built[0][i] - built[8][i]);
  EXPECT_GT(diff, 1e-2);  // the partial image is another measurement
}

TEST(GlobalDirectionsTest, TruncationCutoffTruncatesOnlyTheFirstRows) {
  auto gen = TinyGenerator();
  GlobalStatsOptions o = SmallOptions();
  o.truncation_cutoff = 2;
  auto b = GlobalStatsBuilder::Create(gen, TinyClip(), o);
  ASSERT_TRUE(b.ok()) << b.status();
  while ((*b)->step() < 3) ASSERT_TRUE((*b)->Step().ok());  // the statistics phase
  ASSERT_TRUE((*b)->SaveCheckpoint(TempPath("cut.safetensors")).ok());
  // Direct: w+ rows 0-1 truncated (psi 0.7) and the rest as mapped, from the truncated
  // and untruncated w+ of the same z; then S of that w+.
  const auto& cfg = gen->config();
  NumpyRandomState rng(5);
  stylegan2::GenerateParams p;
  p.latents.shape = {40, cfg.style_dim};
  p.latents.data = rng.Randn(40 * static_cast<size_t>(cfg.style_dim));
  p.render_images = false;
  p.return_wplus = true;
  auto full = gen->Generate(p);
  p.truncation = 0.7f;
  auto cut = gen->Generate(p);
  ASSERT_TRUE(full.ok() && cut.ok());
  stylegan2::GenerateParams q;
  q.space = stylegan2::LatentSpace::kWPlus;
  q.latents = full->wplus;
  const int64_t row = cfg.style_dim, per = int64_t{cfg.n_latent} * row;
  for (int i = 0; i < 40; ++i) {
    for (int64_t j = 0; j < 2 * row; ++j) q.latents.data[i * per + j] = cut->wplus.data[i * per + j];
  }
  q.return_s = true;
  q.render_images = false;
  auto s = gen->Generate(q);
  ASSERT_TRUE(s.ok());
  auto f = LoadSafetensors(TempPath("cut.safetensors"));
  ASSERT_TRUE(f.ok());
  auto mean = ToFloatTensor(f->tensors.at("mean"));
  ASSERT_TRUE(mean.ok());
  const int64_t sd = cfg.s_dim;
  double moved_vs_all = 0;
  for (int64_t j = 0; j < sd; ++j) {
    double m = 0;
    for (int i = 0; i < 40; ++i) m += s->s.data[i * sd + j];
    EXPECT_NEAR(mean->data[j], m / 40, 1e-4) << j;
  }
  // Every-row truncation (the default) gives other statistics for the later layers.
  o.truncation_cutoff.reset();
  auto all = GlobalStatsBuilder::Create(gen, TinyClip(), o);
  while ((*all)->step() < 3) ASSERT_TRUE((*all)->Step().ok());
  ASSERT_TRUE((*all)->SaveCheckpoint(TempPath("all.safetensors")).ok());
  auto fa = LoadSafetensors(TempPath("all.safetensors"));
  auto mean_all = ToFloatTensor(fa->tensors.at("mean"));
  for (int64_t j = 0; j < sd; ++j) moved_vs_all += std::fabs(mean_all->data[j] - mean->data[j]);
  EXPECT_GT(moved_vs_all, 1e-3);
  // Out of range.
  o.truncation_cutoff = cfg.n_latent + 1;
  EXPECT_EQ(GlobalStatsBuilder::Create(gen, TinyClip(), o).status().code(), absl::StatusCode::kInvalidArgument);
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
  for (int render : {4, 12, 32}) {  // below the measured layers (8 px), not a power of two, above the model
    o = SmallOptions();
    o.render_resolution = render;
    auto st = GlobalStatsBuilder::Create(gen, clip, o).status();
    EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << render;
    EXPECT_NE(st.message().find("render_resolution must be a power of two in [8, 16]"), std::string::npos) << st;
  }
  auto b = GlobalStatsBuilder::Create(gen, clip, SmallOptions());
  ASSERT_TRUE(b.ok());
  EXPECT_EQ((*b)->Result().status().code(), absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace ganserve::core::edit
