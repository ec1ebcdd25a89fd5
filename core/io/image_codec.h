// Image encoding for results: float generator output -> 8-bit RGB -> PNG or JPEG.
#ifndef GANSERVE_CORE_IO_IMAGE_CODEC_H_
#define GANSERVE_CORE_IO_IMAGE_CODEC_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/util/tensor_data.h"

namespace ganserve::core {

// 8-bit interleaved RGB, row-major.
struct Rgb8Image {
  int width = 0;
  int height = 0;
  std::vector<uint8_t> pixels;  // width * height * 3
};

// Image `index` of a [N, 3, H, W] float batch in [-1, 1] to 8 bits, as torchvision's
// save_image(normalize=True, value_range=(-1, 1)) does: clamp, scale to 255, round.
absl::StatusOr<Rgb8Image> FloatToRgb8(const FloatTensor& batch, int64_t index);

// An image as a [1, 3, H, W] float batch in [-1, 1] (x / 127.5 - 1, torchvision's ToTensor
// then Normalize(0.5, 0.5)).
FloatTensor Rgb8ToFloat(const Rgb8Image& image);

absl::StatusOr<std::string> EncodePng(const Rgb8Image& image);
// quality 1..100.
absl::StatusOr<std::string> EncodeJpeg(const Rgb8Image& image, int quality);

struct DecodeLimits {
  size_t max_bytes = 16u << 20;
  int max_width = 8192;
  int max_height = 8192;
  int64_t max_pixels = 64LL << 20;
};

// Decodes a PNG or JPEG (detected by signature) to 8-bit RGB: grey and palette images
// are expanded, alpha is dropped. The header is checked against `limits` before any
// pixel memory is allocated (decompression bombs). InvalidArgument saying what is
// wrong for empty, truncated, corrupt or unsupported data; ResourceExhausted for
// images over the limits. A JPEG's EXIF orientation is applied (the result is upright).
absl::StatusOr<Rgb8Image> DecodeImage(absl::string_view bytes, const DecodeLimits& limits = {});

// A grid of equally sized images, `columns` per row (a contact sheet).
absl::StatusOr<Rgb8Image> MakeGrid(const std::vector<Rgb8Image>& images, int columns, int padding = 2);

}  // namespace ganserve::core

#endif  // GANSERVE_CORE_IO_IMAGE_CODEC_H_
