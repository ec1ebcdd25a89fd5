#include "core/invert/face_landmarks.h"

#include <dlib/image_processing/frontal_face_detector.h>
#include <dlib/image_processing/shape_predictor.h>
#include <dlib/image_transforms/image_pyramid.h>
#include <dlib/serialize.h>

#include <algorithm>
#include <exception>
#include <filesystem>
#include <system_error>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"

namespace ganserve::core::invert {

struct FaceLandmarker::State {
  // dlib's object detector keeps scan buffers in itself: one scan at a time.
  absl::Mutex mu;
  dlib::frontal_face_detector detector ABSL_GUARDED_BY(mu) = dlib::get_frontal_face_detector();
  dlib::shape_predictor predictor;  // const use is thread-safe
};

FaceLandmarker::FaceLandmarker(std::unique_ptr<State> state, int64_t footprint_bytes)
    : state_(std::move(state)), footprint_bytes_(footprint_bytes) {}
FaceLandmarker::~FaceLandmarker() = default;

absl::StatusOr<std::shared_ptr<const FaceLandmarker>> FaceLandmarker::Load(const std::string& predictor_path) {
  std::error_code ec;
  const auto size = std::filesystem::file_size(predictor_path, ec);
  if (ec) return absl::NotFoundError(absl::StrCat("cannot read ", predictor_path, ": ", ec.message()));
  auto state = std::make_unique<State>();
  try {
    dlib::deserialize(predictor_path) >> state->predictor;
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat(predictor_path, " is not a dlib shape predictor (", kLandmarksPredictorFile, "): ", e.what()));
  }
  if (state->predictor.num_parts() != kLandmarkCount) {
    return absl::InvalidArgumentError(absl::StrCat(predictor_path, " predicts ", state->predictor.num_parts(),
                                                   " points; FFHQ alignment needs dlib's ", kLandmarkCount,
                                                   "-point predictor (", kLandmarksPredictorFile, ")"));
  }
  return std::shared_ptr<const FaceLandmarker>(new FaceLandmarker(std::move(state), static_cast<int64_t>(size)));
}

std::vector<DetectedFace> FaceLandmarker::DetectAll(const Rgb8Image& photo) const {
  dlib::array2d<dlib::rgb_pixel> img(photo.height, photo.width);
  const uint8_t* p = photo.pixels.data();
  for (int y = 0; y < photo.height; ++y) {
    for (int x = 0; x < photo.width; ++x, p += 3) img[y][x] = dlib::rgb_pixel(p[0], p[1], p[2]);
  }
  const int64_t pixels = static_cast<int64_t>(photo.width) * photo.height;
  dlib::pyramid_down<2> pyr;  // the levels dlib's Python binding upsamples by
  std::vector<dlib::rectangle> boxes;
  {
    absl::MutexLock lock(&state_->mu);
    if (pixels <= kUpsampleMaxPixels) {
      dlib::array2d<dlib::rgb_pixel> up;
      dlib::pyramid_up(img, up, pyr);
      boxes = state_->detector(up);
      for (auto& b : boxes) b = dlib::rectangle(pyr.rect_down(b, 1));
    } else {
      dlib::array2d<dlib::rgb_pixel> small, next;
      const dlib::array2d<dlib::rgb_pixel>* scan = &img;
      unsigned int levels = 0;
      for (int64_t n = pixels; n > kScanMaxPixels; n = static_cast<int64_t>(scan->nc()) * scan->nr()) {
        pyr(*scan, next);
        dlib::swap(small, next);
        scan = &small;
        ++levels;
      }
      boxes = state_->detector(*scan);
      if (levels > 0) {
        for (auto& b : boxes) b = dlib::rectangle(pyr.rect_up(b, levels));
      }
    }
  }
  std::vector<DetectedFace> faces;
  faces.reserve(boxes.size());
  for (const auto& b : boxes) {
    const dlib::full_object_detection shape = state_->predictor(img, b);
    DetectedFace f;
    f.left = b.left();
    f.top = b.top();
    f.right = b.right();
    f.bottom = b.bottom();
    f.landmarks.reserve(shape.num_parts());
    for (decltype(shape.num_parts()) i = 0; i < shape.num_parts(); ++i) {
      f.landmarks.push_back({static_cast<double>(shape.part(i).x()), static_cast<double>(shape.part(i).y())});
    }
    faces.push_back(std::move(f));
  }
  return faces;
}

absl::StatusOr<DetectedFace> FaceLandmarker::Largest(const Rgb8Image& photo) const {
  std::vector<DetectedFace> faces = DetectAll(photo);
  if (faces.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("no face found in the ", photo.width, "x", photo.height,
                     " photo (dlib's frontal face detector): send the face's landmarks, or an aligned photo"));
  }
  // The first of equal boxes: stable for a photo.
  return *std::max_element(faces.begin(), faces.end(),
                           [](const DetectedFace& a, const DetectedFace& b) { return a.area() < b.area(); });
}

}  // namespace ganserve::core::invert
