// FFHQ face alignment as encoder4editing's utils/alignment.py (align_face) does it, the
// preprocessing StyleCLIP's, e4e's and OneshotCLIP's notebooks apply to real photos:
//
//  1. from the landmarks, the eye centres and the mouth corners give an oriented square
//     (quad) around the face: centre eye_avg + 0.1 eye_to_mouth, half-size
//     max(2 |eye_to_eye|, 1.8 |eye_to_mouth|), rotated with the eye-to-eye axis;
//  2. shrink: a photo far larger than the output is first reduced by an integer factor
//     (Pillow's LANCZOS, formerly ANTIALIAS);
//  3. crop to the quad plus a border;
//  4. pad where the quad leaves the photo: reflected, blended towards a Gaussian blur
//     (sigma 0.02 qsize, SciPy's gaussian_filter) and the median colour with distance
//     from the photo's edge, rounded to 8 bits;
//  5. Pillow's QUAD transform (bilinear) of the quad onto transform_size x transform_size,
//     then a LANCZOS resize to output_size when smaller.
//
// e4e uses output_size = transform_size = 256; FFHQ itself 1024 and 4096. Landmarks are
// dlib's 68 points (eyes 36-41 and 42-47, mouth corners 48 and 54) or 5 points: left eye,
// right eye, nose, left mouth corner, right mouth corner (centres). Torch-free.
#ifndef GANSERVE_CORE_INVERT_FACE_ALIGN_H_
#define GANSERVE_CORE_INVERT_FACE_ALIGN_H_

#include <array>
#include <vector>

#include "absl/status/statusor.h"
#include "core/io/image_codec.h"

namespace ganserve::core::invert {

struct Point {
  double x = 0, y = 0;
};

struct FaceAlignOptions {
  int output_size = 256;     // e4e's
  int transform_size = 256;  // e4e's
  bool enable_padding = true;
};

struct AlignedFace {
  Rgb8Image image;
  // The quad (NW, SW, SE, NE corners) in the photo's pixel coordinates, before any
  // shrink, crop or pad: where the aligned square came from.
  std::array<Point, 4> quad;
};

// Points from flat coordinates x0, y0, x1, y1, ... (an odd count drops the last value).
std::vector<Point> PointsOf(const std::vector<float>& xy);

// The oriented square the landmarks give, in their coordinates.
struct FaceSquare {
  std::array<Point, 4> quad;  // NW, SW, SE, NE
  double qsize = 0;           // its side
};
// InvalidArgument for counts other than 5 or 68, non-finite values, or degenerate
// landmarks (eyes and mouth on one point).
absl::StatusOr<FaceSquare> FaceQuad(const std::vector<Point>& landmarks);

// InvalidArgument as FaceQuad, for a face that lies outside the photo, sizes out of
// [8, 4096], or an empty photo.
absl::StatusOr<AlignedFace> AlignFace(const Rgb8Image& photo, const std::vector<Point>& landmarks,
                                      const FaceAlignOptions& options = {});

}  // namespace ganserve::core::invert

#endif  // GANSERVE_CORE_INVERT_FACE_ALIGN_H_
