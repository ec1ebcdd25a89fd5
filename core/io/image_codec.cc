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

FloatTensor Rgb8ToFloat(const Rgb8Image& image) {
  FloatTensor t{{1, 3, image.height, image.width}, {}};
  const size_t plane = static_cast<size_t>(image.width) * static_cast<size_t>(image.height);
  t.data.resize(plane * 3);
  for (size_t p = 0; p < plane; ++p) {
    for (size_t ch = 0; ch < 3; ++ch) t.data[ch * plane + p] = image.pixels[p * 3 + ch] / 127.5f - 1.0f;
  }
  return t;
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
  int rc = spng_encode_image(ctx.get(), image.pixels.data(), image.pixels.size(), SPNG_FMT_PNG, SPNG_ENCODE_FINALIZE);
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
  int rc = tjCompress2(tj.get(), image.pixels.data(), image.width, 0, image.height, TJPF_RGB, &buf, &len, TJSAMP_420,
                       quality, TJFLAG_ACCURATEDCT);
  if (rc != 0) {
    std::string msg = tjGetErrorStr2(tj.get());
    tjFree(buf);
    return absl::InternalError(absl::StrCat("JPEG encode failed: ", msg));
  }
  std::string out(reinterpret_cast<const char*>(buf), len);
  tjFree(buf);
  return out;
}

namespace {

absl::Status CheckSize(int64_t w, int64_t h, const DecodeLimits& limits) {
  if (w <= 0 || h <= 0) return absl::InvalidArgumentError("image has zero width or height");
  if (w > limits.max_width || h > limits.max_height || w * h > limits.max_pixels) {
    return absl::ResourceExhaustedError(absl::StrCat("image is ", w, "x", h, " pixels; the limit is ", limits.max_width,
                                                     "x", limits.max_height, " and ", limits.max_pixels,
                                                     " pixels in total"));
  }
  return absl::OkStatus();
}

absl::StatusOr<Rgb8Image> DecodePng(absl::string_view bytes, const DecodeLimits& limits) {
  std::unique_ptr<spng_ctx, decltype(&spng_ctx_free)> ctx(spng_ctx_new(0), spng_ctx_free);
  if (!ctx) return absl::ResourceExhaustedError("PNG decode: out of memory");
  spng_set_crc_action(ctx.get(), SPNG_CRC_ERROR, SPNG_CRC_ERROR);
  spng_set_image_limits(ctx.get(), static_cast<uint32_t>(limits.max_width), static_cast<uint32_t>(limits.max_height));
  spng_set_chunk_limits(ctx.get(), 1u << 20, 4u << 20);
  spng_set_png_buffer(ctx.get(), bytes.data(), bytes.size());
  spng_ihdr ihdr{};
  if (int rc = spng_get_ihdr(ctx.get(), &ihdr); rc != 0) {
    if (rc == SPNG_EWIDTH || rc == SPNG_EHEIGHT) {
      return absl::InvalidArgumentError("not a valid PNG: its header gives a zero (or over 2^31) width or height");
    }
    if (rc == SPNG_EUSER_WIDTH || rc == SPNG_EUSER_HEIGHT) {
      return absl::ResourceExhaustedError(
          absl::StrCat("PNG dimensions exceed the limit of ", limits.max_width, "x", limits.max_height));
    }
    return absl::InvalidArgumentError(absl::StrCat("not a valid PNG: ", spng_strerror(rc)));
  }
  if (absl::Status s = CheckSize(ihdr.width, ihdr.height, limits); !s.ok()) return s;
  size_t out_size = 0;
  if (int rc = spng_decoded_image_size(ctx.get(), SPNG_FMT_RGB8, &out_size); rc != 0) {
    return absl::InvalidArgumentError(absl::StrCat("PNG cannot be decoded to RGB: ", spng_strerror(rc)));
  }
  Rgb8Image out;
  out.width = static_cast<int>(ihdr.width);
  out.height = static_cast<int>(ihdr.height);
  out.pixels.resize(out_size);
  if (int rc = spng_decode_image(ctx.get(), out.pixels.data(), out_size, SPNG_FMT_RGB8, SPNG_DECODE_TRNS); rc != 0) {
    return absl::InvalidArgumentError(absl::StrCat("PNG is corrupt or truncated: ", spng_strerror(rc)));
  }
  return out;
}

// The EXIF orientation (1..8) of a JPEG, 1 when absent or unreadable.
int ExifOrientation(absl::string_view jpeg) {
  size_t p = 2;  // after SOI
  while (p + 4 <= jpeg.size() && static_cast<uint8_t>(jpeg[p]) == 0xFF) {
    const uint8_t marker = static_cast<uint8_t>(jpeg[p + 1]);
    const size_t len = (static_cast<uint8_t>(jpeg[p + 2]) << 8) | static_cast<uint8_t>(jpeg[p + 3]);
    if (len < 2 || p + 2 + len > jpeg.size()) return 1;
    if (marker == 0xDA) return 1;  // start of scan: no EXIF before the image data
    if (marker == 0xE1 && len >= 16 && jpeg.substr(p + 4, 6) == absl::string_view("Exif\0\0", 6)) {
      absl::string_view t = jpeg.substr(p + 10, len - 8);  // TIFF header onwards
      const bool le = t.substr(0, 2) == "II";
      if (!le && t.substr(0, 2) != "MM") return 1;
      auto u16 = [&](size_t o) -> uint32_t {
        if (o + 2 > t.size()) return 0;
        const uint8_t a = static_cast<uint8_t>(t[o]), b = static_cast<uint8_t>(t[o + 1]);
        return le ? (a | (b << 8)) : ((a << 8) | b);
      };
      auto u32 = [&](size_t o) -> uint32_t {
        return le ? (u16(o) | (u16(o + 2) << 16)) : ((u16(o) << 16) | u16(o + 2));
      };
      const size_t ifd = u32(4);
      const uint32_t n = u16(ifd);
      for (uint32_t i = 0; i < n && i < 512; ++i) {
        const size_t e = ifd + 2 + 12 * i;
        if (e + 12 > t.size()) return 1;
        if (u16(e) == 0x0112) {
          const uint32_t v = u16(e + 8);
          return v >= 1 && v <= 8 ? static_cast<int>(v) : 1;
        }
      }
      return 1;
    }
    p += 2 + len;
  }
  return 1;
}

// Applies an EXIF orientation so that the image is upright.
Rgb8Image Orient(const Rgb8Image& in, int orientation) {
  if (orientation <= 1) return in;
  const bool swap = orientation >= 5;
  Rgb8Image out;
  out.width = swap ? in.height : in.width;
  out.height = swap ? in.width : in.height;
  out.pixels.resize(in.pixels.size());
  for (int y = 0; y < out.height; ++y) {
    for (int x = 0; x < out.width; ++x) {
      int sx = x, sy = y;
      switch (orientation) {
        case 2: sx = in.width - 1 - x; break;  // mirror horizontally
        case 3:
          sx = in.width - 1 - x;
          sy = in.height - 1 - y;
          break;                                // rotate 180
        case 4: sy = in.height - 1 - y; break;  // mirror vertically
        case 5:
          sx = y;
          sy = x;
          break;  // transpose
        case 6:
          sx = y;
          sy = in.height - 1 - x;
          break;  // rotate 90 clockwise
        case 7:
          sx = in.width - 1 - y;
          sy = in.height - 1 - x;
          break;  // transverse
        case 8:
          sx = in.width - 1 - y;
          sy = x;
          break;  // rotate 90 counter-clockwise
      }
      std::copy_n(in.pixels.data() + (static_cast<size_t>(sy) * in.width + sx) * 3, 3,
                  out.pixels.data() + (static_cast<size_t>(y) * out.width + x) * 3);
    }
  }
  return out;
}

absl::StatusOr<Rgb8Image> DecodeJpeg(absl::string_view bytes, const DecodeLimits& limits) {
  std::unique_ptr<void, decltype(&tjDestroy)> tj(tjInitDecompress(), tjDestroy);
  if (!tj) return absl::ResourceExhaustedError("JPEG decode: cannot create a decompressor");
  int w = 0, h = 0, subsamp = 0, colorspace = 0;
  auto* src = reinterpret_cast<const unsigned char*>(bytes.data());
  if (tjDecompressHeader3(tj.get(), src, bytes.size(), &w, &h, &subsamp, &colorspace) != 0) {
    return absl::InvalidArgumentError(absl::StrCat("not a valid JPEG: ", tjGetErrorStr2(tj.get())));
  }
  if (absl::Status s = CheckSize(w, h, limits); !s.ok()) return s;
  Rgb8Image out;
  out.width = w;
  out.height = h;
  out.pixels.resize(static_cast<size_t>(w) * h * 3);
  if (tjDecompress2(tj.get(), src, bytes.size(), out.pixels.data(), w, 0, h, TJPF_RGB,
                    TJFLAG_ACCURATEDCT | TJFLAG_STOPONWARNING) != 0) {
    return absl::InvalidArgumentError(absl::StrCat("JPEG is corrupt or truncated: ", tjGetErrorStr2(tj.get())));
  }
  return Orient(out, ExifOrientation(bytes));
}

}  // namespace

absl::StatusOr<Rgb8Image> DecodeImage(absl::string_view bytes, const DecodeLimits& limits) {
  if (bytes.empty()) return absl::InvalidArgumentError("image is empty");
  if (bytes.size() > limits.max_bytes) {
    return absl::ResourceExhaustedError(
        absl::StrCat("image is ", bytes.size(), " bytes; the limit is ", limits.max_bytes));
  }
  if (bytes.size() >= 8 && bytes.substr(0, 8) == absl::string_view("\x89PNG\r\n\x1a\n", 8)) {
    return DecodePng(bytes, limits);
  }
  if (bytes.size() >= 3 && static_cast<uint8_t>(bytes[0]) == 0xFF && static_cast<uint8_t>(bytes[1]) == 0xD8 &&
      static_cast<uint8_t>(bytes[2]) == 0xFF) {
    return DecodeJpeg(bytes, limits);
  }
  return absl::InvalidArgumentError("image is neither PNG nor JPEG (unknown signature)");
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
