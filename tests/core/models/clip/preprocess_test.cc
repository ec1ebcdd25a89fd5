// User-image preprocessing against the official PIL + torchvision pipeline.
#include "core/models/clip/preprocess.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "core/io/npy.h"
#include "core/util/file_util.h"
#include "tests/testing/shared.h"

namespace ganserve::core::clip {
namespace {

TEST(PreprocessTest, MatchesPilResizeCropExactlyAndNormalisation) {
  GANSERVE_REQUIRE_SHARED(shared);
  for (const std::string name : {"img_300x200", "img_150x257"}) {
    auto png = ReadFile(shared + "/fixtures/clip/" + name + ".png");
    ASSERT_TRUE(png.ok());
    auto img = DecodeImage(*png);
    ASSERT_TRUE(img.ok()) << img.status();
    Rgb8Image crop = ResizeAndCenterCrop(*img, 224);
    auto want = ReadNpy(shared + "/fixtures/clip/refs/" + name + "_resized_cropped_uint8.npy");
    ASSERT_TRUE(want.ok());
    ASSERT_EQ(want->nbytes, crop.pixels.size());
    int differing = 0, max_diff = 0;
    for (size_t i = 0; i < crop.pixels.size(); ++i) {
      int d = std::abs(static_cast<int>(crop.pixels[i]) - static_cast<int>(want->data[i]));
      differing += d != 0;
      max_diff = std::max(max_diff, d);
    }
    EXPECT_EQ(differing, 0) << name << ": max difference " << max_diff;

    FloatTensor pre = PreprocessForClip(*img, 224);
    auto ref = ReadNpyFloat(shared + "/fixtures/clip/refs/" + name + "_preprocessed.npy");
    ASSERT_TRUE(ref.ok());
    ASSERT_EQ(pre.shape, ref->shape);
    float m = 0;
    for (size_t i = 0; i < pre.data.size(); ++i) m = std::max(m, std::fabs(pre.data[i] - ref->data[i]));
    EXPECT_LE(m, 1e-6f) << name;
  }
}

TEST(PreprocessTest, IdentitySizeIsUntouched) {
  Rgb8Image img;
  img.width = img.height = 4;
  for (int i = 0; i < 48; ++i) img.pixels.push_back(static_cast<uint8_t>(i * 5));
  Rgb8Image same = PilResizeBicubic(img, 4, 4);
  EXPECT_EQ(same.pixels, img.pixels);
}

// Pillow's BILINEAR (torchvision Resize's default on PIL images, which the projector's
// target transform uses), on a 11x7 image scaled to 6x4. Reference values:
// tests/fixtures/pil_bilinear.py under Pillow 9.4.0.
TEST(PreprocessTest, BilinearMatchesPillow) {
  Rgb8Image img;
  img.width = 11;
  img.height = 7;
  img.pixels = {172, 47,  117, 192, 67,  251, 195, 103, 9,   211, 21,  242, 36,  87,  70,  216, 88,  140, 58,  193,
                230, 39,  87,  174, 88,  81,  165, 25,  77,  72,  9,   148, 115, 208, 243, 197, 254, 79,  175, 192,
                82,  99,  216, 177, 243, 29,  147, 147, 142, 167, 32,  193, 9,   185, 127, 32,  31,  202, 244, 151,
                163, 254, 203, 114, 183, 28,  34,  128, 128, 164, 53,  133, 38,  232, 244, 17,  79,  132, 105, 42,
                186, 31,  120, 1,   65,  231, 169, 57,  35,  102, 119, 11,  174, 82,  91,  128, 142, 99,  53,  140,
                121, 170, 84,  203, 68,  6,   196, 47,  127, 244, 131, 204, 100, 180, 232, 78,  143, 148, 227, 186,
                23,  207, 141, 117, 85,  48,  49,  69,  169, 163, 192, 95,  197, 94,  0,   113, 178, 36,  162, 48,
                93,  131, 98,  42,  205, 112, 231, 149, 201, 127, 0,   138, 114, 43,  186, 127, 23,  187, 130, 121,
                98,  62,  163, 222, 123, 195, 82,  174, 227, 148, 209, 50,  155, 14,  41,  58,  193, 36,  10,  86,
                43,  104, 11,  2,   51,  80,  32,  182, 128, 38,  19,  174, 42,  115, 184, 188, 232, 77,  30,  24,
                125, 2,   3,   94,  226, 107, 13,  112, 40,  72,  19,  95,  72,  154, 194, 248, 180, 67,  236, 61,
                14,  96,  4,   195, 237, 139, 252, 86,  205, 121, 109};
  const std::vector<uint8_t> want = {197, 105, 170, 194, 92,  145, 110, 110, 131, 124, 106, 154, 109, 120, 139,
                                     79,  157, 106, 121, 132, 141, 88,  158, 152, 109, 104, 137, 101, 145, 125,
                                     103, 89,  127, 119, 126, 107, 151, 135, 79,  108, 129, 81,  153, 114, 147,
                                     70,  156, 123, 52,  141, 121, 123, 156, 111, 110, 68,  130, 116, 90,  75,
                                     65,  83,  108, 88,  95,  146, 44,  122, 160, 138, 174, 118};
  Rgb8Image down = PilResize(img, 6, 4, PilFilter::kBilinear);
  ASSERT_EQ(down.width, 6);
  ASSERT_EQ(down.height, 4);
  EXPECT_EQ(down.pixels, want);
  // Bicubic gives other pixels: the filter matters.
  EXPECT_NE(PilResizeBicubic(img, 6, 4).pixels, want);
  // Resize(4) + CenterCrop(4) = the 6x4 image cropped at x = 1.
  Rgb8Image crop = ResizeAndCenterCrop(img, 4, PilFilter::kBilinear);
  ASSERT_EQ(crop.width, 4);
  for (int y = 0; y < 4; ++y) {
    for (int x = 0; x < 4 * 3; ++x) EXPECT_EQ(crop.pixels[y * 12 + x], want[y * 18 + 3 + x]) << y << "," << x;
  }
}

}  // namespace
}  // namespace ganserve::core::clip
