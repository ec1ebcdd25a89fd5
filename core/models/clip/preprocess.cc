#include "core/models/clip/preprocess.h"

#include <cmath>
#include <vector>

namespace ganserve::core::clip {
namespace {

constexpr int kPrecisionBits = 32 - 8 - 2;

double BicubicFilter(double x) {
  constexpr double kA = -0.5;
  x = std::fabs(x);
  if (x < 1.0) return ((kA + 2.0) * x - (kA + 3.0)) * x * x + 1;
  if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * kA;
  return 0.0;
}

double BilinearFilter(double x) {
  x = std::fabs(x);
  return x < 1.0 ? 1.0 - x : 0.0;
}

double SincFilter(double x) {
  if (x == 0.0) return 1.0;
  x = x * M_PI;
  return std::sin(x) / x;
}

double LanczosFilter(double x) {
  // Truncated sinc, a = 3 (Pillow's LANCZOS, formerly ANTIALIAS).
  if (-3.0 <= x && x < 3.0) return SincFilter(x) * SincFilter(x / 3);
  return 0.0;
}

double FilterSupport(PilFilter f) {
  switch (f) {
    case PilFilter::kBicubic: return 2.0;
    case PilFilter::kLanczos: return 3.0;
    default: return 1.0;
  }
}

double Filter(PilFilter f, double x) {
  switch (f) {
    case PilFilter::kBicubic: return BicubicFilter(x);
    case PilFilter::kLanczos: return LanczosFilter(x);
    default: return BilinearFilter(x);
  }
}

// Pillow's precompute_coeffs + normalize_coeffs_8bpc for one axis.
struct Coeffs {
  int ksize = 0;
  std::vector<int> bounds;  // (min, count) per output pixel
  std::vector<int> k;       // fixed-point weights, ksize per output pixel
};

Coeffs Precompute(int in_size, int out_size, PilFilter filter) {
  const double kSupport = FilterSupport(filter);
  const double scale = static_cast<double>(in_size) / out_size;
  const double filterscale = std::max(scale, 1.0);
  const double support = kSupport * filterscale;
  Coeffs c;
  c.ksize = static_cast<int>(std::ceil(support)) * 2 + 1;
  c.bounds.resize(static_cast<size_t>(out_size) * 2);
  c.k.assign(static_cast<size_t>(out_size) * c.ksize, 0);
  std::vector<double> w(static_cast<size_t>(c.ksize));
  for (int xx = 0; xx < out_size; ++xx) {
    const double center = (xx + 0.5) * scale;
    const double ss = 1.0 / filterscale;
    // Pillow's C truncates (int)(x + 0.5); reproduced as written, also for negatives.
    int xmin = static_cast<int>(center - support + 0.5);  // NOLINT(bugprone-incorrect-roundings)
    if (xmin < 0) xmin = 0;
    int xmax = static_cast<int>(center + support + 0.5);  // NOLINT(bugprone-incorrect-roundings)
    if (xmax > in_size) xmax = in_size;
    xmax -= xmin;
    double ww = 0.0;
    for (int x = 0; x < xmax; ++x) {
      const double t = (x + xmin - center + 0.5) * ss;
      w[x] = Filter(filter, t);
      ww += w[x];
    }
    for (int x = 0; x < xmax; ++x) {
      double v = ww != 0.0 ? w[x] / ww : w[x];
      c.k[static_cast<size_t>(xx) * c.ksize + x] =
          v < 0 ? static_cast<int>(-0.5 + v * (1 << kPrecisionBits))
                : static_cast<int>(0.5 + v * (1 << kPrecisionBits));  // NOLINT(bugprone-incorrect-roundings)
    }
    c.bounds[static_cast<size_t>(xx) * 2] = xmin;
    c.bounds[static_cast<size_t>(xx) * 2 + 1] = xmax;
  }
  return c;
}

uint8_t Clip8(int64_t v) {
  if (v >= (int64_t{1} << kPrecisionBits << 8)) return 255;
  if (v <= 0) return 0;
  return static_cast<uint8_t>(v >> kPrecisionBits);
}

}  // namespace

Rgb8Image PilResize(const Rgb8Image& in, int width, int height, PilFilter filter) {
  const bool need_h = width != in.width;
  const bool need_v = height != in.height;
  Coeffs ch = Precompute(in.width, width, filter);
  Coeffs cv = Precompute(in.height, height, filter);
  const int ybox_first = cv.bounds[0];
  const int ybox_last = cv.bounds[height * 2 - 2] + cv.bounds[height * 2 - 1];
  Rgb8Image cur = in;
  if (need_h) {
    for (int i = 0; i < height; ++i) cv.bounds[static_cast<size_t>(i) * 2] -= ybox_first;
    Rgb8Image tmp;
    tmp.width = width;
    tmp.height = ybox_last - ybox_first;
    tmp.pixels.resize(static_cast<size_t>(tmp.width) * tmp.height * 3);
    for (int yy = 0; yy < tmp.height; ++yy) {
      const uint8_t* src = in.pixels.data() + static_cast<size_t>(yy + ybox_first) * in.width * 3;
      for (int xx = 0; xx < width; ++xx) {
        const int xmin = ch.bounds[static_cast<size_t>(xx) * 2], xmax = ch.bounds[static_cast<size_t>(xx) * 2 + 1];
        const int* k = ch.k.data() + static_cast<size_t>(xx) * ch.ksize;
        int64_t s[3] = {1 << (kPrecisionBits - 1), 1 << (kPrecisionBits - 1), 1 << (kPrecisionBits - 1)};
        for (int x = 0; x < xmax; ++x) {
          for (int c = 0; c < 3; ++c) s[c] += static_cast<int64_t>(src[(x + xmin) * 3 + c]) * k[x];
        }
        for (int c = 0; c < 3; ++c) tmp.pixels[(static_cast<size_t>(yy) * width + xx) * 3 + c] = Clip8(s[c]);
      }
    }
    cur = std::move(tmp);
  }
  if (!need_v) return cur;
  Rgb8Image out;
  out.width = cur.width;
  out.height = height;
  out.pixels.resize(static_cast<size_t>(out.width) * height * 3);
  for (int yy = 0; yy < height; ++yy) {
    const int ymin = cv.bounds[static_cast<size_t>(yy) * 2], ymax = cv.bounds[static_cast<size_t>(yy) * 2 + 1];
    const int* k = cv.k.data() + static_cast<size_t>(yy) * cv.ksize;
    for (int xx = 0; xx < out.width; ++xx) {
      int64_t s[3] = {1 << (kPrecisionBits - 1), 1 << (kPrecisionBits - 1), 1 << (kPrecisionBits - 1)};
      for (int y = 0; y < ymax; ++y) {
        const uint8_t* p = cur.pixels.data() + (static_cast<size_t>(y + ymin) * cur.width + xx) * 3;
        for (int c = 0; c < 3; ++c) s[c] += static_cast<int64_t>(p[c]) * k[y];
      }
      for (int c = 0; c < 3; ++c) out.pixels[(static_cast<size_t>(yy) * out.width + xx) * 3 + c] = Clip8(s[c]);
    }
  }
  return out;
}

Rgb8Image ResizeAndCenterCrop(const Rgb8Image& in, int size, PilFilter filter) {
  int w = in.width, h = in.height;
  if (w <= h) {
    h = static_cast<int>(static_cast<double>(size) * in.height / in.width);
    w = size;
  } else {
    w = static_cast<int>(static_cast<double>(size) * in.width / in.height);
    h = size;
  }
  Rgb8Image resized = (w == in.width && h == in.height) ? in : PilResize(in, w, h, filter);
  // torchvision center_crop: offsets int(round((dim - size) / 2.0)), round half to even.
  const int top = static_cast<int>(std::nearbyint((resized.height - size) / 2.0));
  const int left = static_cast<int>(std::nearbyint((resized.width - size) / 2.0));
  Rgb8Image out;
  out.width = size;
  out.height = size;
  out.pixels.assign(static_cast<size_t>(size) * size * 3, 0);
  for (int y = 0; y < size; ++y) {
    const int sy = y + top;
    if (sy < 0 || sy >= resized.height) continue;
    for (int x = 0; x < size; ++x) {
      const int sx = x + left;
      if (sx < 0 || sx >= resized.width) continue;
      for (int c = 0; c < 3; ++c) {
        out.pixels[(static_cast<size_t>(y) * size + x) * 3 + c] =
            resized.pixels[(static_cast<size_t>(sy) * resized.width + sx) * 3 + c];
      }
    }
  }
  return out;
}

FloatTensor NormalizeForClip(const Rgb8Image& image) {
  FloatTensor t;
  t.shape = {1, 3, image.height, image.width};
  const size_t plane = static_cast<size_t>(image.width) * image.height;
  t.data.resize(plane * 3);
  for (size_t p = 0; p < plane; ++p) {
    for (int c = 0; c < 3; ++c) {
      const float v = static_cast<float>(image.pixels[p * 3 + c]) / 255.0f;
      t.data[c * plane + p] = (v - kClipMean[c]) / kClipStd[c];
    }
  }
  return t;
}

FloatTensor PreprocessForClip(const Rgb8Image& image, int size) {
  return NormalizeForClip(ResizeAndCenterCrop(image, size));
}

}  // namespace ganserve::core::clip
