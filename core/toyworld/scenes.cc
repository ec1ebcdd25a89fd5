#include "core/toyworld/scenes.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <random>
#include <utility>

#include "absl/strings/str_cat.h"

namespace ganserve::core::toyworld {
namespace {

// ---------------------------------------------------------------------------------------
// Random draws and hashed noise: integer only, identical on every platform.

// Draws from std::mt19937_64's raw output (the engine is fully specified by the standard;
// its distributions are not).
class Draw {
 public:
  explicit Draw(uint64_t seed) : mt_(seed) {}
  // Uniform in [0, n), n >= 1: the top 32 bits scaled down (bias below n / 2^32).
  uint32_t Below(uint32_t n) { return static_cast<uint32_t>(((mt_() >> 32) * n) >> 32); }
  // Uniform in [lo, hi].
  int Range(int lo, int hi) { return lo + static_cast<int>(Below(static_cast<uint32_t>(hi - lo + 1))); }
  // True with probability p (53 random bits against p * 2^53, both exact doubles).
  bool Chance(double p) { return static_cast<double>(mt_() >> 11) < p * 9007199254740992.0; }

 private:
  std::mt19937_64 mt_;
};

// splitmix64's finaliser.
uint64_t Mix(uint64_t z) {
  z += 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

uint64_t Hash(uint64_t seed, int64_t a, int64_t b) {
  return Mix(seed ^ Mix(static_cast<uint64_t>(a) * 0x9e3779b185ebca87ULL + Mix(static_cast<uint64_t>(b))));
}

// An independent stream of `seed` for one purpose.
uint64_t SubSeed(uint64_t seed, uint64_t tag) { return Mix(seed ^ Mix(tag * 0xd6e8feb86659fd93ULL)); }

// ---------------------------------------------------------------------------------------
// Fixed-point arithmetic. Q16 fractions (kOne = 1.0); colours in Q8 (255 * kLevel = white).

constexpr int64_t kOne = 65536;
constexpr int64_t kUnitsPerPixel = 256;  // geometry resolution
constexpr int64_t kSub = 4;              // supersampling per axis
constexpr int64_t kLevel = 256;          // one 8-bit level in Q8
constexpr int64_t kHalfDiagonal = 192;   // > a pixel's half diagonal (181 units)

// sin of whole degrees 0..90 in Q16.
constexpr std::array<int32_t, 91> kSinQ16 = {
    0,     1144,  2287,  3430,  4572,  5712,  6850,  7987,  9121,  10252, 11380, 12505, 13626, 14742, 15855, 16962,
    18064, 19161, 20252, 21336, 22415, 23486, 24550, 25607, 26656, 27697, 28729, 29753, 30767, 31772, 32768, 33754,
    34729, 35693, 36647, 37590, 38521, 39441, 40348, 41243, 42126, 42995, 43852, 44695, 45525, 46341, 47143, 47930,
    48703, 49461, 50203, 50931, 51643, 52339, 53020, 53684, 54332, 54963, 55578, 56175, 56756, 57319, 57865, 58393,
    58903, 59396, 59870, 60326, 60764, 61183, 61584, 61966, 62328, 62672, 62997, 63303, 63589, 63856, 64104, 64332,
    64540, 64729, 64898, 65048, 65177, 65287, 65376, 65446, 65496, 65526, 65536};

int64_t SinQ16(int64_t degrees) {
  int64_t d = degrees % 360;
  if (d < 0) d += 360;
  if (d <= 90) return kSinQ16[d];
  if (d <= 180) return kSinQ16[180 - d];
  if (d <= 270) return -kSinQ16[d - 180];
  return -kSinQ16[360 - d];
}
int64_t CosQ16(int64_t degrees) { return SinQ16(degrees + 90); }

int64_t Clamp(int64_t v, int64_t lo, int64_t hi) { return std::min(std::max(v, lo), hi); }

int64_t FloorDiv(int64_t a, int64_t b) {
  int64_t q = a / b;
  if (a % b != 0 && ((a < 0) != (b < 0))) --q;
  return q;
}

// floor(sqrt(n)): the double square root is correctly rounded (IEEE 754), then corrected.
int64_t ISqrt(int64_t n) {
  if (n <= 0) return 0;
  auto r = static_cast<int64_t>(std::sqrt(static_cast<double>(n)));
  while (r * r > n) --r;
  while ((r + 1) * (r + 1) <= n) ++r;
  return r;
}

int64_t LerpInt(int64_t a, int64_t b, int64_t t) { return a + (b - a) * t / kOne; }

// Smooth value noise on a lattice of cu x cv units: Q16 in [0, 65536).
int64_t ValueNoise(uint64_t seed, int64_t u, int64_t v, int64_t cu, int64_t cv) {
  const int64_t iu = FloorDiv(u, cu);
  const int64_t iv = FloorDiv(v, cv);
  auto smooth = [](int64_t f) { return f * f / kOne * (3 * kOne - 2 * f) / kOne; };
  const int64_t fu = smooth((u - iu * cu) * kOne / cu);
  const int64_t fv = smooth((v - iv * cv) * kOne / cv);
  auto corner = [&](int64_t a, int64_t b) { return static_cast<int64_t>(Hash(seed, a, b) >> 48); };
  const int64_t top = LerpInt(corner(iu, iv), corner(iu + 1, iv), fu);
  const int64_t bottom = LerpInt(corner(iu, iv + 1), corner(iu + 1, iv + 1), fu);
  return LerpInt(top, bottom, fv);
}

// Value noise centred on 0 and scaled to +-amplitude.
int64_t SignedNoise(uint64_t seed, int64_t u, int64_t v, int64_t cu, int64_t cv, int64_t amplitude) {
  return (ValueNoise(seed, u, v, cu, cv) - kOne / 2) * amplitude / (kOne / 2);
}

struct Col {
  int64_t r = 0, g = 0, b = 0;
};
Col FromRgb(Rgb c) { return {c.r * kLevel, c.g * kLevel, c.b * kLevel}; }
Col Lerp(const Col& a, const Col& b, int64_t t) {
  return {LerpInt(a.r, b.r, t), LerpInt(a.g, b.g, t), LerpInt(a.b, b.b, t)};
}
Col Scale(const Col& a, int64_t f) { return {a.r * f / kOne, a.g * f / kOne, a.b * f / kOne}; }
Col Offset(const Col& a, int64_t d) { return {a.r + d, a.g + d, a.b + d}; }
uint8_t ToByte(int64_t q8) { return static_cast<uint8_t>(Clamp((q8 + kLevel / 2) / kLevel, 0, 255)); }
const Col kWhite{255 * kLevel, 255 * kLevel, 255 * kLevel};

// ---------------------------------------------------------------------------------------
// Geometry in integer units (kUnitsPerPixel per pixel).

struct Point {
  int64_t x = 0, y = 0;
};

struct Geometry {
  bool circle = false;
  int64_t cx = 0, cy = 0, r = 0;
  std::vector<Point> v;                    // polygon, clockwise on screen
  std::vector<int64_t> len;                // edge i: v[i] -> v[i + 1]
  int64_t x0 = 0, y0 = 0, x1 = 0, y1 = 0;  // bounding box

  bool Near(int64_t x, int64_t y, int64_t margin) const {
    return x >= x0 - margin && x <= x1 + margin && y >= y0 - margin && y <= y1 + margin;
  }

  bool Inside(int64_t x, int64_t y) const {
    if (circle) return (x - cx) * (x - cx) + (y - cy) * (y - cy) <= r * r;
    bool inside = false;
    for (size_t i = 0, j = v.size() - 1; i < v.size(); j = i++) {
      const Point& a = v[i];
      const Point& b = v[j];
      if ((a.y > y) != (b.y > y)) {
        const int64_t lhs = (x - a.x) * (b.y - a.y);
        const int64_t rhs = (y - a.y) * (b.x - a.x);
        if (b.y > a.y ? lhs < rhs : lhs > rhs) inside = !inside;
      }
    }
    return inside;
  }

  // Unsigned distance to the outline; a polygon's edges are extended by `overshoot` at
  // both ends (the crossing strokes of a sketch).
  int64_t EdgeDistance(int64_t x, int64_t y, int64_t overshoot = 0) const {
    if (circle) return std::abs(ISqrt((x - cx) * (x - cx) + (y - cy) * (y - cy)) - r);
    int64_t best = std::numeric_limits<int64_t>::max();
    for (size_t i = 0; i < v.size(); ++i) {
      const int64_t length = len[i];
      if (length == 0) continue;
      const Point& a = v[i];
      const Point& b = v[(i + 1) % v.size()];
      const int64_t ex = b.x - a.x;
      const int64_t ey = b.y - a.y;
      const int64_t ax = a.x - ex * overshoot / length;
      const int64_t ay = a.y - ey * overshoot / length;
      const int64_t px = x - ax;
      const int64_t py = y - ay;
      const int64_t along = (px * ex + py * ey) / length;
      int64_t d = 0;
      if (along <= 0) {
        d = ISqrt(px * px + py * py);
      } else if (along >= length + 2 * overshoot) {
        const int64_t qx = x - (b.x + ex * overshoot / length);
        const int64_t qy = y - (b.y + ey * overshoot / length);
        d = ISqrt(qx * qx + qy * qy);
      } else {
        d = std::abs(px * ey - py * ex) / length;
      }
      best = std::min(best, d);
    }
    return best;
  }

  // Negative inside.
  int64_t Signed(int64_t x, int64_t y) const {
    const int64_t d = EdgeDistance(x, y);
    return Inside(x, y) ? -d : d;
  }
};

Geometry MakeGeometry(const Shape& s, int64_t side) {
  Geometry g;
  // Fractions clamped to a range that keeps every product within 64 bits.
  auto units = [&](float f, double lo, double hi) {
    const double v = std::isfinite(f) ? std::clamp(static_cast<double>(f), lo, hi) : lo;
    return static_cast<int64_t>(std::llround(v * static_cast<double>(side)));
  };
  g.cx = units(s.cx, -2, 3);
  g.cy = units(s.cy, -2, 3);
  g.r = std::max<int64_t>(1, units(s.size, 0, 2));
  const float rotation = std::isfinite(s.rotation) ? std::fmod(s.rotation, 360.0f) : 0.0f;
  const int64_t rot = std::lround(rotation);
  // A point at `radius` in direction `degrees` (0 = up, clockwise).
  auto polar = [&](int64_t degrees, int64_t radius) {
    return Point{g.cx + radius * SinQ16(degrees) / kOne, g.cy - radius * CosQ16(degrees) / kOne};
  };
  switch (s.kind) {
    case ShapeKind::kCircle: g.circle = true; break;
    case ShapeKind::kSquare: {
      const int64_t c = CosQ16(rot);
      const int64_t sn = SinQ16(rot);
      for (const auto& [px, py] :
           std::array<std::pair<int64_t, int64_t>, 4>{{{-g.r, -g.r}, {g.r, -g.r}, {g.r, g.r}, {-g.r, g.r}}}) {
        g.v.push_back({g.cx + (px * c - py * sn) / kOne, g.cy + (px * sn + py * c) / kOne});
      }
      break;
    }
    case ShapeKind::kTriangle:
      for (int k = 0; k < 3; ++k) g.v.push_back(polar(rot + 120 * int64_t{k}, g.r));
      break;
    case ShapeKind::kStar: {
      const int64_t inner = g.r * 25033 / kOne;  // 0.382: the regular pentagram's ratio
      for (int k = 0; k < 10; ++k) g.v.push_back(polar(rot + 36 * int64_t{k}, k % 2 == 0 ? g.r : inner));
      break;
    }
  }
  if (g.circle) {
    g.x0 = g.cx - g.r;
    g.x1 = g.cx + g.r;
    g.y0 = g.cy - g.r;
    g.y1 = g.cy + g.r;
  } else {
    g.x0 = g.x1 = g.v[0].x;
    g.y0 = g.y1 = g.v[0].y;
    for (size_t i = 0; i < g.v.size(); ++i) {
      const Point& a = g.v[i];
      const Point& b = g.v[(i + 1) % g.v.size()];
      g.x0 = std::min(g.x0, a.x);
      g.x1 = std::max(g.x1, a.x);
      g.y0 = std::min(g.y0, a.y);
      g.y1 = std::max(g.y1, a.y);
      g.len.push_back(ISqrt((b.x - a.x) * (b.x - a.x) + (b.y - a.y) * (b.y - a.y)));
    }
  }
  return g;
}

// ---------------------------------------------------------------------------------------
// Rendering.

struct Canvas {
  int size = 64;
  int64_t side = 64 * kUnitsPerPixel;
  uint64_t seed = 0;
  // A length given in hundredths of a pixel of the 64 px image (textures and strokes scale
  // with the image).
  int64_t Ref(int64_t hundredths) const { return side * hundredths / 6400; }
  int64_t Centre(int i) const { return i * kUnitsPerPixel + kUnitsPerPixel / 2; }
  int64_t SubSample(int64_t i, int64_t k) const {
    return i * kUnitsPerPixel + (2 * k + 1) * kUnitsPerPixel / (2 * kSub);
  }
};

// Fraction (Q16) of the pixel's subsamples for which inside(x, y) holds; `centre_distance`
// (signed, to the tested boundary) settles pixels away from it without sampling.
template <typename Inside>
int64_t Coverage(const Canvas& c, int x, int y, int64_t centre_distance, const Inside& inside) {
  if (centre_distance >= kHalfDiagonal) return 0;
  if (centre_distance <= -kHalfDiagonal) return kOne;
  int n = 0;
  for (int j = 0; j < kSub; ++j) {
    for (int i = 0; i < kSub; ++i) n += inside(c.SubSample(x, i), c.SubSample(y, j)) ? 1 : 0;
  }
  return n * kOne / (kSub * kSub);
}

// The backdrop's tone with its gradient or vignette (photo and painting).
Col Backdrop(const Background& bg, const Canvas& c, int64_t x, int64_t y) {
  int64_t f = kOne;
  if (bg.kind == BackgroundKind::kGradient) {
    f = kOne + kOne / 10 - (kOne / 5) * y / c.side;  // lighter at the top, darker below
  } else if (bg.kind == BackgroundKind::kVignette) {
    const int64_t h = c.side / 2;
    const int64_t r2 = ((x - h) * (x - h) + (y - h) * (y - h)) * kOne / (2 * h * h);  // 1 at the corners
    f = kOne + kOne / 20 - r2 * 30 / 100;
  }
  return Scale(FromRgb(bg.tone), f);
}

// Lighting from the top left, in Q16 [-1, 1]: +1 at the shape's top-left extreme.
int64_t Light(const Geometry& g, int64_t x, int64_t y) {
  return Clamp((-(x - g.cx) - (y - g.cy)) * kOne / (2 * g.r), -kOne, kOne);
}

void Put(Rgb8Image* image, int x, int y, const Col& col) {
  uint8_t* p = image->pixels.data() + (static_cast<size_t>(y) * image->width + x) * 3;
  p[0] = ToByte(col.r);
  p[1] = ToByte(col.g);
  p[2] = ToByte(col.b);
}

void RenderPhoto(const Scene& scene, const std::vector<Geometry>& geo, const Canvas& c, Rgb8Image* image) {
  const int64_t shadow_dx = c.Ref(170);
  const int64_t shadow_dy = c.Ref(250);
  const int64_t blur = c.Ref(260);
  const int64_t rim = c.Ref(170);
  const uint64_t grain = SubSeed(c.seed, 1);
  for (int y = 0; y < c.size; ++y) {
    for (int x = 0; x < c.size; ++x) {
      const int64_t xc = c.Centre(x);
      const int64_t yc = c.Centre(y);
      Col px = Backdrop(scene.background, c, xc, yc);
      // Soft drop shadows on the backdrop.
      int64_t shadow = 0;
      for (const Geometry& g : geo) {
        const int64_t sx = xc - shadow_dx;
        const int64_t sy = yc - shadow_dy;
        if (!g.Near(sx, sy, blur)) continue;
        const int64_t d = g.Signed(sx, sy);
        shadow = std::max(shadow, Clamp((blur - d) * kOne / (2 * blur), 0, kOne) * 32 / 100);
      }
      px = Scale(px, kOne - shadow);
      for (size_t i = 0; i < geo.size(); ++i) {
        const Geometry& g = geo[i];
        if (!g.Near(xc, yc, kHalfDiagonal)) continue;
        const int64_t d = g.Signed(xc, yc);
        const int64_t cover = Coverage(c, x, y, d, [&](int64_t sx, int64_t sy) { return g.Inside(sx, sy); });
        if (cover == 0) continue;
        Col fill = FromRgb(CanonicalRgb(scene.shapes[i].colour));
        const int64_t light = Light(g, xc, yc);
        fill = light > 0 ? Lerp(fill, kWhite, light * 28 / 100) : Scale(fill, kOne + light * 35 / 100);
        // A soft highlight up and left of the centre.
        const int64_t hx = xc - (g.cx - g.r * 35 / 100);
        const int64_t hy = yc - (g.cy - g.r * 40 / 100);
        const int64_t hr = g.r * 45 / 100;
        const int64_t q = kOne - (hx * hx + hy * hy) * kOne / std::max<int64_t>(1, hr * hr);
        if (q > 0) fill = Lerp(fill, kWhite, q * q / kOne * 40 / 100);
        // A slightly darker rim.
        const int64_t depth = std::max<int64_t>(0, -d);
        if (depth < rim) fill = Scale(fill, kOne - (rim - depth) * kOne / rim * 20 / 100);
        px = Lerp(px, fill, cover);
      }
      const uint64_t h = Hash(grain, x, y);
      const auto n = static_cast<int64_t>((h & 15) + ((h >> 4) & 15)) - 15;  // triangular, +-15
      Put(image, x, y, Offset(px, n * kLevel * 3 / 15));
    }
  }
}

void RenderPencilSketch(const Scene& scene, const std::vector<Geometry>& geo, const Canvas& c, Rgb8Image* image) {
  const Col paper{247 * kLevel, 245 * kLevel, 238 * kLevel};
  const Col graphite{54 * kLevel, 54 * kLevel, 54 * kLevel};
  const Col hatch_grey{100 * kLevel, 100 * kLevel, 100 * kLevel};
  const int64_t spacing = c.Ref(300);
  const int64_t hatch_half_width = c.Ref(48);
  const std::array<int64_t, 2> stroke_half_width = {c.Ref(52), c.Ref(38)};
  const std::array<int64_t, 2> wobble = {c.Ref(40), c.Ref(75)};
  const std::array<Point, 2> stroke_shift = {Point{0, 0}, Point{c.Ref(45), -c.Ref(40)}};
  const std::array<int64_t, 2> stroke_alpha = {kOne * 85 / 100, kOne * 50 / 100};
  const uint64_t paper_seed = SubSeed(c.seed, 2);
  struct Hatch {
    int64_t cos = 0, sin = 0, phase = 0;
    Col colour;
    std::array<int64_t, 2> overshoot{};
  };
  std::vector<Hatch> hatch(geo.size());
  for (size_t i = 0; i < geo.size(); ++i) {
    const uint64_t h = Hash(c.seed, 7, static_cast<int64_t>(i));
    const int64_t angle = (i % 2 == 0 ? 45 : 135) + static_cast<int64_t>(h % 21) - 10;
    hatch[i].cos = CosQ16(angle);
    hatch[i].sin = SinQ16(angle);
    hatch[i].phase = static_cast<int64_t>((h >> 8) % static_cast<uint64_t>(spacing));
    // The faint colour: grey hatching tinted a third of the way toward the shape's colour.
    hatch[i].colour = Lerp(hatch_grey, FromRgb(CanonicalRgb(scene.shapes[i].colour)), kOne * 35 / 100);
    // Crossing strokes at the corners; a star's short edges only just cross.
    const ShapeKind kind = scene.shapes[i].kind;
    const int64_t r = geo[i].r;
    if (kind == ShapeKind::kSquare || kind == ShapeKind::kTriangle) hatch[i].overshoot = {r * 10 / 100, r * 17 / 100};
    if (kind == ShapeKind::kStar) hatch[i].overshoot = {r * 3 / 100, r * 6 / 100};
  }
  for (int y = 0; y < c.size; ++y) {
    for (int x = 0; x < c.size; ++x) {
      const int64_t xc = c.Centre(x);
      const int64_t yc = c.Centre(y);
      const uint64_t h = Hash(paper_seed, x, y);
      const int64_t grain = (static_cast<int64_t>((h & 7) + ((h >> 3) & 7)) - 7) * kLevel * 3 / 7;
      Col px = Offset(paper, grain + SignedNoise(paper_seed, xc, yc, c.Ref(1200), c.Ref(1200), 4 * kLevel));
      for (size_t i = 0; i < geo.size(); ++i) {
        const Geometry& g = geo[i];
        const Hatch& hs = hatch[i];
        const int64_t reach = hs.overshoot[1] + c.Ref(300) + kHalfDiagonal;
        if (!g.Near(xc, yc, reach)) continue;
        const uint64_t shape_seed = SubSeed(c.seed, 100 + i);
        // Hatching: parallel lines inside the shape, each ending a little before or after the
        // outline, with pressure that fades and breaks along the line.
        const int64_t d = g.Signed(xc, yc);
        int64_t hatch_cover = 0;
        if (d < c.Ref(80) + kHalfDiagonal) {
          const bool exact = std::abs(d) < c.Ref(100) + 2 * kHalfDiagonal;
          for (int j = 0; j < kSub; ++j) {
            for (int k = 0; k < kSub; ++k) {
              const int64_t sx = c.SubSample(x, k);
              const int64_t sy = c.SubSample(y, j);
              const int64_t across = (sx * hs.cos + sy * hs.sin) / kOne + hs.phase;
              const int64_t line = FloorDiv(across, spacing);
              if (std::abs(across - line * spacing - spacing / 2) > hatch_half_width) continue;
              const uint64_t lh = Hash(shape_seed, 11, line);
              const int64_t limit = c.Ref(static_cast<int64_t>(lh % 150) - 80);
              if ((exact ? g.Signed(sx, sy) : d) > limit) continue;
              const int64_t along = (-sx * hs.sin + sy * hs.cos) / kOne;
              const int64_t pressure = ValueNoise(shape_seed + 1, along, line, c.Ref(420), 1);
              if (pressure < kOne * 28 / 100) continue;
              hatch_cover += kOne / 2 + pressure / 2;
            }
          }
          hatch_cover /= kSub * kSub;
        }
        if (hatch_cover > 0) px = Lerp(px, hs.colour, hatch_cover * 70 / 100);
        // The outline: two wobbly strokes, the second offset and lighter.
        for (int s = 0; s < 2; ++s) {
          const uint64_t ss = SubSeed(shape_seed, 20 + s);
          const int64_t wx = SignedNoise(ss, xc, yc, c.Ref(700), c.Ref(700), wobble[s]) + stroke_shift[s].x;
          const int64_t wy = SignedNoise(ss + 1, xc, yc, c.Ref(700), c.Ref(700), wobble[s]) + stroke_shift[s].y;
          const int64_t ed = g.EdgeDistance(xc + wx, yc + wy, hs.overshoot[s]);
          const int64_t cover = Coverage(c, x, y, ed - stroke_half_width[s], [&](int64_t sx, int64_t sy) {
            return g.EdgeDistance(sx + wx, sy + wy, hs.overshoot[s]) <= stroke_half_width[s];
          });
          if (cover == 0) continue;
          const int64_t pressure = kOne * 6 / 10 + ValueNoise(ss + 2, xc, yc, c.Ref(500), c.Ref(500)) * 4 / 10;
          px = Lerp(px, graphite, cover * pressure / kOne * stroke_alpha[s] / kOne);
        }
      }
      Put(image, x, y, px);
    }
  }
}

void RenderPainting(const Scene& scene, const std::vector<Geometry>& geo, const Canvas& c, Rgb8Image* image) {
  const uint64_t bg_seed = SubSeed(c.seed, 3);
  const int64_t bg_angle = static_cast<int64_t>(Hash(bg_seed, 0, 0) % 180);
  const int64_t bg_cos = CosQ16(bg_angle);
  const int64_t bg_sin = SinQ16(bg_angle);
  const int64_t edge_noise = c.Ref(95);
  const int64_t edge_band = c.Ref(140);
  struct Brush {
    int64_t cos = 0, sin = 0, cos2 = 0, sin2 = 0;
  };
  std::vector<Brush> brush(geo.size());
  for (size_t i = 0; i < geo.size(); ++i) {
    const int64_t angle = static_cast<int64_t>(Hash(c.seed, 9, static_cast<int64_t>(i)) % 180);
    brush[i] = {CosQ16(angle), SinQ16(angle), CosQ16(angle + 70), SinQ16(angle + 70)};
  }
  for (int y = 0; y < c.size; ++y) {
    for (int x = 0; x < c.size; ++x) {
      const int64_t xc = c.Centre(x);
      const int64_t yc = c.Centre(y);
      // Canvas: long brush streaks, broad blotches, colour mottling and a faint weave.
      Col px = Backdrop(scene.background, c, xc, yc);
      {
        const int64_t u = (xc * bg_cos + yc * bg_sin) / kOne;
        const int64_t v = (-xc * bg_sin + yc * bg_cos) / kOne;
        int64_t f = kOne + SignedNoise(bg_seed + 1, u, v, c.Ref(1600), c.Ref(220), kOne * 8 / 100);
        f += SignedNoise(bg_seed + 2, xc, yc, c.Ref(450), c.Ref(450), kOne * 6 / 100);
        px = Scale(px, f);
        px.r += SignedNoise(bg_seed + 3, xc, yc, c.Ref(800), c.Ref(800), 5 * kLevel);
        px.g += SignedNoise(bg_seed + 4, xc, yc, c.Ref(800), c.Ref(800), 5 * kLevel);
        px.b += SignedNoise(bg_seed + 5, xc, yc, c.Ref(800), c.Ref(800), 5 * kLevel);
        const int64_t weave = (FloorDiv(xc, c.Ref(100)) + FloorDiv(yc, c.Ref(100))) % 2 == 0 ? 1 : -1;
        px = Offset(px, weave * 2 * kLevel);
      }
      for (size_t i = 0; i < geo.size(); ++i) {
        const Geometry& g = geo[i];
        if (!g.Near(xc, yc, edge_noise + kHalfDiagonal)) continue;
        const uint64_t shape_seed = SubSeed(c.seed, 200 + i);
        // A rough, brushed edge: the outline moved in and out by smooth noise.
        const int64_t wobble = SignedNoise(shape_seed, xc, yc, c.Ref(280), c.Ref(280), edge_noise);
        const int64_t d = g.Signed(xc, yc);
        const int64_t cover =
            Coverage(c, x, y, d - wobble, [&](int64_t sx, int64_t sy) { return g.Signed(sx, sy) <= wobble; });
        if (cover == 0) continue;
        const Brush& b = brush[i];
        const int64_t u = (xc * b.cos + yc * b.sin) / kOne;
        const int64_t v = (-xc * b.sin + yc * b.cos) / kOne;
        const int64_t u2 = (xc * b.cos2 + yc * b.sin2) / kOne;
        const int64_t v2 = (-xc * b.sin2 + yc * b.cos2) / kOne;
        int64_t f = kOne + SignedNoise(shape_seed + 1, u, v, c.Ref(1000), c.Ref(140), kOne * 26 / 100);
        f += SignedNoise(shape_seed + 2, u2, v2, c.Ref(700), c.Ref(200), kOne * 9 / 100);
        f += Light(g, xc, yc) * 12 / 100;
        // The painted contour: darker paint along the edge.
        const int64_t depth = std::max<int64_t>(0, wobble - d);
        if (depth < edge_band) f -= (edge_band - depth) * kOne / edge_band * 30 / 100;
        Col fill = Scale(FromRgb(CanonicalRgb(scene.shapes[i].colour)), f);
        fill.r += SignedNoise(shape_seed + 3, xc, yc, c.Ref(500), c.Ref(500), 12 * kLevel);
        fill.g += SignedNoise(shape_seed + 4, xc, yc, c.Ref(500), c.Ref(500), 12 * kLevel);
        fill.b += SignedNoise(shape_seed + 5, xc, yc, c.Ref(500), c.Ref(500), 12 * kLevel);
        px = Lerp(px, fill, cover);
      }
      Put(image, x, y, px);
    }
  }
}

// ---------------------------------------------------------------------------------------
// Captions.

std::vector<std::string> StyleForms(Style style) {
  switch (style) {
    case Style::kPhoto: return {"photo", "photograph"};
    case Style::kPencilSketch: return {"pencil sketch", "pencil drawing"};
    case Style::kPainting: return {"painting", "oil painting"};
  }
  return {"picture"};
}

std::string ShapePhrase(const Shape& s) { return absl::StrCat(Name(s.colour), " ", Name(s.kind)); }

// Noun phrases for the scene's shapes, canonical first.
std::vector<std::string> ObjectForms(const Scene& scene) {
  if (scene.shapes.empty()) return {"nothing", "an empty background", "no shape"};
  if (scene.shapes.size() == 1) {
    const std::string p = ShapePhrase(scene.shapes[0]);
    return {WithArticle(p), "one " + p, "a single " + p};
  }
  const Shape& a = scene.shapes[0];
  const Shape& b = scene.shapes[1];
  if (a.kind == b.kind && a.colour == b.colour) {
    const absl::string_view colour = Name(a.colour);
    const absl::string_view plural = Plural(a.kind);
    return {absl::StrCat("two ", colour, " ", plural), absl::StrCat("a pair of ", colour, " ", plural),
            absl::StrCat("two ", plural, ", both ", colour)};
  }
  const std::string pa = WithArticle(ShapePhrase(a));
  const std::string pb = WithArticle(ShapePhrase(b));
  return {pa + " and " + pb, pb + " and " + pa, pa + " next to " + pb, pa + " beside " + pb};
}

}  // namespace

// ---------------------------------------------------------------------------------------

std::vector<ShapeKind> AllShapeKinds() {
  return {ShapeKind::kCircle, ShapeKind::kSquare, ShapeKind::kTriangle, ShapeKind::kStar};
}
std::vector<ColourName> AllColours() {
  return {ColourName::kRed,    ColourName::kGreen,  ColourName::kBlue,
          ColourName::kYellow, ColourName::kPurple, ColourName::kOrange};
}
std::vector<Style> AllStyles() { return {Style::kPhoto, Style::kPencilSketch, Style::kPainting}; }

absl::string_view Name(ShapeKind kind) {
  switch (kind) {
    case ShapeKind::kCircle: return "circle";
    case ShapeKind::kSquare: return "square";
    case ShapeKind::kTriangle: return "triangle";
    case ShapeKind::kStar: return "star";
  }
  return "shape";
}
absl::string_view Plural(ShapeKind kind) {
  switch (kind) {
    case ShapeKind::kCircle: return "circles";
    case ShapeKind::kSquare: return "squares";
    case ShapeKind::kTriangle: return "triangles";
    case ShapeKind::kStar: return "stars";
  }
  return "shapes";
}
absl::string_view Name(ColourName colour) {
  switch (colour) {
    case ColourName::kRed: return "red";
    case ColourName::kGreen: return "green";
    case ColourName::kBlue: return "blue";
    case ColourName::kYellow: return "yellow";
    case ColourName::kPurple: return "purple";
    case ColourName::kOrange: return "orange";
  }
  return "grey";
}
absl::string_view Name(Style style) {
  switch (style) {
    case Style::kPhoto: return "photo";
    case Style::kPencilSketch: return "pencil_sketch";
    case Style::kPainting: return "painting";
  }
  return "unknown";
}
absl::string_view Name(BackgroundKind kind) {
  switch (kind) {
    case BackgroundKind::kPlain: return "plain";
    case BackgroundKind::kGradient: return "gradient";
    case BackgroundKind::kVignette: return "vignette";
  }
  return "plain";
}
absl::string_view StylePhrase(Style style) {
  switch (style) {
    case Style::kPhoto: return "photo";
    case Style::kPencilSketch: return "pencil sketch";
    case Style::kPainting: return "painting";
  }
  return "picture";
}

std::vector<std::string> ShapeNames() {
  std::vector<std::string> out;
  for (ShapeKind k : AllShapeKinds()) out.emplace_back(Name(k));
  return out;
}
std::vector<std::string> ColourNames() {
  std::vector<std::string> out;
  for (ColourName c : AllColours()) out.emplace_back(Name(c));
  return out;
}
std::vector<std::string> StyleNames() {
  std::vector<std::string> out;
  for (Style s : AllStyles()) out.emplace_back(Name(s));
  return out;
}
std::vector<std::string> StylePhrases() {
  std::vector<std::string> out;
  for (Style s : AllStyles()) out.emplace_back(StylePhrase(s));
  return out;
}
std::vector<std::string> StyleWords(Style style) {
  switch (style) {
    case Style::kPhoto: return {"photo", "photograph"};
    case Style::kPencilSketch: return {"pencil", "sketch", "drawing"};
    case Style::kPainting: return {"painting", "painted", "oil"};
  }
  return {};
}

Rgb CanonicalRgb(ColourName colour) {
  switch (colour) {
    case ColourName::kRed: return {215, 38, 38};
    case ColourName::kGreen: return {40, 165, 60};
    case ColourName::kBlue: return {40, 85, 215};
    case ColourName::kYellow: return {240, 205, 30};
    case ColourName::kPurple: return {140, 60, 190};
    case ColourName::kOrange: return {245, 135, 25};
  }
  return {128, 128, 128};
}

std::string WithArticle(absl::string_view phrase) {
  if (phrase.empty()) return "";
  if (phrase.substr(0, 2) == "a " || phrase.substr(0, 3) == "an ") return std::string(phrase);
  const char c = phrase[0];
  const bool vowel = c == 'a' || c == 'e' || c == 'i' || c == 'o' || c == 'u';
  return absl::StrCat(vowel ? "an " : "a ", phrase);
}

std::optional<ShapeKind> ShapeKindFromName(absl::string_view name) {
  for (ShapeKind k : AllShapeKinds()) {
    if (Name(k) == name) return k;
  }
  return std::nullopt;
}
std::optional<ColourName> ColourFromName(absl::string_view name) {
  for (ColourName c : AllColours()) {
    if (Name(c) == name) return c;
  }
  return std::nullopt;
}
std::optional<Style> StyleFromName(absl::string_view name) {
  for (Style s : AllStyles()) {
    if (Name(s) == name || StylePhrase(s) == name) return s;
  }
  return std::nullopt;
}

uint64_t SceneSeed(uint64_t base_seed, uint64_t index) { return Mix(Mix(base_seed) + index); }
uint64_t NoiseSeed(uint64_t base_seed, uint64_t index) { return Mix(Mix(base_seed ^ 0x6a09e667f3bcc909ULL) + index); }

Scene RandomScene(uint64_t seed, const SceneOptions& options) {
  const std::vector<Style> styles = options.styles.empty() ? AllStyles() : options.styles;
  const std::vector<ShapeKind> kinds = options.kinds.empty() ? AllShapeKinds() : options.kinds;
  const std::vector<ColourName> colours = options.colours.empty() ? AllColours() : options.colours;
  const int lo = std::clamp(options.min_shapes, 1, 2);
  const int hi = std::clamp(options.max_shapes, lo, 2);
  // Neutral tones: warm white, cool light grey, cream, mid grey, slate, charcoal.
  static constexpr std::array<Rgb, 6> kTones = {Rgb{232, 229, 224}, Rgb{205, 209, 214}, Rgb{226, 216, 196},
                                                Rgb{168, 166, 160}, Rgb{112, 116, 124}, Rgb{62, 62, 66}};
  static constexpr std::array<BackgroundKind, 3> kBackgrounds = {BackgroundKind::kPlain, BackgroundKind::kGradient,
                                                                 BackgroundKind::kVignette};

  Draw draw(seed);
  Scene scene;
  scene.style = styles[draw.Below(static_cast<uint32_t>(styles.size()))];
  scene.background.kind = kBackgrounds[draw.Below(kBackgrounds.size())];
  scene.background.tone = kTones[draw.Below(kTones.size())];
  const int count = draw.Range(lo, hi);
  if (options.empty_probability > 0 && draw.Chance(options.empty_probability)) return scene;
  for (int i = 0; i < count; ++i) {
    Shape s;
    if (i == 1 && draw.Chance(options.identical_pair_probability)) {
      s.kind = scene.shapes[0].kind;
      s.colour = scene.shapes[0].colour;
    } else {
      s.kind = kinds[draw.Below(static_cast<uint32_t>(kinds.size()))];
      s.colour = colours[draw.Below(static_cast<uint32_t>(colours.size()))];
    }
    s.rotation = s.kind == ShapeKind::kCircle ? 0.0f : static_cast<float>(draw.Range(-20, 20));
    scene.shapes.push_back(s);
  }

  // Sizes and positions in 1/1024 of the image side (exact as floats).
  constexpr int kQ = 1024;
  constexpr int kMargin = 20;
  std::vector<int> size_q(count);
  for (int i = 0; i < count; ++i) size_q[i] = count == 1 ? draw.Range(205, 307) : draw.Range(123, 184);
  // How far a shape reaches from its centre (a square rotated by up to 20 degrees: 1.29 s).
  auto extent = [&](int i) { return scene.shapes[i].kind == ShapeKind::kSquare ? size_q[i] * 13 / 10 : size_q[i]; };
  std::vector<int> cx(count);
  std::vector<int> cy(count);
  for (int attempt = 0;; ++attempt) {
    if (attempt > 0 && attempt % 32 == 0) {
      for (int& s : size_q) s = s * 9 / 10;  // crowded: shrink and try again
    }
    for (int i = 0; i < count; ++i) {
      const int e = extent(i) + kMargin;
      cx[i] = draw.Range(e, kQ - e);
      cy[i] = draw.Range(e, kQ - e);
    }
    if (count == 1) break;
    const int64_t dx = cx[1] - cx[0];
    const int64_t dy = cy[1] - cy[0];
    const int64_t apart = static_cast<int64_t>(extent(0) + extent(1)) * 95 / 100;
    if (dx * dx + dy * dy >= apart * apart) break;
  }
  for (int i = 0; i < count; ++i) {
    scene.shapes[i].cx = static_cast<float>(cx[i]) / kQ;
    scene.shapes[i].cy = static_cast<float>(cy[i]) / kQ;
    scene.shapes[i].size = static_cast<float>(size_q[i]) / kQ;
  }
  return scene;
}

Rgb8Image RenderScene(const Scene& scene, int size, uint64_t noise_seed) {
  Canvas c;
  c.size = std::clamp(size, 8, 1024);
  c.side = c.size * kUnitsPerPixel;
  c.seed = noise_seed;
  std::vector<Geometry> geo;
  geo.reserve(scene.shapes.size());
  for (const Shape& s : scene.shapes) geo.push_back(MakeGeometry(s, c.side));
  Rgb8Image image{c.size, c.size, std::vector<uint8_t>(static_cast<size_t>(c.size) * c.size * 3)};
  switch (scene.style) {
    case Style::kPhoto: RenderPhoto(scene, geo, c, &image); break;
    case Style::kPencilSketch: RenderPencilSketch(scene, geo, c, &image); break;
    case Style::kPainting: RenderPainting(scene, geo, c, &image); break;
  }
  return image;
}

std::vector<std::string> Captions(const Scene& scene, uint64_t seed, int count) {
  std::vector<std::string> all;
  for (const std::string& s : StyleForms(scene.style)) {
    const std::string style = WithArticle(s);
    for (const std::string& o : ObjectForms(scene)) {
      all.push_back(absl::StrCat(style, " of ", o));
      all.push_back(absl::StrCat(o, " in ", style));
      all.push_back(absl::StrCat(style, " showing ", o));
      all.push_back(absl::StrCat(o, ", ", s, " style"));
    }
  }
  Draw draw(seed);
  for (size_t i = all.size() - 1; i > 0; --i) {
    std::swap(all[i], all[draw.Below(static_cast<uint32_t>(i + 1))]);
  }
  std::vector<std::string> out;
  out.reserve(std::max(count, 0));
  for (int i = 0; i < count; ++i) out.push_back(all[i % all.size()]);
  return out;
}

std::string Describe(const Scene& scene) {
  return absl::StrCat(WithArticle(StylePhrase(scene.style)), " of ", ObjectForms(scene).front());
}

}  // namespace ganserve::core::toyworld
