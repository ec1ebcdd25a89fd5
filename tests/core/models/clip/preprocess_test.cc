// User-image preprocessing against the official PIL + torchvision pipeline.
#include "core/models/clip/preprocess.h"

#include <gtest/gtest.h>

#include <cmath>

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

}  // namespace
}  // namespace ganserve::core::clip
