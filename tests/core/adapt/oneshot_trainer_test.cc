// OneshotCLIP training on tiny random models: both phases run and report their terms,
// only the trained tensors move, the reference alignment pulls G_t(w_ref) toward the
// target, a checkpoint resumes bit for bit, and bad inputs are refused.
#include "core/adapt/oneshot_trainer.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <set>

#include "tests/testing/clip_guide.h"
#include "tests/testing/shared.h"
#include "tests/testing/tiny_models.h"

namespace ganserve::core::adapt {
namespace {

using ::ganserve::testing::TinyAlexLpips;
using ::ganserve::testing::TinyClip;
using ::ganserve::testing::TinyDiscriminator;
using ::ganserve::testing::TinyGenerator;

constexpr int kRes = 32;
constexpr int kStyle = 16;

Rgb8Image Target() {
  Rgb8Image img;
  img.width = 40;
  img.height = 36;
  for (int y = 0; y < img.height; ++y) {
    for (int x = 0; x < img.width; ++x) {
      img.pixels.push_back(static_cast<uint8_t>(x * 6));
      img.pixels.push_back(static_cast<uint8_t>(y * 7));
      img.pixels.push_back(static_cast<uint8_t>((x + y) % 2 == 0 ? 40 : 200));
    }
  }
  return img;
}

class OneshotTrainerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    models_.g = TinyGenerator(kRes, kStyle, 3);
    models_.g_ema = TinyGenerator(kRes, kStyle, 4);  // differs from g, as after real training
    models_.d = TinyDiscriminator(kRes, kStyle, 5);
    models_.clip = ClipGuide{"clip-tiny", TinyClip(6), nullptr, 1.0f};
    models_.lpips = TinyAlexLpips(7);
    ASSERT_TRUE(models_.g && models_.g_ema && models_.d && models_.clip.model && models_.lpips);
  }
  static OneshotOptions Opt() {
    OneshotOptions o;
    o.reference_steps = 3;
    o.iterations = 6;
    o.mean_latent_samples = 500;
    o.crops = 4;
    o.reference_views = 2;
    o.preview_count = 2;
    o.seed = 11;
    return o;
  }
  std::unique_ptr<OneshotTrainer> Make(const OneshotOptions& o) {
    auto t = OneshotTrainer::Create(models_, Target(), o);
    EXPECT_TRUE(t.ok()) << t.status();
    return t.ok() ? std::move(*t) : nullptr;
  }
  OneshotModels models_;
};

std::set<std::string> Keys(const std::map<std::string, float>& m) {
  std::set<std::string> k;
  for (const auto& [name, v] : m) k.insert(name);
  return k;
}

TEST_F(OneshotTrainerTest, RunsBothPhasesWithTheirLossTerms) {
  auto t = Make(Opt());
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->total_steps(), 9);
  const FloatTensor w0 = t->ReferenceLatent();
  for (int s = 0; s < 3; ++s) {
    EXPECT_STREQ(t->phase(), "reference_search");
    auto l = t->Step();
    ASSERT_TRUE(l.ok()) << l.status();
    EXPECT_EQ(Keys(*l), (std::set<std::string>{"total", "clip_ref", "w_l2", "ref_lpips", "ref_mse"}));
  }
  // The search moved w_ref away from w_mean.
  const FloatTensor w1 = t->ReferenceLatent();
  double moved = 0;
  for (size_t i = 0; i < w0.data.size(); ++i) moved += std::fabs(w1.data[i] - w0.data[i]);
  EXPECT_GT(moved, 1e-3);
  // Fine-tuning: iteration 0 aligns the reference (with R1), 1..3 are patch steps, 4 aligns.
  for (int i = 0; i < 6; ++i) {
    EXPECT_STREQ(t->phase(), "fine_tune");
    auto l = t->Step();
    ASSERT_TRUE(l.ok()) << l.status();
    std::set<std::string> want = {"adv_d", "adv_g", "total"};
    if (i % 4 == 0) {
      want.insert({"ref_lpips", "ref_mse"});
    } else {
      want.insert({"const", "patch"});
    }
    if (i % 16 == 0) want.insert("r1");
    EXPECT_EQ(Keys(*l), want) << "iteration " << i;
    for (const auto& [k, v] : *l) EXPECT_TRUE(std::isfinite(v)) << k;
  }
  EXPECT_FALSE(t->Step().ok());  // complete
  // Previews: the grid, then the target and G(w_ref) on the current one.
  auto src = t->Preview(true);
  auto cur = t->Preview(false);
  ASSERT_TRUE(src.ok() && cur.ok());
  EXPECT_EQ(src->shape, (std::vector<int64_t>{2, 3, kRes, kRes}));
  EXPECT_EQ(cur->shape, (std::vector<int64_t>{4, 3, kRes, kRes}));
}

// The EMA moves every parameter toward the trainable generator; those whose trainable
// value never changes (mapping, ToRGB) move toward g's frozen values. With decay 0 the
// EMA is the trainable generator itself: the convolutions changed, the rest is g.
TEST_F(OneshotTrainerTest, OnlyTheTrainedTensorsChange) {
  models_.g_ema = models_.g;
  OneshotOptions o = Opt();
  o.w_ref.assign(kStyle, 0.1f);  // skip the search
  o.ema_decay = 0;
  auto t = Make(o);
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->total_steps(), 6);
  EXPECT_STREQ(t->phase(), "fine_tune");
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(t->Step().ok());
  const auto base = models_.g->StateDict();
  int changed = 0, frozen = 0;
  for (const auto& [name, v] : t->Delta()) {
    const FloatTensor& b = base.at(name);
    float diff = 0, scale = 0;
    for (size_t i = 0; i < v.data.size(); ++i) {
      diff = std::max(diff, std::fabs(v.data[i] - b.data[i]));
      scale = std::max(scale, std::fabs(b.data[i]));
    }
    const bool trained = name.rfind("input.", 0) == 0 || name.rfind("conv1.", 0) == 0 || name.rfind("convs.", 0) == 0;
    if (trained && name.find("noise") == std::string::npos && name.find("modulation") == std::string::npos) {
      changed += diff > 1e-5f * scale ? 1 : 0;
    }
    if (!trained) {
      EXPECT_EQ(diff, 0.0f) << name;
      ++frozen;
    }
  }
  EXPECT_GT(changed, 5);
  EXPECT_GT(frozen, 5);
  // w_ref was taken as given.
  EXPECT_EQ(t->ReferenceLatent().data, std::vector<float>(kStyle, 0.1f));
}

// Alignment steps only: the generator is pulled toward the target at w_ref (MSE + LPIPS
// beside the adversarial term), so the reference MSE falls.
TEST_F(OneshotTrainerTest, ReferenceAlignmentPullsTowardTheTarget) {
  OneshotOptions o = Opt();
  o.w_ref.assign(kStyle, 0.0f);
  o.iterations = 40;
  o.ref_every = 1;
  o.lr = 0.01f;
  auto t = Make(o);
  ASSERT_NE(t, nullptr);
  std::vector<float> mse;
  for (int i = 0; i < o.iterations; ++i) {
    auto l = t->Step();
    ASSERT_TRUE(l.ok()) << l.status();
    mse.push_back(l->at("ref_mse"));
  }
  const float first = (mse[0] + mse[1] + mse[2]) / 3, last = (mse[37] + mse[38] + mse[39]) / 3;
  EXPECT_LT(last, 0.7f * first) << "first " << first << " last " << last;
}

// Patch steps with a CLIP that tells images apart (the shared tiny fixture; random CLIP
// weights embed every image alike): the discriminator learns to tell the target's
// patches from the samples' (its logistic loss falls), and the trained generator departs
// from the frozen source (the consistency term, near zero while they are alike, grows).
TEST_F(OneshotTrainerTest, DiscriminatorLearnsAndTheDomainsDepart) {
  const std::string shared = ::ganserve::testing::SharedDir();
  if (shared.empty()) GTEST_SKIP() << "shared/ fixtures not found: no CLIP fixture to measure consistency with";
  auto guide = ::ganserve::testing::SharedTinyClipGuide(shared);
  ASSERT_TRUE(guide.has_value());
  models_.clip = *guide;
  auto mean = [](const std::vector<float>& v, size_t a, size_t b) {
    double s = 0;
    for (size_t i = a; i < b; ++i) s += v[i];
    return s / static_cast<double>(b - a);
  };
  for (uint64_t seed : {11, 12}) {
    OneshotOptions o = Opt();
    o.w_ref.assign(kStyle, 0.0f);
    o.iterations = 40;
    o.ref_every = 1000;  // one alignment step, then patch steps
    o.lr = 0.01f;
    o.mixing = 0;  // the same latents through both generators
    o.lambda_patch = 0;
    o.lambda_const = 50;
    o.seed = seed;
    auto t = Make(o);
    ASSERT_NE(t, nullptr);
    std::vector<float> d, c;
    for (int i = 0; i < o.iterations; ++i) {
      auto l = t->Step();
      ASSERT_TRUE(l.ok()) << l.status();
      d.push_back(l->at("adv_d"));
      if (i > 0) c.push_back(l->at("const"));
    }
    EXPECT_LT(mean(d, 30, 40), mean(d, 1, 11) - 0.05) << "seed " << seed;
    EXPECT_GT(mean(c, 29, 39), mean(c, 0, 10)) << "seed " << seed;
  }
}

TEST_F(OneshotTrainerTest, CheckpointResumesBitForBit) {
  const std::string path = ::testing::TempDir() + "/oneshot_ckpt_" + std::to_string(getpid()) + ".safetensors";
  auto a = Make(Opt());
  ASSERT_NE(a, nullptr);
  for (int s = 0; s < 5; ++s) ASSERT_TRUE(a->Step().ok());
  ASSERT_TRUE(a->SaveCheckpoint(path).ok());
  auto b = Make(Opt());
  ASSERT_NE(b, nullptr);
  ASSERT_TRUE(b->RestoreCheckpoint(path).ok());
  EXPECT_EQ(b->step(), 5);
  for (int s = 5; s < 9; ++s) {
    auto la = a->Step();
    auto lb = b->Step();
    ASSERT_TRUE(la.ok() && lb.ok());
    // Same process, same shapes, same draws: the same kernels run on the same numbers.
    EXPECT_EQ(*la, *lb) << "step " << s;
  }
  EXPECT_EQ(a->Delta().at("convs.0.conv.weight").data, b->Delta().at("convs.0.conv.weight").data);
  std::remove(path.c_str());
  // A checkpoint of another kind is refused with its path.
  EXPECT_FALSE(b->RestoreCheckpoint("/nonexistent/x.safetensors").ok());
}

TEST_F(OneshotTrainerTest, RefusesBadInputs) {
  OneshotOptions o = Opt();
  o.batch_size = 1;
  EXPECT_EQ(OneshotTrainer::Create(models_, Target(), o).status().code(), absl::StatusCode::kInvalidArgument);
  o = Opt();
  o.batch_size = 3;  // groups of min(3, 4) = 3 fit; 6 would not (groups of 4)
  EXPECT_TRUE(OneshotTrainer::Create(models_, Target(), o).ok());
  o.batch_size = 6;
  EXPECT_EQ(OneshotTrainer::Create(models_, Target(), o).status().code(), absl::StatusCode::kInvalidArgument);
  o = Opt();
  o.w_ref.assign(kStyle + 1, 0.0f);
  auto bad = OneshotTrainer::Create(models_, Target(), o);
  EXPECT_NE(bad.status().message().find("style_dim"), std::string::npos) << bad.status();
  OneshotModels m = models_;
  m.d = TinyDiscriminator(64, kStyle, 5);
  EXPECT_EQ(OneshotTrainer::Create(m, Target(), Opt()).status().code(), absl::StatusCode::kInvalidArgument);
  m = models_;
  m.d = nullptr;
  EXPECT_EQ(OneshotTrainer::Create(m, Target(), Opt()).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(OneshotGeometryTest, CropsAndPatchMaps) {
  OneshotOptions o;
  EXPECT_EQ(EffectiveCropSize(o, 1024), 128);
  EXPECT_EQ(EffectiveCropSize(o, 256), 128);
  EXPECT_EQ(EffectiveCropSize(o, 64), 32);
  EXPECT_EQ(PatchFeatureResolution(1024), 32);
  EXPECT_EQ(PatchFeatureResolution(64), 32);
  EXPECT_EQ(PatchFeatureResolution(32), 16);
  EXPECT_NEAR(o.ema_decay, 0.997784, 1e-6);
}

}  // namespace
}  // namespace ganserve::core::adapt
