// Projection of an image the generator itself made: the loss falls and PSNR rises.
#include "core/invert/projector.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include "core/models/clip/preprocess.h"
#include "core/models/stylegan2/random_init.h"

namespace ganserve::core::invert {
namespace {

std::shared_ptr<const stylegan2::Generator> Tiny() {
  auto cfg = stylegan2::MakeConfig(32, 64, 2, 2, 16);
  auto g = stylegan2::Generator::FromTensors(ViewsOf(std::make_shared<const std::map<std::string, FloatTensor>>(
                                                 stylegan2::RandomGeneratorWeights(cfg, 9, 0.1f))),
                                             nullptr, {});
  EXPECT_TRUE(g.ok());
  return std::move(*g);
}

TEST(ProjectorTest, ConvergesOnAGeneratedImage) {
  auto gen = Tiny();
  stylegan2::GenerateParams p;
  p.latents.shape = {1, 64};
  p.latents.data = stylegan2::SeedToZ(21, 64);
  p.truncation = 0.5f;
  auto img = gen->Generate(p);
  ASSERT_TRUE(img.ok());
  auto target = FloatToRgb8(img->images, 0);
  ASSERT_TRUE(target.ok());
  ProjectorOptions o;
  o.steps = 80;
  o.seed = 3;
  auto proj = Projector::Create(gen, *target, o, nullptr);
  ASSERT_TRUE(proj.ok()) << proj.status();
  auto before = (*proj)->Result();
  ASSERT_TRUE(before.ok());
  float first_mse = 0, last_mse = 0;
  for (int i = 0; i < o.steps; ++i) {
    auto l = (*proj)->Step();
    ASSERT_TRUE(l.ok()) << l.status();
    if (i == 5) first_mse = l->at("mse");
    last_mse = l->at("mse");
  }
  auto after = (*proj)->Result();
  ASSERT_TRUE(after.ok());
  EXPECT_LT(last_mse, first_mse * 0.7f) << first_mse << " -> " << last_mse;
  EXPECT_GT(after->psnr, before->psnr + 2.0f) << before->psnr << " -> " << after->psnr;
  EXPECT_EQ(after->loss, "mse");
  EXPECT_EQ(after->wplus.shape, (std::vector<int64_t>{1, 8, 64}));
  EXPECT_EQ(after->noises.size(), 7u);

  // Saved and loaded, the inversion's w+ renders its reconstruction (with stored noise maps).
  const std::string path = ::testing::TempDir() + "/inv_" + std::to_string(::getpid()) + ".safetensors";
  ASSERT_TRUE(SaveInversion(path, *after, "tiny").ok());
  std::string model;
  auto loaded = LoadInversion(path, &model);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(model, "tiny");
  EXPECT_EQ(loaded->wplus.data, after->wplus.data);
  EXPECT_NEAR(loaded->psnr, after->psnr, 1e-3);  // stored as text with 6 digits
  // The stored w+ and noise maps render the reconstruction exactly.
  stylegan2::GenerateParams q;
  q.space = stylegan2::LatentSpace::kWPlus;
  q.latents = loaded->wplus;
  for (int i = 0; i < 7; ++i) q.noise_maps.push_back(loaded->noises.at("noise_" + std::to_string(i)));
  auto again = gen->Generate(q);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->images.data, after->reconstruction.data);
}

// The target is resized as rosinality's transforms.Resize does on a PIL image (bilinear),
// shorter side to min(resolution, 256), then centre-cropped.
TEST(ProjectorTest, TargetIsBilinearResizedAndCentreCropped) {
  auto gen = Tiny();  // 32 px
  Rgb8Image img;
  img.width = 80;
  img.height = 48;
  for (int i = 0; i < 80 * 48 * 3; ++i) img.pixels.push_back(static_cast<uint8_t>((i * 37 + i / 240 * 11) % 256));
  auto proj = Projector::Create(gen, img, ProjectorOptions{}, nullptr);
  ASSERT_TRUE(proj.ok()) << proj.status();
  FloatTensor t = (*proj)->Target();
  ASSERT_EQ(t.shape, (std::vector<int64_t>{1, 3, 32, 32}));
  Rgb8Image want = clip::ResizeAndCenterCrop(img, 32, clip::PilFilter::kBilinear);
  Rgb8Image bicubic = clip::ResizeAndCenterCrop(img, 32, clip::PilFilter::kBicubic);
  int bicubic_differs = 0;
  for (int p = 0; p < 32 * 32; ++p) {
    for (int c = 0; c < 3; ++c) {
      EXPECT_FLOAT_EQ(t.data[c * 1024 + p], want.pixels[p * 3 + c] / 127.5f - 1.0f) << p;
      bicubic_differs += bicubic.pixels[p * 3 + c] != want.pixels[p * 3 + c];
    }
  }
  EXPECT_GT(bicubic_differs, 0) << "the test image should tell the filters apart";
  // noise_regularize 0 (off) is a valid setting.
  ProjectorOptions off;
  off.noise_regularize = 0;
  EXPECT_TRUE(Projector::Create(gen, img, off, nullptr).ok());
}

TEST(ProjectorTest, RejectsBadOptions) {
  Rgb8Image img{4, 4, std::vector<uint8_t>(48, 100)};
  ProjectorOptions o;
  o.steps = 0;
  EXPECT_EQ(Projector::Create(Tiny(), img, o, nullptr).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Projector::Create(Tiny(), Rgb8Image{}, ProjectorOptions{}, nullptr).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace ganserve::core::invert
