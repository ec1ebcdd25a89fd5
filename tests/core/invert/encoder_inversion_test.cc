// Inversion by encoder: an encoder that answers a generated image's w+ reproduces the
// image (the plumbing around the encoder: preprocessing, latent_avg, stored noise maps,
// measures, refinement start); refinement improves a random encoder's inversion; resume.
#include "core/invert/encoder_inversion.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>

#include "core/models/stylegan2/random_init.h"
#include "tests/testing/tiny_models.h"

namespace ganserve::core::invert {
namespace {

constexpr int kRes = 32;  // 8 w+ rows: every FPN path of the encoder runs

struct Generated {
  FloatTensor wplus;  // [1, 8, 512]
  Rgb8Image image;
};

Generated Generate(const stylegan2::Generator& g, uint64_t seed) {
  stylegan2::GenerateParams p;
  p.latents.shape = {1, 512};
  p.latents.data = stylegan2::SeedToZ(seed, 512);
  p.truncation = 0.7f;
  p.return_wplus = true;
  auto r = g.Generate(p);
  EXPECT_TRUE(r.ok()) << r.status();
  auto img = FloatToRgb8(r->images, 0);
  EXPECT_TRUE(img.ok());
  return {r->wplus, *img};
}

class EncoderInversionTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { gen_ = new auto(testing::TinyGenerator(kRes, 512, 5)); }
  static inline std::shared_ptr<const stylegan2::Generator>* gen_ = nullptr;
};

TEST_F(EncoderInversionTest, AnEncoderThatAnswersTheLatentReproducesTheImage) {
  const Generated want = Generate(**gen_, 11);
  ProjectorOptions none;
  none.steps = 0;
  ASSERT_EQ(want.wplus.shape, (std::vector<int64_t>{1, 8, 512}));
  auto inv = EncoderInverter::Create(testing::EncoderOf(testing::OracleEncoderWeights(want.wplus, 3)), *gen_,
                                     want.image, none, nullptr);
  ASSERT_TRUE(inv.ok()) << inv.status();
  EXPECT_EQ((*inv)->total_steps(), 1);
  EXPECT_EQ((*inv)->phase(), "encode");
  EXPECT_FALSE((*inv)->Current().ok());
  auto terms = (*inv)->Step();
  ASSERT_TRUE(terms.ok()) << terms.status();
  EXPECT_EQ((*inv)->step(), 1);
  auto r = (*inv)->Result();
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->loss, "encoder");
  ASSERT_EQ(r->wplus.shape, want.wplus.shape);
  for (size_t i = 0; i < want.wplus.data.size(); ++i) ASSERT_NEAR(r->wplus.data[i], want.wplus.data[i], 1e-4) << i;
  // Only the target's 8-bit rounding (<= 0.5 / 255 per pixel) separates the two: PSNR
  // of uniform rounding is ~59 dB.
  EXPECT_GT(r->psnr, 50.0f);
  std::printf("encoder inversion of a generated image: PSNR %.1f dB\n", r->psnr);
  EXPECT_FLOAT_EQ(terms->at("psnr"), r->psnr);
  EXPECT_EQ(r->noises.size(), 7u);
}

TEST_F(EncoderInversionTest, RefinementImprovesARandomEncodersInversion) {
  const Generated want = Generate(**gen_, 12);
  const FloatTensor elsewhere = Generate(**gen_, 99).wplus;  // the encoder answers another latent
  ProjectorOptions refine;
  refine.steps = 40;
  refine.seed = 4;
  auto inv = EncoderInverter::Create(testing::EncoderOf(testing::OracleEncoderWeights(elsewhere, 3)), *gen_, want.image,
                                     refine, nullptr);
  ASSERT_TRUE(inv.ok()) << inv.status();
  EXPECT_EQ((*inv)->total_steps(), 41);
  auto encoded = (*inv)->Step();
  ASSERT_TRUE(encoded.ok()) << encoded.status();
  EXPECT_EQ((*inv)->phase(), "refine");
  while ((*inv)->step() < (*inv)->total_steps()) ASSERT_TRUE((*inv)->Step().ok());
  auto r = (*inv)->Result();
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->loss, "encoder+mse");
  std::printf("refinement: PSNR %.1f -> %.1f dB\n", encoded->at("psnr"), r->psnr);
  EXPECT_GT(r->psnr, encoded->at("psnr") + 1.0f) << encoded->at("psnr") << " -> " << r->psnr;
}

TEST_F(EncoderInversionTest, ResumesTheRefinementFromACheckpoint) {
  const Generated want = Generate(**gen_, 13);
  auto encoder = testing::EncoderOf(testing::OracleEncoderWeights(Generate(**gen_, 98).wplus, 3));
  ProjectorOptions refine;
  refine.steps = 6;
  auto a = EncoderInverter::Create(encoder, *gen_, want.image, refine, nullptr);
  ASSERT_TRUE(a.ok());
  EXPECT_FALSE((*a)->SaveCheckpoint(::testing::TempDir() + "/none.safetensors").ok());
  for (int i = 0; i < 4; ++i) ASSERT_TRUE((*a)->Step().ok());
  const std::string path = ::testing::TempDir() + "/encoder_inversion_ckpt.safetensors";
  ASSERT_TRUE((*a)->SaveCheckpoint(path).ok());
  auto b = EncoderInverter::Create(encoder, *gen_, want.image, refine, nullptr);
  ASSERT_TRUE(b.ok());
  ASSERT_TRUE((*b)->RestoreCheckpoint(path).ok());
  EXPECT_EQ((*b)->step(), 4);
  auto wa = (*a)->Result(), wb = (*b)->Result();
  ASSERT_TRUE(wa.ok() && wb.ok());
  EXPECT_EQ(wa->wplus.data, wb->wplus.data);
  while ((*b)->step() < (*b)->total_steps()) ASSERT_TRUE((*b)->Step().ok());
  EXPECT_FALSE((*b)->Step().ok());
}

TEST_F(EncoderInversionTest, RefusesAnEncoderForAnotherGenerator) {
  auto small = testing::TinyGenerator(16, 512, 5);  // 6 w+ rows
  const Generated want = Generate(**gen_, 14);
  auto inv = EncoderInverter::Create(testing::EncoderOf(testing::OracleEncoderWeights(want.wplus, 3)), small,
                                     want.image, {}, nullptr);
  ASSERT_FALSE(inv.ok());
  EXPECT_EQ(inv.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(inv.status().message().find("[8, 512]"), std::string::npos) << inv.status();
}

}  // namespace
}  // namespace ganserve::core::invert
