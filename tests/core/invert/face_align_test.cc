// FFHQ face alignment against the official encoder4editing utils/alignment.py
// (align_face): the photos are reference.json's integer formula, the landmarks its 68
// points, the official outputs its PNGs (tests/fixtures/face_align/make_fixture.py).
// Also the 5-point form and the refusals.
#include "core/invert/face_align.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "core/io/image_codec.h"
#include "core/util/file_util.h"

namespace ganserve::core::invert {
namespace {

const std::string kDir = std::string(GANSERVE_SOURCE_DIR) + "/tests/fixtures/face_align";

int64_t FloorDiv(int64_t a, int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }
int64_t FloorMod(int64_t a, int64_t b) { return a - FloorDiv(a, b) * b; }

// reference.json's photo_formula (Python floor division and modulo).
Rgb8Image Photo(int w, int h) {
  Rgb8Image img;
  img.width = w;
  img.height = h;
  img.pixels.resize(static_cast<size_t>(w) * h * 3);
  for (int64_t y = 0; y < h; ++y) {
    for (int64_t x = 0; x < w; ++x) {
      uint8_t* p = img.pixels.data() + (y * w + x) * 3;
      p[0] = static_cast<uint8_t>(FloorMod(x * 3 + y * 2 + (FloorDiv(x, 40) * FloorDiv(y, 30)) * 9, 256));
      p[1] = static_cast<uint8_t>(FloorMod(128 + FloorDiv((x - w / 2) * (y - h / 2), 211), 256));
      p[2] = static_cast<uint8_t>(FloorMod(FloorDiv(x, 16) + FloorDiv(y, 16), 2) * 150 +
                                  FloorMod(FloorDiv(x, 4) * FloorDiv(y, 4), 23) * 4);
    }
  }
  return img;
}

std::vector<Point> Landmarks(const nlohmann::json& c) {
  std::vector<Point> out;
  for (const auto& p : c["landmarks"]) out.push_back({p[0].get<double>(), p[1].get<double>()});
  return out;
}

class FaceAlignReferenceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string path = kDir + "/reference.json";
    if (!std::filesystem::exists(path)) GTEST_SKIP() << "tests/fixtures/face_align/reference.json not found";
    std::ifstream in(path);
    ref_ = nlohmann::json::parse(in);
  }
  nlohmann::json ref_;
};

TEST_F(FaceAlignReferenceTest, MatchesTheOfficialAlignFace) {
  // The formula is the fixture's: check it reproduces a known property before comparing.
  ASSERT_NE(ref_["photo_formula"].get<std::string>().find("211"), std::string::npos);
  for (const auto& c : ref_["cases"]) {
    const std::string name = c["name"];
    SCOPED_TRACE(name);
    const Rgb8Image photo = Photo(c["photo_width"], c["photo_height"]);
    auto aligned = AlignFace(photo, Landmarks(c), FaceAlignOptions{});
    ASSERT_TRUE(aligned.ok()) << aligned.status();
    // The oriented square, exactly as the official arithmetic places it.
    for (int i = 0; i < 4; ++i) {
      EXPECT_NEAR(aligned->quad[i].x, c["quad"][i][0].get<double>(), 1e-9);
      EXPECT_NEAR(aligned->quad[i].y, c["quad"][i][1].get<double>(), 1e-9);
    }
    auto bytes = ReadFile(kDir + "/" + c["output"].get<std::string>());
    ASSERT_TRUE(bytes.ok());
    auto want = DecodeImage(*bytes);
    ASSERT_TRUE(want.ok()) << want.status();
    ASSERT_EQ(aligned->image.width, want->width);
    ASSERT_EQ(aligned->image.height, want->height);
    int max_diff = 0;
    int64_t differing = 0;
    for (size_t i = 0; i < want->pixels.size(); ++i) {
      const int d = std::abs(static_cast<int>(aligned->image.pixels[i]) - static_cast<int>(want->pixels[i]));
      max_diff = std::max(max_diff, d);
      differing += d != 0;
    }
    std::printf("%s: %lld of %zu values differ, by at most %d\n", name.c_str(), static_cast<long long>(differing),
                want->pixels.size(), max_diff);
    // Pillow's resampling and the transform are reproduced operation for operation; the
    // padding blends in float32 like NumPy, whose rounding may differ by one level.
    EXPECT_LE(max_diff, 1);
    EXPECT_LE(differing, static_cast<int64_t>(want->pixels.size() / 100));
  }
}

TEST_F(FaceAlignReferenceTest, FivePointsGiveTheSameCrop) {
  const auto& c = ref_["cases"][3];
  const std::vector<Point> lm = Landmarks(c);
  auto mean = [&](size_t b, size_t e) {
    Point p;
    for (size_t i = b; i < e; ++i) {
      p.x += lm[i].x / static_cast<double>(e - b);
      p.y += lm[i].y / static_cast<double>(e - b);
    }
    return p;
  };
  const Rgb8Image photo = Photo(c["photo_width"], c["photo_height"]);
  auto full = AlignFace(photo, lm);
  auto five = AlignFace(photo, {mean(36, 42), mean(42, 48), lm[30], lm[48], lm[54]});
  ASSERT_TRUE(full.ok() && five.ok());
  for (int i = 0; i < 4; ++i) {
    EXPECT_NEAR(five->quad[i].x, full->quad[i].x, 1e-6);
    EXPECT_NEAR(five->quad[i].y, full->quad[i].y, 1e-6);
  }
  int max_diff = 0;
  for (size_t i = 0; i < full->image.pixels.size(); ++i) {
    max_diff =
        std::max(max_diff, std::abs(static_cast<int>(full->image.pixels[i]) - static_cast<int>(five->image.pixels[i])));
  }
  EXPECT_LE(max_diff, 1);
}

TEST(FaceAlignTest, RefusesBadLandmarksAndSizes) {
  const Rgb8Image photo = Photo(64, 64);
  EXPECT_EQ(AlignFace(photo, std::vector<Point>(7)).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(AlignFace(photo, std::vector<Point>(7)).status().message().find("68"), std::string::npos);
  // Every point on one spot: no face.
  EXPECT_EQ(AlignFace(photo, std::vector<Point>(5, Point{10, 10})).status().code(), absl::StatusCode::kInvalidArgument);
  std::vector<Point> nan(5, Point{10, 10});
  nan[0].x = std::nan("");
  EXPECT_EQ(AlignFace(photo, nan).status().code(), absl::StatusCode::kInvalidArgument);
  // A face far outside the photo.
  EXPECT_EQ(AlignFace(photo, {{5000, 5000}, {5020, 5000}, {5010, 5010}, {5002, 5020}, {5018, 5020}}).status().code(),
            absl::StatusCode::kInvalidArgument);
  FaceAlignOptions o;
  o.output_size = 2;
  EXPECT_FALSE(AlignFace(photo, {{20, 20}, {40, 20}, {30, 30}, {22, 40}, {38, 40}}, o).ok());
  // A small face in a small photo aligns (padding on every side).
  auto ok = AlignFace(photo, {{26, 28}, {38, 28}, {32, 34}, {27, 40}, {37, 40}});
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->image.width, 256);
}

}  // namespace
}  // namespace ganserve::core::invert
