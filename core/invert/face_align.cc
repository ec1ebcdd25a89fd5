#include "core/invert/face_align.h"

#include <algorithm>
#include <cmath>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/models/clip/preprocess.h"
#include "core/util/status_macros.h"

namespace ganserve::core::invert {
namespace {

Point Add(Point a, Point b) { return {a.x + b.x, a.y + b.y}; }
Point Sub(Point a, Point b) { return {a.x - b.x, a.y - b.y}; }
Point Mul(Point a, double k) { return {a.x * k, a.y * k}; }
double Hypot(Point a) { return std::hypot(a.x, a.y); }

Point Mean(const std::vector<Point>& p, size_t begin, size_t end) {
  Point s;
  for (size_t i = begin; i < end; ++i) s = Add(s, p[i]);
  return Mul(s, 1.0 / static_cast<double>(end - begin));
}

// numpy.rint: to nearest, ties to even.
int Rint(double v) { return static_cast<int>(std::nearbyint(v)); }

Rgb8Image Crop(const Rgb8Image& in, int x0, int y0, int x1, int y1) {
  Rgb8Image out;
  out.width = x1 - x0;
  out.height = y1 - y0;
  out.pixels.resize(static_cast<size_t>(out.width) * out.height * 3);
  for (int y = 0; y < out.height; ++y) {
    const uint8_t* src = in.pixels.data() + (static_cast<size_t>(y + y0) * in.width + x0) * 3;
    std::copy(src, src + static_cast<size_t>(out.width) * 3,
              out.pixels.data() + static_cast<size_t>(y) * out.width * 3);
  }
  return out;
}

// numpy.pad(..., 'reflect') index: the edge is not repeated (d c b | a b c d | c b a).
int ReflectNoEdge(int i, int n) {
  if (n == 1) return 0;
  const int period = 2 * (n - 1);
  i %= period;
  if (i < 0) i += period;
  return i < n ? i : period - i;
}

// scipy.ndimage 'reflect' index: the edge is repeated (c b a | a b c | c b a).
int ReflectEdge(int i, int n) {
  const int period = 2 * n;
  i %= period;
  if (i < 0) i += period;
  return i < n ? i : period - 1 - i;
}

// scipy.ndimage.gaussian_filter1d (truncate 4.0, mode 'reflect') along `axis` (0 = rows
// of an [h, w, 3] float32 image, 1 = columns), accumulating in double, stored as float32.
std::vector<float> Gaussian1d(const std::vector<float>& in, int h, int w, double sigma, int axis) {
  const int radius = static_cast<int>(std::floor(4.0 * sigma + 0.5));  // SciPy's int(truncate * sigma + 0.5)
  std::vector<double> k(static_cast<size_t>(radius) * 2 + 1);
  double sum = 0;
  for (size_t t = 0; t < k.size(); ++t) {
    const double d = static_cast<double>(t) - radius;
    k[t] = std::exp(-0.5 / (sigma * sigma) * (d * d));
    sum += k[t];
  }
  for (double& v : k) v /= sum;
  std::vector<float> out(in.size());
  const int n = axis == 0 ? h : w;
  std::vector<double> line(static_cast<size_t>(n));
  const int lines = axis == 0 ? w : h;
  for (int l = 0; l < lines; ++l) {
    for (int c = 0; c < 3; ++c) {
      auto at = [&](int i) {
        return axis == 0 ? (static_cast<size_t>(i) * w + l) * 3 + c : (static_cast<size_t>(l) * w + i) * 3 + c;
      };
      for (int i = 0; i < n; ++i) {
        double acc = 0;
        for (size_t t = 0; t < k.size(); ++t) acc += k[t] * in[at(ReflectEdge(i + static_cast<int>(t) - radius, n))];
        line[static_cast<size_t>(i)] = acc;
      }
      for (int i = 0; i < n; ++i) out[at(i)] = static_cast<float>(line[static_cast<size_t>(i)]);
    }
  }
  return out;
}

// numpy.median over the pixels of one channel (float32; even counts average the two
// middle values).
float Median(const std::vector<float>& img, int c) {
  std::vector<float> v;
  v.reserve(img.size() / 3);
  for (size_t i = static_cast<size_t>(c); i < img.size(); i += 3) v.push_back(img[i]);
  const size_t n = v.size(), mid = n / 2;
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(mid), v.end());
  const float hi = v[mid];
  if (n % 2 == 1) return hi;
  const float lo = *std::max_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(mid));
  return (lo + hi) / 2.0f;
}

// Step 4: pad[] = left, top, right, bottom.
Rgb8Image PadAndBlend(const Rgb8Image& in, const int pad[4], double qsize) {
  const int h = in.height + pad[1] + pad[3], w = in.width + pad[0] + pad[2];
  std::vector<float> img(static_cast<size_t>(h) * w * 3);
  for (int y = 0; y < h; ++y) {
    const int sy = ReflectNoEdge(y - pad[1], in.height);
    for (int x = 0; x < w; ++x) {
      const int sx = ReflectNoEdge(x - pad[0], in.width);
      for (int c = 0; c < 3; ++c) {
        img[(static_cast<size_t>(y) * w + x) * 3 + c] = in.pixels[(static_cast<size_t>(sy) * in.width + sx) * 3 + c];
      }
    }
  }
  // mask = max(1 - min(x / pad_l, (w-1-x) / pad_r), 1 - min(y / pad_t, (h-1-y) / pad_b)),
  // in float32 as NumPy computes it.
  std::vector<float> mask(static_cast<size_t>(h) * w);
  for (int y = 0; y < h; ++y) {
    const float my = 1.0f - std::min(static_cast<float>(y) / static_cast<float>(pad[1]),
                                     static_cast<float>(h - 1 - y) / static_cast<float>(pad[3]));
    for (int x = 0; x < w; ++x) {
      const float mx = 1.0f - std::min(static_cast<float>(x) / static_cast<float>(pad[0]),
                                       static_cast<float>(w - 1 - x) / static_cast<float>(pad[2]));
      mask[static_cast<size_t>(y) * w + x] = std::max(mx, my);
    }
  }
  const double blur = qsize * 0.02;
  const std::vector<float> blurred = Gaussian1d(Gaussian1d(img, h, w, blur, 0), h, w, blur, 1);
  for (size_t p = 0; p < mask.size(); ++p) {
    const float k = std::clamp(mask[p] * 3.0f + 1.0f, 0.0f, 1.0f);
    for (int c = 0; c < 3; ++c) {
      float& v = img[p * 3 + c];
      v += (blurred[p * 3 + c] - v) * k;
    }
  }
  const float median[3] = {Median(img, 0), Median(img, 1), Median(img, 2)};
  Rgb8Image out;
  out.width = w;
  out.height = h;
  out.pixels.resize(img.size());
  for (size_t p = 0; p < mask.size(); ++p) {
    const float k = std::clamp(mask[p], 0.0f, 1.0f);
    for (int c = 0; c < 3; ++c) {
      float v = img[p * 3 + c];
      v += (median[c] - v) * k;
      out.pixels[p * 3 + c] = static_cast<uint8_t>(std::clamp(std::nearbyint(v), 0.0f, 255.0f));
    }
  }
  return out;
}

// Pillow's Image.transform(size, QUAD, data, BILINEAR): data = NW, SW, SE, NE corners;
// pixels mapped from outside the image are black.
Rgb8Image QuadTransform(const Rgb8Image& in, int size, const std::array<Point, 4>& q) {
  const double as = 1.0 / size, at = 1.0 / size;
  const Point nw = q[0], sw = q[1], se = q[2], ne = q[3];
  const double a0 = nw.x, a1 = (ne.x - nw.x) * as, a2 = (sw.x - nw.x) * at, a3 = (se.x - sw.x - ne.x + nw.x) * as * at;
  const double a4 = nw.y, a5 = (ne.y - nw.y) * as, a6 = (sw.y - nw.y) * at, a7 = (se.y - sw.y - ne.y + nw.y) * as * at;
  Rgb8Image out;
  out.width = out.height = size;
  out.pixels.assign(static_cast<size_t>(size) * size * 3, 0);
  auto clip_x = [&](int x) { return x < 0 ? 0 : (x < in.width ? x : in.width - 1); };
  auto clip_y = [&](int y) { return y < 0 ? 0 : (y < in.height ? y : in.height - 1); };
  for (int y = 0; y < size; ++y) {
    for (int x = 0; x < size; ++x) {
      const double xo = x + 0.5, yo = y + 0.5;
      double xin = a0 + a1 * xo + a2 * yo + a3 * xo * yo;
      double yin = a4 + a5 * xo + a6 * yo + a7 * xo * yo;
      if (xin < 0.0 || xin >= in.width || yin < 0.0 || yin >= in.height) continue;
      xin -= 0.5;
      yin -= 0.5;
      const int xi = static_cast<int>(std::floor(xin)), yi = static_cast<int>(std::floor(yin));
      const double dx = xin - xi, dy = yin - yi;
      const int x0 = clip_x(xi), x1 = clip_x(xi + 1);
      const uint8_t* row0 = in.pixels.data() + static_cast<size_t>(clip_y(yi)) * in.width * 3;
      const bool has_row1 = yi + 1 >= 0 && yi + 1 < in.height;
      const uint8_t* row1 = has_row1 ? in.pixels.data() + static_cast<size_t>(yi + 1) * in.width * 3 : nullptr;
      for (int c = 0; c < 3; ++c) {
        double v1 = row0[x0 * 3 + c] + (row0[x1 * 3 + c] - row0[x0 * 3 + c]) * dx;
        double v2 = v1;
        if (has_row1) v2 = row1[x0 * 3 + c] + (row1[x1 * 3 + c] - row1[x0 * 3 + c]) * dx;
        v1 = v1 + (v2 - v1) * dy;
        out.pixels[(static_cast<size_t>(y) * size + x) * 3 + c] = static_cast<uint8_t>(v1);
      }
    }
  }
  return out;
}

}  // namespace

std::vector<Point> PointsOf(const std::vector<float>& xy) {
  std::vector<Point> out;
  for (size_t i = 0; i + 1 < xy.size(); i += 2) out.push_back({xy[i], xy[i + 1]});
  return out;
}

absl::StatusOr<FaceSquare> FaceQuad(const std::vector<Point>& lm) {
  if (lm.size() != 68 && lm.size() != 5) {
    return absl::InvalidArgumentError(
        absl::StrCat("landmarks: give 68 points (dlib's) or 5 (eyes, nose, mouth corners), got ", lm.size()));
  }
  for (const Point& p : lm) {
    if (!std::isfinite(p.x) || !std::isfinite(p.y)) return absl::InvalidArgumentError("landmarks must be finite");
  }
  const bool full = lm.size() == 68;
  const Point eye_left = full ? Mean(lm, 36, 42) : lm[0];
  const Point eye_right = full ? Mean(lm, 42, 48) : lm[1];
  const Point mouth_left = full ? lm[48] : lm[3];
  const Point mouth_right = full ? lm[54] : lm[4];
  const Point eye_avg = Mul(Add(eye_left, eye_right), 0.5);
  const Point eye_to_eye = Sub(eye_right, eye_left);
  const Point mouth_avg = Mul(Add(mouth_left, mouth_right), 0.5);
  const Point eye_to_mouth = Sub(mouth_avg, eye_avg);
  // The oriented crop rectangle.
  Point x{eye_to_eye.x + eye_to_mouth.y, eye_to_eye.y - eye_to_mouth.x};
  const double norm = Hypot(x);
  const double half = std::max(Hypot(eye_to_eye) * 2.0, Hypot(eye_to_mouth) * 1.8);
  if (!(norm > 0) || !(half > 0)) {
    return absl::InvalidArgumentError("the landmarks are degenerate: the eyes and the mouth do not span a face");
  }
  x = Mul(Mul(x, 1.0 / norm), half);
  const Point y{-x.y, x.x};
  const Point c = Add(eye_avg, Mul(eye_to_mouth, 0.1));
  return FaceSquare{{Sub(Sub(c, x), y), Add(Sub(c, x), y), Add(Add(c, x), y), Sub(Add(c, x), y)}, Hypot(x) * 2};
}

absl::StatusOr<AlignedFace> AlignFace(const Rgb8Image& photo, const std::vector<Point>& lm, const FaceAlignOptions& o) {
  if (photo.width < 1 || photo.height < 1 ||
      photo.pixels.size() != static_cast<size_t>(photo.width) * photo.height * 3) {
    return absl::InvalidArgumentError("the photo is empty");
  }
  if (o.output_size < 8 || o.output_size > 4096 || o.transform_size < 8 || o.transform_size > 4096 ||
      o.output_size > o.transform_size) {
    return absl::InvalidArgumentError("alignment sizes must be in [8, 4096], the output at most the transform");
  }
  ASSIGN_OR_RETURN(const FaceSquare square, FaceQuad(lm));
  std::array<Point, 4> quad = square.quad;
  AlignedFace out;
  out.quad = quad;
  double qsize = square.qsize;
  Rgb8Image img = photo;

  // Shrink.
  const int shrink = static_cast<int>(std::floor(qsize / o.output_size * 0.5));
  if (shrink > 1) {
    const int rw = Rint(static_cast<double>(img.width) / shrink), rh = Rint(static_cast<double>(img.height) / shrink);
    img = clip::PilResize(img, std::max(rw, 1), std::max(rh, 1), clip::PilFilter::kLanczos);
    for (Point& p : quad) p = Mul(p, 1.0 / shrink);
    qsize /= shrink;
  }
  auto bounds = [&quad](double* x0, double* y0, double* x1, double* y1) {
    *x0 = *x1 = quad[0].x;
    *y0 = *y1 = quad[0].y;
    for (const Point& p : quad) {
      *x0 = std::min(*x0, p.x);
      *y0 = std::min(*y0, p.y);
      *x1 = std::max(*x1, p.x);
      *y1 = std::max(*y1, p.y);
    }
  };
  // Crop.
  const int border = std::max(Rint(qsize * 0.1), 3);
  double bx0, by0, bx1, by1;
  bounds(&bx0, &by0, &bx1, &by1);
  int crop[4] = {static_cast<int>(std::floor(bx0)), static_cast<int>(std::floor(by0)), static_cast<int>(std::ceil(bx1)),
                 static_cast<int>(std::ceil(by1))};
  crop[0] = std::max(crop[0] - border, 0);
  crop[1] = std::max(crop[1] - border, 0);
  crop[2] = std::min(crop[2] + border, img.width);
  crop[3] = std::min(crop[3] + border, img.height);
  if (crop[2] <= crop[0] || crop[3] <= crop[1]) {
    return absl::InvalidArgumentError("the face lies outside the photo");
  }
  if (crop[2] - crop[0] < img.width || crop[3] - crop[1] < img.height) {
    img = Crop(img, crop[0], crop[1], crop[2], crop[3]);
    for (Point& p : quad) p = Sub(p, Point{static_cast<double>(crop[0]), static_cast<double>(crop[1])});
  }
  // Pad.
  bounds(&bx0, &by0, &bx1, &by1);
  int pad[4] = {static_cast<int>(std::floor(bx0)), static_cast<int>(std::floor(by0)), static_cast<int>(std::ceil(bx1)),
                static_cast<int>(std::ceil(by1))};
  pad[0] = std::max(-pad[0] + border, 0);
  pad[1] = std::max(-pad[1] + border, 0);
  pad[2] = std::max(pad[2] - img.width + border, 0);
  pad[3] = std::max(pad[3] - img.height + border, 0);
  if (o.enable_padding && *std::max_element(pad, pad + 4) > border - 4) {
    const int least = std::max(Rint(qsize * 0.3), 1);
    for (int& p : pad) p = std::max(p, least);
    img = PadAndBlend(img, pad, qsize);
    for (Point& p : quad) p = Add(p, Point{static_cast<double>(pad[0]), static_cast<double>(pad[1])});
  }
  // Transform.
  for (Point& p : quad) p = Add(p, Point{0.5, 0.5});
  img = QuadTransform(img, o.transform_size, quad);
  if (o.output_size < o.transform_size) {
    img = clip::PilResize(img, o.output_size, o.output_size, clip::PilFilter::kLanczos);
  }
  out.image = std::move(img);
  return out;
}

}  // namespace ganserve::core::invert
