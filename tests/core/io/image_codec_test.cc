// Image decoding: round trips, limits checked before allocation, corrupt inputs, EXIF
// orientation.
#include "core/io/image_codec.h"

#include <gtest/gtest.h>

namespace ganserve::core {
namespace {

// 16 x 8: left half red, right half blue.
Rgb8Image Halves() {
  Rgb8Image im{16, 8, std::vector<uint8_t>(16 * 8 * 3)};
  for (int y = 0; y < 8; ++y) {
    for (int x = 0; x < 16; ++x) {
      uint8_t* p = im.pixels.data() + (y * 16 + x) * 3;
      p[0] = x < 8 ? 250 : 5;
      p[2] = x < 8 ? 5 : 250;
    }
  }
  return im;
}

// Inserts an APP1 EXIF segment with the given orientation after the SOI marker.
std::string WithOrientation(const std::string& jpeg, uint16_t orientation, bool big_endian) {
  std::string tiff = big_endian ? std::string("MM\0\x2a\0\0\0\x08", 8) : std::string("II\x2a\0\x08\0\0\0", 8);
  auto put16 = [&](uint16_t v) {
    if (big_endian) {
      tiff.push_back(static_cast<char>(v >> 8));
      tiff.push_back(static_cast<char>(v & 0xff));
    } else {
      tiff.push_back(static_cast<char>(v & 0xff));
      tiff.push_back(static_cast<char>(v >> 8));
    }
  };
  put16(1);       // one IFD entry
  put16(0x0112);  // Orientation
  put16(3);       // SHORT
  put16(0);
  put16(1);  // count (low half in LE / high half in BE)
  put16(orientation);
  put16(0);
  tiff.append(4, '\0');  // next IFD
  std::string app1 = std::string("Exif\0\0", 6) + tiff;
  const size_t len = app1.size() + 2;
  std::string seg = std::string("\xFF\xE1", 2) + static_cast<char>(len >> 8) + static_cast<char>(len & 0xff) + app1;
  return jpeg.substr(0, 2) + seg + jpeg.substr(2);
}

TEST(ImageCodecTest, PngRoundTripIsExact) {
  Rgb8Image im = Halves();
  auto png = EncodePng(im);
  ASSERT_TRUE(png.ok());
  auto back = DecodeImage(*png);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->pixels, im.pixels);
}

TEST(ImageCodecTest, LimitsAreCheckedBeforeDecoding) {
  auto png = EncodePng(Halves());
  ASSERT_TRUE(png.ok());
  DecodeLimits small;
  small.max_width = 8;
  EXPECT_EQ(DecodeImage(*png, small).status().code(), absl::StatusCode::kResourceExhausted);
  DecodeLimits pixels;
  pixels.max_pixels = 100;
  EXPECT_EQ(DecodeImage(*png, pixels).status().code(), absl::StatusCode::kResourceExhausted);
  DecodeLimits bytes;
  bytes.max_bytes = 10;
  EXPECT_EQ(DecodeImage(*png, bytes).status().code(), absl::StatusCode::kResourceExhausted);
}

TEST(ImageCodecTest, CorruptTruncatedAndForeignDataAreInvalid) {
  auto png = EncodePng(Halves());
  auto jpg = EncodeJpeg(Halves(), 95);
  ASSERT_TRUE(png.ok() && jpg.ok());
  for (const std::string& bad : {std::string(), std::string("GIF89a...."), png->substr(0, png->size() / 2),
                                 jpg->substr(0, jpg->size() / 2), png->substr(0, 20)}) {
    auto r = DecodeImage(bad);
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << bad.size() << ": " << r.status();
  }
}

TEST(ImageCodecTest, JpegExifOrientationIsApplied) {
  auto jpg = EncodeJpeg(Halves(), 98);
  ASSERT_TRUE(jpg.ok());
  for (bool be : {false, true}) {
    // 6: the stored image must be rotated 90 degrees clockwise: left (red) goes to the top.
    auto r = DecodeImage(WithOrientation(*jpg, 6, be));
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->width, 8);
    EXPECT_EQ(r->height, 16);
    EXPECT_GT(r->pixels[(1 * 8 + 4) * 3 + 0], 200);   // top rows red
    EXPECT_GT(r->pixels[(14 * 8 + 4) * 3 + 2], 200);  // bottom rows blue
    // 3: rotated 180 degrees: red ends up on the right.
    auto r3 = DecodeImage(WithOrientation(*jpg, 3, be));
    ASSERT_TRUE(r3.ok());
    EXPECT_EQ(r3->width, 16);
    EXPECT_GT(r3->pixels[(4 * 16 + 14) * 3 + 0], 200);
  }
  auto plain = DecodeImage(*jpg);
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(plain->width, 16);
  EXPECT_GT(plain->pixels[(4 * 16 + 1) * 3 + 0], 200);
}

}  // namespace
}  // namespace ganserve::core
