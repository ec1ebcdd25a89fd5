#include "core/io/image_codec.h"

#include <spng.h>
#include <turbojpeg.h>

#include <algorithm>
#include <cmath>
#include <memory>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace ganserve::core {

absl::StatusOr<Rgb8Image> FloatToRgb8(const FloatTensor& batch, int64_t index) {
  if (batch.shape.size() != 4 || batch.shape[1] != 3 || index < 0 || index >= batch.shape[0]) {
    return absl::InvalidArgumentError(absl::StrCat("expected a [N, 3, H, W] batch and an index below N, got ",
                                                   ShapeString(batch.shape), " and ", index));
  }
  Rgb8Image out;
  out.height = static_cast<int>(batch.shape[2]);
  out.width = static_cast<int>(batch.shape[3]);
  const int64_t plane = batch.shape[2] * batch.shape[3];
  const float* src = batch.data.data() + index * 3 * plane;
  out.pixels.resize(static_cast<size_t>(plane * 3));
  for (int64_t p = 0; p < plane; ++p) {
    for (int c = 0; c < 3; ++c) {
      float v = src[c * plane + p];
      v = std::isnan(v) ? 0.0f : std::clamp((v + 1.0f) * 0.5f, 0.0f, 1.0f);
      out.pixels[static_cast<size_t>(p * 3 + c)] = static_cast<uint8_t>(std::min(255.0f, v * 255.0f + 0.5f));
    }
  }
  return out;
}

absl::StatusOr<std::string> EncodePng(const Rgb8Image& image) {
  if (image.width <= 0 || image.height <= 0 ||
      image.pixels.size() != static_cast<size_t>(image.width) * image.height * 3) {
    return absl::InvalidArgumentError("PNG encode: image size and pixel buffer do not match");
  }
  std::unique_ptr<spng_ctx, decltype(&spng_ctx_free)> ctx(spng_ctx_new(SPNG_CTX_ENCODER), spng_ctx_free);
  if (!ctx) return absl::ResourceExhaustedError("PNG encode: out of memory");
  spng_set_option(ctx.get(), SPNG_ENCODE_TO_BUFFER, 1);
  spng_ihdr ihdr{};
  ihdr.width = static_cast<uint32_t>(image.width);
  ihdr.height = static_cast<uint32_t>(image.height);
  ihdr.bit_depth = 8;
  ihdr.color_type = SPNG_COLOR_TYPE_TRUECOLOR;
  spng_set_ihdr(ctx.get(), &ihdr);
  int rc = spng_encode_image(ctx.get(), image.pixels.data(), image.pixels.size(), SPNG_FMT_PNG,
                             SPNG_ENCODE_FINALIZE);
  if (rc != 0) return absl::InternalError(absl::StrCat("PNG encode failed: ", spng_strerror(rc)));
  size_t len = 0;
  int err = 0;
  void* buf = spng_get_png_buffer(ctx.get(), &len, &err);
  if (buf == nullptr) return absl::InternalError(absl::StrCat("PNG encode failed: ", spng_strerror(err)));
  std::string out(static_cast<const char*>(buf), len);
  free(buf);
  return out;
}

absl::StatusOr<std::string> EncodeJpeg(const Rgb8Image& image, int quality) {
  if (quality < 1 || quality > 100) return absl::InvalidArgumentError("JPEG quality must be in [1, 100]");
  if (image.width <= 0 || image.height <= 0 ||
      image.pixels.size() != static_cast<size_t>(image.width) * image.height * 3) {
    return absl::InvalidArgumentError("JPEG encode: image size and pixel buffer do not match");
  }
  std::unique_ptr<void, decltype(&tjDestroy)> tj(tjInitCompress(), tjDestroy);
  if (!tj) return absl::ResourceExhaustedError("JPEG encode: cannot create a compressor");
  unsigned char* buf = nullptr;
  unsigned long len = 0;  // NOLINT(runtime/int): the turbojpeg API
  int rc = tjCompress2(tj.get(), image.pixels.data(), image.width, 0, image.height, TJPF_RGB, &buf, &len,
                       TJSAMP_420, quality, TJFLAG_ACCURATEDCT);
  if (rc != 0) {
    std::string msg = tjGetErrorStr2(tj.get());
    tjFree(buf);
    return absl::InternalError(absl::StrCat("JPEG encode failed: ", msg));
  }
  std::string out(reinterpret_cast<const char*>(buf), len);
  tjFree(buf);
  return out;
}

absl::StatusOr<Rgb8Image> MakeGrid(const std::vector<Rgb8Image>& images, int columns, int padding) {
  if (images.empty() || columns < 1) return absl::InvalidArgumentError("grid needs images and >= 1 column");
  const int w = images[0].width, h = images[0].height;
  for (const auto& im : images) {
    if (im.width != w || im.height != h) return absl::InvalidArgumentError("grid images differ in size");
  }
  const int cols = std::min<int>(columns, static_cast<int>(images.size()));
  const int rows = (static_cast<int>(images.size()) + cols - 1) / cols;
  Rgb8Image g;
  g.width = cols * w + (cols + 1) * padding;
  g.height = rows * h + (rows + 1) * padding;
  g.pixels.assign(static_cast<size_t>(g.width) * g.height * 3, 0);
  for (size_t i = 0; i < images.size(); ++i) {
    const int r = static_cast<int>(i) / cols, c = static_cast<int>(i) % cols;
    const int x0 = padding + c * (w + padding), y0 = padding + r * (h + padding);
    for (int y = 0; y < h; ++y) {
      std::copy_n(images[i].pixels.data() + static_cast<size_t>(y) * w * 3, static_cast<size_t>(w) * 3,
                  g.pixels.data() + (static_cast<size_t>(y0 + y) * g.width + x0) * 3);
    }
  }
  return g;
}

}  // namespace ganserve::core
