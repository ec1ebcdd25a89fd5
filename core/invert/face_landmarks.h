// Face landmarks for FFHQ alignment, found as encoder4editing's utils/alignment.py
// (get_landmark) finds them: dlib's HOG frontal face detector, then a 68-point shape
// predictor (shape_predictor_68_face_landmarks.dat, iBUG 300-W order) in each face box.
//
// Differences from the official function, all on purpose:
//  - it keeps the LAST face dlib reports; this keeps the LARGEST box (a group photo
//    then aligns its main subject, not whichever face the scan met last);
//  - no face is an InvalidArgument instead of a crash;
//  - it always scans the photo upsampled once (faces down to ~40 px); this does too up to
//    kUpsampleMaxPixels, scans larger photos as they are (faces from ~80 px) and reduces
//    photos above kScanMaxPixels by an integer factor for the scan only, so the detector's
//    time and memory are bounded; the shape predictor always runs on the full photo.
// Torch-free.
#ifndef GANSERVE_CORE_INVERT_FACE_LANDMARKS_H_
#define GANSERVE_CORE_INVERT_FACE_LANDMARKS_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/invert/face_align.h"
#include "core/io/image_codec.h"

namespace ganserve::core::invert {

// The predictor file dlib publishes (dlib.net/files) and Debian's libdlib-data installs.
inline constexpr char kLandmarksPredictorFile[] = "shape_predictor_68_face_landmarks.dat";
inline constexpr int kLandmarkCount = 68;
inline constexpr int64_t kUpsampleMaxPixels = int64_t{1} << 20;
inline constexpr int64_t kScanMaxPixels = int64_t{1} << 22;

struct DetectedFace {
  // The detector's box in photo pixels (right and bottom inclusive, as dlib's rectangles).
  int64_t left = 0, top = 0, right = 0, bottom = 0;
  std::vector<Point> landmarks;  // kLandmarkCount points, integer pixel positions (dlib's)
  int64_t area() const { return (right - left + 1) * (bottom - top + 1); }
};

class FaceLandmarker {
 public:
  // InvalidArgument when the file is not a dlib shape predictor of 68 points.
  static absl::StatusOr<std::shared_ptr<const FaceLandmarker>> Load(const std::string& predictor_path);
  ~FaceLandmarker();

  // Every face, in the detector's order. Thread-safe.
  std::vector<DetectedFace> DetectAll(const Rgb8Image& photo) const;
  // The largest face; InvalidArgument when there is none.
  absl::StatusOr<DetectedFace> Largest(const Rgb8Image& photo) const;

  // Host memory its predictor holds (about the file's size).
  int64_t footprint_bytes() const { return footprint_bytes_; }

 private:
  struct State;
  explicit FaceLandmarker(std::unique_ptr<State> state, int64_t footprint_bytes);
  std::unique_ptr<State> state_;
  int64_t footprint_bytes_ = 0;
};

}  // namespace ganserve::core::invert

#endif  // GANSERVE_CORE_INVERT_FACE_LANDMARKS_H_
