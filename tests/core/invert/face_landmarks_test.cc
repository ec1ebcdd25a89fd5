// Face detection and landmarks (dlib) on a real photo: scikit-image's astronaut.png
// (tests/fixtures/face_photo.sh) with Debian's shape_predictor_68_face_landmarks.dat.
#include "core/invert/face_landmarks.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>

#include "core/invert/face_align.h"
#include "core/io/image_codec.h"
#include "core/models/clip/preprocess.h"
#include "core/util/file_util.h"

namespace ganserve::core::invert {
namespace {

constexpr char kDebianPredictor[] = "/usr/share/dlib/shape_predictor_68_face_landmarks.dat";

class FaceLandmarksTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!std::filesystem::exists(kDebianPredictor)) return;
    auto loaded = FaceLandmarker::Load(kDebianPredictor);
    ASSERT_TRUE(loaded.ok()) << loaded.status();
    landmarker_ = new std::shared_ptr<const FaceLandmarker>(*loaded);
    auto bytes = ReadFile(std::string(GANSERVE_BINARY_DIR) + "/test_fixtures/face/astronaut.png");
    if (!bytes.ok()) return;
    auto photo = DecodeImage(*bytes);
    ASSERT_TRUE(photo.ok()) << photo.status();
    photo_ = new Rgb8Image(*std::move(photo));
  }
  static void TearDownTestSuite() {
    delete landmarker_;
    delete photo_;
    landmarker_ = nullptr;
    photo_ = nullptr;
  }
  void SetUp() override {
    if (landmarker_ == nullptr) GTEST_SKIP() << kDebianPredictor << " is missing (Debian's libdlib-data)";
    if (photo_ == nullptr) GTEST_SKIP() << "no face photo (tests/fixtures/face_photo.sh could not get astronaut.png)";
  }
  static const FaceLandmarker& landmarker() { return **landmarker_; }
  static const Rgb8Image& photo() { return *photo_; }

  static std::shared_ptr<const FaceLandmarker>* landmarker_;
  static Rgb8Image* photo_;
};
std::shared_ptr<const FaceLandmarker>* FaceLandmarksTest::landmarker_ = nullptr;
Rgb8Image* FaceLandmarksTest::photo_ = nullptr;

Point Centre(const std::vector<Point>& p, size_t begin, size_t end) {
  Point c;
  for (size_t i = begin; i < end; ++i) {
    c.x += p[i].x / static_cast<double>(end - begin);
    c.y += p[i].y / static_cast<double>(end - begin);
  }
  return c;
}

// Copies `in` into `canvas` with its top-left corner at (x0, y0).
void Paste(const Rgb8Image& in, int x0, int y0, Rgb8Image* canvas) {
  for (int y = 0; y < in.height; ++y) {
    std::copy_n(in.pixels.data() + static_cast<size_t>(y) * in.width * 3, static_cast<size_t>(in.width) * 3,
                canvas->pixels.data() + (static_cast<size_t>(y + y0) * canvas->width + x0) * 3);
  }
}

Rgb8Image Flat(int width, int height, uint8_t value) {
  Rgb8Image img;
  img.width = width;
  img.height = height;
  img.pixels.assign(static_cast<size_t>(width) * height * 3, value);
  return img;
}

double MaxDistance(const std::vector<Point>& a, const std::vector<Point>& b, double scale, Point offset) {
  double d = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    d = std::max(d, std::hypot(a[i].x - (b[i].x * scale + offset.x), a[i].y - (b[i].y * scale + offset.y)));
  }
  return d;
}

// Her face, with the 68 points in iBUG order: the eyes (36-41 her right, 42-47 her left)
// level and apart, the nose tip (30) between them and the mouth (48-67) below, every
// point inside the photo. dlib's detector (the photo upsampled once, as e4e runs it)
// also reports the round mission patch on her suit, a box of nearly the same size after
// the face: the official "last face" rule would align the patch; the largest box is the
// face.
TEST_F(FaceLandmarksTest, FindsTheAstronautsFaceAndItsLandmarks) {
  const std::vector<DetectedFace> faces = landmarker().DetectAll(photo());
  ASSERT_GE(faces.size(), 1u);
  auto largest = landmarker().Largest(photo());
  ASSERT_TRUE(largest.ok()) << largest.status();
  const DetectedFace& f = *largest;
  ASSERT_EQ(f.landmarks.size(), 68u);
  // Where her face is in the 512 x 512 photo (x 175-265, y 76-166 as dlib 19.24 boxes it).
  EXPECT_NEAR(f.left, 175, 8);
  EXPECT_NEAR(f.top, 76, 8);
  EXPECT_NEAR(f.right, 265, 8);
  EXPECT_NEAR(f.bottom, 166, 8);
  const Point right_eye = Centre(f.landmarks, 36, 42), left_eye = Centre(f.landmarks, 42, 48);
  const Point nose = f.landmarks[30], mouth = Centre(f.landmarks, 48, 68);
  EXPECT_LT(right_eye.x + 20, left_eye.x);
  EXPECT_LT(std::fabs(right_eye.y - left_eye.y), 15);
  EXPECT_GT(nose.x, right_eye.x);
  EXPECT_LT(nose.x, left_eye.x);
  EXPECT_GT(nose.y, std::max(right_eye.y, left_eye.y));
  EXPECT_GT(mouth.y, nose.y);
  for (const Point& p : f.landmarks) {
    EXPECT_GE(p.x, 0);
    EXPECT_GE(p.y, 0);
    EXPECT_LT(p.x, photo().width);
    EXPECT_LT(p.y, photo().height);
  }
  // dlib's points are whole pixels.
  for (const Point& p : f.landmarks) EXPECT_EQ(p.x, std::round(p.x));
  // The FFHQ crop from them is a face-sized square around the eyes and mouth.
  auto square = FaceQuad(f.landmarks);
  ASSERT_TRUE(square.ok()) << square.status();
  EXPECT_GT(square->qsize, 0.8 * static_cast<double>(f.right - f.left));
  EXPECT_LT(square->qsize, 3.0 * static_cast<double>(f.right - f.left));
}

// The FFHQ crop from the points it finds puts the face upright in the middle: found again
// in the 256 x 256 aligned image, the eyes are level, centred, and at most a quarter of
// the side apart (the crop is 4 eye distances wide, or wider for a long face).
TEST_F(FaceLandmarksTest, TheAlignedCropHoldsTheFaceUpright) {
  auto face = landmarker().Largest(photo());
  ASSERT_TRUE(face.ok()) << face.status();
  auto aligned = AlignFace(photo(), face->landmarks);
  ASSERT_TRUE(aligned.ok()) << aligned.status();
  ASSERT_EQ(aligned->image.width, 256);
  auto again = landmarker().Largest(aligned->image);
  ASSERT_TRUE(again.ok()) << again.status();
  const Point right_eye = Centre(again->landmarks, 36, 42), left_eye = Centre(again->landmarks, 42, 48);
  const Point mouth = Centre(again->landmarks, 48, 68);
  EXPECT_LT(std::fabs(right_eye.y - left_eye.y), 3.0);
  EXPECT_NEAR((right_eye.x + left_eye.x) / 2, 128, 6);
  EXPECT_NEAR(mouth.x, 128, 8);
  const double eyes = left_eye.x - right_eye.x;
  EXPECT_GT(eyes, 40);
  EXPECT_LT(eyes, 68);
}

// Of two faces, the larger one: the photo beside a half-size copy of itself. Its points
// are the single photo's, shifted; the small copy's are found too (the detector scans the
// canvas upsampled once, as e4e's get_landmark does).
TEST_F(FaceLandmarksTest, KeepsTheLargestFace) {
  const DetectedFace alone = landmarker().DetectAll(photo()).at(0);
  const Rgb8Image half = clip::PilResize(photo(), photo().width / 2, photo().height / 2, clip::PilFilter::kLanczos);
  Rgb8Image canvas = Flat(photo().width + half.width + 40, photo().height, 128);
  Paste(half, 0, 100, &canvas);
  Paste(photo(), half.width + 40, 0, &canvas);
  const std::vector<DetectedFace> faces = landmarker().DetectAll(canvas);
  ASSERT_EQ(faces.size(), 2u);
  auto largest = landmarker().Largest(canvas);
  ASSERT_TRUE(largest.ok()) << largest.status();
  const Point offset{static_cast<double>(half.width + 40), 0};
  EXPECT_LE(MaxDistance(largest->landmarks, alone.landmarks, 1.0, offset), 1.5);
  const DetectedFace& small = faces[0].area() < faces[1].area() ? faces[0] : faces[1];
  EXPECT_LE(MaxDistance(small.landmarks, alone.landmarks, 0.5, Point{0, 100}), 4.0);
}

// A photo above kScanMaxPixels is scanned reduced, its boxes mapped back; the points
// come from the full photo: those of the small photo, scaled, within a few pixels.
TEST_F(FaceLandmarksTest, LargePhotosAreScannedReduced) {
  const DetectedFace alone = landmarker().DetectAll(photo()).at(0);
  const int side = 5 * photo().width;  // 2560 x 2560 = 6.6 Mpx > kScanMaxPixels
  ASSERT_GT(int64_t{side} * side, kScanMaxPixels);
  const Rgb8Image big = clip::PilResize(photo(), side, side, clip::PilFilter::kBicubic);
  auto face = landmarker().Largest(big);
  ASSERT_TRUE(face.ok()) << face.status();
  EXPECT_LE(MaxDistance(face->landmarks, alone.landmarks, 5.0, Point{2.0, 2.0}), 5 * 3.0);
}

TEST_F(FaceLandmarksTest, NoFaceIsAnInvalidArgument) {
  auto none = landmarker().Largest(Flat(300, 200, 90));
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(none.status().message().find("no face found in the 300x200 photo"), std::string::npos) << none.status();
  EXPECT_TRUE(landmarker().DetectAll(Flat(1, 1, 0)).empty());
}

TEST(FaceLandmarkerLoadTest, RefusesFilesThatAreNotAPredictor) {
  EXPECT_EQ(FaceLandmarker::Load("/nonexistent/sp.dat").status().code(), absl::StatusCode::kNotFound);
  const std::string path = ::testing::TempDir() + "/not_a_predictor.dat";
  std::ofstream(path) << "these bytes are no dlib serialization";
  auto bad = FaceLandmarker::Load(path);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("not a dlib shape predictor"), std::string::npos) << bad.status();
}

}  // namespace
}  // namespace ganserve::core::invert
