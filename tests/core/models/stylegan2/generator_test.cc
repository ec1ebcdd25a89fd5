// Parity of the StyleGAN2 generator with the official rosinality code, on the reference
// fixtures in shared/fixtures/stylegan2 (tolerance 1e-4, as their README states).
#include "core/models/stylegan2/generator.h"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/io/npy.h"
#include "core/models/stylegan2/generator_impl.h"
#include "core/models/stylegan2/random_init.h"
#include "core/util/np_random.h"
#include "tests/testing/shared.h"
#include "tests/testing/tensor_compare.h"

namespace ganserve::core::stylegan2 {
namespace {

constexpr float kTol = 1e-4f;

using ::ganserve::testing::MaxAbsDiff;

class GeneratorParityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    shared_ = ::ganserve::testing::SharedDir();
    if (shared_.empty()) GTEST_SKIP() << "shared/ fixtures not found (set GANSERVE_SHARED_DIR)";
    dir_ = shared_ + "/fixtures/stylegan2/a1/";
    auto g = Generator::Load(shared_ + "/fixtures/stylegan2/a1_g32_sd512_zip.pt", {}, &report_);
    ASSERT_TRUE(g.ok()) << g.status();
    gen_ = std::move(*g);
  }
  FloatTensor Npy(const std::string& name) {
    auto t = ReadNpyFloat(dir_ + name);
    EXPECT_TRUE(t.ok()) << t.status();
    return t.ok() ? *t : FloatTensor{};
  }

  std::string shared_, dir_;
  LoadReport report_;
  std::unique_ptr<Generator> gen_;
};

TEST_F(GeneratorParityTest, InfersConfigFromShapes) {
  const GeneratorConfig& c = gen_->config();
  EXPECT_EQ(c.resolution, 32);
  EXPECT_EQ(c.style_dim, 512);
  EXPECT_EQ(c.n_mlp, 8);
  EXPECT_EQ(c.n_latent, 8);
  EXPECT_EQ(c.num_layers, 7);
  EXPECT_EQ(c.channels.at(4), 32);
  EXPECT_EQ(c.channels.at(32), 32);
  EXPECT_EQ(c.s_dim, 352);
  EXPECT_EQ(report_.format, "zip");
  EXPECT_EQ(report_.source_key, "g_ema");
  EXPECT_EQ(report_.mean_latent_source, "checkpoint");
  EXPECT_TRUE(report_.ignored_tensors.empty());
}

TEST_F(GeneratorParityTest, SShapeManifestMatchesReference) {
  std::ifstream in(dir_ + "s_space_manifest.json");
  ASSERT_TRUE(in);
  nlohmann::json m = nlohmann::json::parse(in);
  nlohmann::json layers = m.is_array() ? m : m["layers"];
  ASSERT_EQ(layers.size(), gen_->config().style_layers.size());
  for (size_t i = 0; i < layers.size(); ++i) {
    const StyleLayer& l = gen_->config().style_layers[i];
    EXPECT_EQ(layers[i]["latent_index"].get<int>(), l.latent_index) << i;
    EXPECT_EQ(layers[i]["offset"].get<int64_t>(), l.offset) << i;
    EXPECT_EQ(layers[i]["size"].get<int>(), l.in_channel) << i;
  }
}

TEST_F(GeneratorParityTest, MappingMatches) {
  auto w = gen_->Map(Npy("z.npy"));
  ASSERT_TRUE(w.ok()) << w.status();
  EXPECT_LE(MaxAbsDiff(*w, Npy("w.npy")), kTol);
}

TEST_F(GeneratorParityTest, MeanLatentIsCheckpointEntry) {
  EXPECT_LE(MaxAbsDiff(gen_->mean_latent(), Npy("latent_avg.npy")), 0.0f);
}

TEST_F(GeneratorParityTest, ZNoTruncation) {
  GenerateParams p;
  p.latents = Npy("z.npy");
  auto r = gen_->Generate(p);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_LE(MaxAbsDiff(r->images, Npy("img_trunc1.npy")), kTol);
}

TEST_F(GeneratorParityTest, ZTruncation07WithLatents) {
  GenerateParams p;
  p.latents = Npy("z.npy");
  p.truncation = 0.7f;
  p.return_wplus = true;
  auto r = gen_->Generate(p);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_LE(MaxAbsDiff(r->images, Npy("img_trunc07.npy")), kTol);
  EXPECT_LE(MaxAbsDiff(r->wplus, Npy("latent_trunc07.npy")), kTol);
}

TEST_F(GeneratorParityTest, WPlusInput) {
  GenerateParams p;
  p.space = LatentSpace::kWPlus;
  p.latents = Npy("wplus.npy");
  auto r = gen_->Generate(p);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_LE(MaxAbsDiff(r->images, Npy("img_wplus.npy")), kTol);
}

TEST_F(GeneratorParityTest, StyleMixing) {
  auto idx = ReadNpy(dir_ + "mix_inject_index.npy");
  ASSERT_TRUE(idx.ok());
  auto k = ToInt64Vector(*idx);
  ASSERT_TRUE(k.ok());
  GenerateParams p;
  p.latents = Npy("mix_z1.npy");
  p.mix_latents = Npy("mix_z2.npy");
  p.inject_index = static_cast<int>((*k)[0]);
  p.return_wplus = true;
  auto r = gen_->Generate(p);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_LE(MaxAbsDiff(r->images, Npy("img_mix.npy")), kTol);
  EXPECT_LE(MaxAbsDiff(r->wplus, Npy("latent_mix.npy")), kTol);
}

FloatTensor Row(const FloatTensor& t, int64_t i) {
  FloatTensor out;
  out.shape = t.shape;
  out.shape[0] = 1;
  const int64_t row = t.numel() / t.shape[0];
  out.data.assign(t.data.begin() + i * row, t.data.begin() + (i + 1) * row);
  return out;
}

TEST_F(GeneratorParityTest, SSpaceFromZAndWPlus) {
  GenerateParams p;
  p.latents = Row(Npy("z.npy"), 0);
  p.return_s = true;
  auto r = gen_->Generate(p);
  ASSERT_TRUE(r.ok()) << r.status();
  FloatTensor ref = Npy("s_space_z0.npy");
  ref.shape = {1, ref.shape[0]};
  EXPECT_LE(MaxAbsDiff(r->s, ref), kTol);

  GenerateParams q;
  q.space = LatentSpace::kWPlus;
  q.latents = Row(Npy("wplus.npy"), 0);
  q.return_s = true;
  auto r2 = gen_->Generate(q);
  ASSERT_TRUE(r2.ok()) << r2.status();
  FloatTensor ref2 = Npy("s_space_wplus0.npy");
  ref2.shape = {1, ref2.shape[0]};
  EXPECT_LE(MaxAbsDiff(r2->s, ref2), kTol);

  // Rendering from S reproduces the w+ image.
  GenerateParams s_in;
  s_in.space = LatentSpace::kS;
  s_in.latents = r2->s;
  auto r3 = gen_->Generate(s_in);
  ASSERT_TRUE(r3.ok()) << r3.status();
  EXPECT_LE(MaxAbsDiff(r3->images, Row(Npy("img_wplus.npy"), 0)), kTol);
}

TEST_F(GeneratorParityTest, RejectsWrongShapes) {
  GenerateParams p;
  p.latents.shape = {2, 511};
  p.latents.data.assign(2 * 511, 0.f);
  auto r = gen_->Generate(p);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("[N, 512]"), std::string::npos) << r.status();
}

TEST_F(GeneratorParityTest, RandomNoiseIsSeeded) {
  GenerateParams p;
  p.latents = Row(Npy("z.npy"), 0);
  p.noise = NoiseMode::kRandom;
  p.noise_seeds = {7};
  auto a = gen_->Generate(p);
  auto b = gen_->Generate(p);
  p.noise_seeds = {8};
  auto c = gen_->Generate(p);
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  EXPECT_EQ(MaxAbsDiff(a->images, b->images), 0.0f);
  EXPECT_GT(MaxAbsDiff(a->images, c->images), 1e-3f);
}

// Both modulated-convolution formulations reproduce the official images.
TEST_F(GeneratorParityTest, BothModConvFormsMatch) {
  for (ModConvMode mode : {ModConvMode::kGrouped, ModConvMode::kScaled}) {
    LoadOptions opt;
    opt.modconv = mode;
    auto g = Generator::Load(shared_ + "/fixtures/stylegan2/a1_g32_sd512_zip.pt", opt);
    ASSERT_TRUE(g.ok());
    GenerateParams p;
    p.latents = Npy("mix_z1.npy");
    p.mix_latents = Npy("mix_z2.npy");
    p.inject_index = 3;
    auto r = (*g)->Generate(p);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_LE(MaxAbsDiff(r->images, Npy("img_mix.npy")), kTol) << static_cast<int>(mode);
  }
}

TEST(SeedToZTest, MatchesNumpyRandomState) {
  // np.random.RandomState(42).randn(4) and RandomState(0).randn(3).
  auto z = SeedToZ(42, 4);
  EXPECT_NEAR(z[0], 0.49671415f, 1e-7);
  EXPECT_NEAR(z[1], -0.1382643f, 1e-7);
  EXPECT_NEAR(z[2], 0.64768854f, 1e-7);
  EXPECT_NEAR(z[3], 1.52302986f, 1e-6);
  auto z0 = SeedToZ(0, 3);
  EXPECT_NEAR(z0[0], 1.76405235f, 1e-6);
  EXPECT_NEAR(z0[2], 0.97873798f, 1e-7);
}

// A small random generator (64 px, style 64, widths capped at 32) and the same weights
// cut down to a 32 px generator.
std::unique_ptr<Generator> RandomSmallGenerator(int resolution, uint32_t seed) {
  const GeneratorConfig full = MakeConfig(64, 64, 2, 1, 32);
  auto all = RandomGeneratorWeights(full, seed, 0.1f);
  auto kept = std::make_shared<std::map<std::string, FloatTensor>>();
  for (const auto& [name, shape] : ExpectedGeneratorTensors(MakeConfig(resolution, 64, 2, 1, 32))) {
    EXPECT_EQ(all.at(name).shape, shape) << name;
    (*kept)[name] = all.at(name);
  }
  auto g = Generator::FromTensors(ViewsOf(kept), nullptr, {});
  EXPECT_TRUE(g.ok()) << g.status();
  return g.ok() ? std::move(*g) : nullptr;
}

GenerateParams ZParams(int n, int style_dim, uint32_t seed) {
  GenerateParams p;
  p.latents.shape = {n, style_dim};
  NumpyRandomState rng(seed);
  p.latents.data = rng.Randn(static_cast<size_t>(n * style_dim));
  return p;
}

TEST(GeneratorPartialTest, PartialImageIsWhatTheSmallerGeneratorRenders) {
  auto g64 = RandomSmallGenerator(64, 3);
  auto g32 = RandomSmallGenerator(32, 3);
  ASSERT_NE(g64, nullptr);
  ASSERT_NE(g32, nullptr);
  GenerateParams p = ZParams(3, 64, 1);
  auto small = g32->Generate(p);
  auto full = g64->Generate(p);
  p.max_resolution = 32;
  auto partial = g64->Generate(p);
  ASSERT_TRUE(small.ok() && full.ok() && partial.ok()) << partial.status();
  EXPECT_EQ(partial->images.shape, (std::vector<int64_t>{3, 3, 32, 32}));
  // The same layers on the same inputs.
  EXPECT_LE(MaxAbsDiff(partial->images, small->images), 1e-5f);
  p.max_resolution = 64;
  auto explicit_full = g64->Generate(p);
  ASSERT_TRUE(explicit_full.ok());
  EXPECT_EQ(explicit_full->images.data, full->images.data);
  for (int bad : {2, 48, 128, -4}) {
    p.max_resolution = bad;
    auto r = g64->Generate(p);
    EXPECT_TRUE(absl::IsInvalidArgument(r.status())) << bad;
    EXPECT_NE(r.status().message().find("max_resolution must be a power of two in [4, 64]"), std::string::npos);
  }
}

// OneshotCLIP's sampling: rows from mean_rows_from on take the mean latent, the rest
// the (truncated) w; 0 and n_latent change nothing.
TEST(GeneratorMeanRowsTest, RowsFromTheIndexTakeTheMeanLatent) {
  auto g = RandomSmallGenerator(64, 5);
  ASSERT_NE(g, nullptr);
  const int n_latent = g->config().n_latent, sd = g->config().style_dim;
  GenerateParams p = ZParams(2, sd, 6);
  p.truncation = 0.7f;
  p.return_wplus = true;
  auto plain = g->Generate(p);
  p.mean_rows_from = 4;
  auto mixed = g->Generate(p);
  ASSERT_TRUE(plain.ok() && mixed.ok()) << mixed.status();
  const FloatTensor& mean = g->mean_latent();
  for (int64_t i = 0; i < 2; ++i) {
    for (int r = 0; r < n_latent; ++r) {
      for (int k = 0; k < sd; ++k) {
        const size_t at = static_cast<size_t>((i * n_latent + r) * sd + k);
        const float want = r < 4 ? plain->wplus.data[at] : mean.data[static_cast<size_t>(k)];
        ASSERT_EQ(mixed->wplus.data[at], want) << "image " << i << " row " << r;
      }
    }
  }
  EXPECT_GT(MaxAbsDiff(mixed->images, plain->images), 1e-3f);
  p.mean_rows_from = n_latent;
  auto off = g->Generate(p);
  ASSERT_TRUE(off.ok());
  EXPECT_EQ(off->images.data, plain->images.data);
  p.mean_rows_from = -1;
  EXPECT_TRUE(absl::IsInvalidArgument(g->Generate(p).status()));
}

TEST(GeneratorPartialTest, PrefixGroupsRenderAsTheUngroupedBatch) {
  auto g = RandomSmallGenerator(64, 4);
  ASSERT_NE(g, nullptr);
  const GeneratorConfig& c = g->config();
  GenerateParams z = ZParams(3, 64, 2);
  z.return_s = true;
  z.render_images = false;
  auto base = g->Generate(z);
  ASSERT_TRUE(base.ok());
  // Pairs of rows that differ in one channel of S layer 5 (the first conv at 16 px).
  const int layer = 5;
  const int64_t channel = c.style_layers[layer].offset + 7;
  GenerateParams p;
  p.space = LatentSpace::kS;
  p.latents.shape = {6, c.s_dim};
  for (int i = 0; i < 3; ++i) {
    for (float push : {-3.0f, 3.0f}) {
      const size_t at = p.latents.data.size();
      p.latents.data.insert(p.latents.data.end(), base->s.data.begin() + i * c.s_dim,
                            base->s.data.begin() + (i + 1) * c.s_dim);
      p.latents.data[at + channel] += push;
    }
  }
  auto plain = g->Generate(p);
  ASSERT_TRUE(plain.ok());
  for (int shared : {1, layer, static_cast<int>(c.style_layers.size())}) {
    GenerateParams q = p;
    q.prefix_group = 2;
    q.prefix_layers = shared;
    auto grouped = g->Generate(q);
    if (shared > layer) {
      // The pair differs in layer 5: sharing it is refused.
      EXPECT_TRUE(absl::IsInvalidArgument(grouped.status())) << shared;
      EXPECT_NE(grouped.status().message().find("differ in S layer 5"), std::string::npos) << grouped.status();
      continue;
    }
    ASSERT_TRUE(grouped.ok()) << grouped.status();
    // Batched kernels round differently for 3 and 6 rows: float tolerance.
    EXPECT_LE(MaxAbsDiff(grouped->images, plain->images), 1e-4f) << shared;
  }
  // Per-row noise must be shared too.
  GenerateParams r = p;
  r.prefix_group = 2;
  r.prefix_layers = layer;
  r.noise = NoiseMode::kRandom;
  r.noise_seeds = {1, 1, 2, 2, 3, 3};
  EXPECT_TRUE(g->Generate(r).ok());
  r.noise_seeds = {1, 2, 3, 4, 5, 6};
  auto differ = g->Generate(r);
  EXPECT_TRUE(absl::IsInvalidArgument(differ.status()));
  EXPECT_NE(differ.status().message().find("noise map"), std::string::npos) << differ.status();
  r.prefix_group = 4;  // does not divide 6
  EXPECT_TRUE(absl::IsInvalidArgument(g->Generate(r).status()));
}

// The CPU form of the upsampling convolution (four phase convolutions) against LibTorch's
// transposed convolution: values and the gradients of input and weight, for one and two
// groups and a non-square input. Float sums in another order: 1e-4 relative to the
// largest value.
TEST(UpConvTest, PhasesMatchTheTransposedConvolution) {
  at::manual_seed(3);
  for (int64_t groups : {1, 2}) {
    const int64_t in = 5, out = 4, h = 6, w = 9;
    const at::Tensor x0 = at::randn({1, groups * in, h, w});
    const at::Tensor w0 = at::randn({groups * out, in, 3, 3});
    const at::Tensor kernel = at::randn({4, 4});
    const at::Tensor blur = kernel.view({1, 1, 4, 4}).repeat({out, 1, 1, 1});
    const at::Tensor grad = at::randn({groups, out, 2 * h, 2 * w});
    std::vector<at::Tensor> values, dx, dw;
    for (bool phases : {true, false}) {
      at::Tensor x = x0.clone().requires_grad_(true);
      at::Tensor wt = w0.clone().requires_grad_(true);
      at::Tensor y = phases ? UpConvPhases(x, wt, blur, groups) : UpConvTransposed(x, wt, blur, groups);
      ASSERT_EQ(y.sizes(), grad.sizes());
      (y * grad).sum().backward();
      values.push_back(y.detach());
      dx.push_back(x.grad());
      dw.push_back(wt.grad());
    }
    for (const auto& pair : {std::make_pair(values, "values"), {dx, "input gradient"}, {dw, "weight gradient"}}) {
      const auto& [t, what] = pair;
      const double scale = t[1].abs().max().item<double>();
      EXPECT_GT(scale, 0.1) << what;
      EXPECT_LE((t[0] - t[1]).abs().max().item<double>(), 1e-4 * scale) << what << ", groups " << groups;
    }
  }
}

}  // namespace
}  // namespace ganserve::core::stylegan2
