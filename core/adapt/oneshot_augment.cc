#include "core/adapt/oneshot_augment.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <tuple>
#include <vector>

namespace ganserve::core::adapt {
namespace {

// math.radians multiplies by this constant (Python's Py_MATH_PI / 180).
constexpr double kDegToRad = 3.14159265358979323846 / 180.0;
// torchvision's grids sample at pixel centres.
constexpr double kHalfPixel = 0.5;
// grid_sampler's enums: interpolation bilinear 0, nearest 1; padding zeros 0.
constexpr int64_t kBilinear = 0;
constexpr int64_t kNearest = 1;
constexpr int64_t kZerosPadding = 0;

// Python's round(): halves go to the even neighbour.
double RoundHalfEven(double x) {
  const double r = std::round(x);
  if (std::fabs(x - std::trunc(x)) == 0.5) return 2.0 * std::round(x / 2.0);
  return r;
}

at::ScalarType GridType(const at::Tensor& img) {
  TORCH_CHECK(img.is_floating_point(), "augmentations take a floating-point image, got ", img.scalar_type());
  return img.scalar_type();
}

void CheckImage(const at::Tensor& img, bool rgb) {
  TORCH_CHECK(img.dim() == 4, "augmentations take [N, C, H, W] images, got ", img.sizes());
  TORCH_CHECK(!rgb || img.size(1) == 3, "colour augmentations take 3 channels, got ", img.size(1));
}

// A small parameter tensor (theta, scales) in the grid's dtype on the image's device: the
// doubles round to the dtype as torch.tensor(list, dtype=...) rounds them.
at::Tensor SmallTensor(const std::vector<double>& values, at::ScalarType dtype, const at::Device& device) {
  return at::tensor(values, at::TensorOptions().dtype(dtype)).to(device);
}

// [1, oh, ow, 3] of (x, y, 1), x running over `ow` points from x0 in steps of one (a
// float32 linspace, as torchvision's), y likewise from y0.
at::Tensor BaseGrid(int64_t oh, int64_t ow, double x0, double y0, at::ScalarType dtype, const at::Device& device) {
  at::Tensor base = at::empty({1, oh, ow, 3}, at::TensorOptions().dtype(dtype).device(device));
  const auto lin = at::TensorOptions().device(device);  // the default dtype, as torch.linspace
  base.select(3, 0).copy_(at::linspace(x0, x0 + static_cast<double>(ow) - 1.0, ow, lin));
  base.select(3, 1).copy_(at::linspace(y0, y0 + static_cast<double>(oh) - 1.0, oh, lin).unsqueeze(-1));
  base.select(3, 2).fill_(1);
  return base;
}

// The normalised sampling grid of the inverse affine `m` for an h x w image.
at::Tensor AffineGrid(const std::array<double, 6>& m, int64_t h, int64_t w, at::ScalarType dtype,
                      const at::Device& device) {
  const at::Tensor theta = SmallTensor({m.begin(), m.end()}, dtype, device).reshape({1, 2, 3});
  // Centred pixel coordinates: -w/2 + 0.5 ... w/2 - 0.5.
  const double x0 = -static_cast<double>(w) * 0.5 + kHalfPixel;
  const double y0 = -static_cast<double>(h) * 0.5 + kHalfPixel;
  const at::Tensor base = BaseGrid(h, w, x0, y0, dtype, device);
  const at::Tensor rescaled =
      theta.transpose(1, 2) / SmallTensor({0.5 * static_cast<double>(w), 0.5 * static_cast<double>(h)}, dtype, device);
  return base.view({1, h * w, 3}).bmm(rescaled).view({1, h, w, 2});
}

// The normalised sampling grid of the perspective coefficients `c` for an h x w image.
at::Tensor PerspectiveGrid(const std::array<double, 8>& c, int64_t h, int64_t w, at::ScalarType dtype,
                           const at::Device& device) {
  const at::Tensor theta1 = SmallTensor({c[0], c[1], c[2], c[3], c[4], c[5]}, dtype, device).reshape({1, 2, 3});
  const at::Tensor theta2 = SmallTensor({c[6], c[7], 1.0, c[6], c[7], 1.0}, dtype, device).reshape({1, 2, 3});
  const at::Tensor base = BaseGrid(h, w, kHalfPixel, kHalfPixel, dtype, device).view({1, h * w, 3});
  const at::Tensor rescaled1 =
      theta1.transpose(1, 2) / SmallTensor({0.5 * static_cast<double>(w), 0.5 * static_cast<double>(h)}, dtype, device);
  const at::Tensor numerator = base.bmm(rescaled1);
  const at::Tensor denominator = base.bmm(theta2.transpose(1, 2));
  return (numerator / denominator - 1.0).view({1, h, w, 2});
}

// One grid for the whole batch (torchvision's single parameter draw).
at::Tensor BatchGrid(const at::Tensor& grid, int64_t n) {
  return n > 1 ? grid.expand({n, grid.size(1), grid.size(2), grid.size(3)}) : grid;
}

// Luma with ITU-R 601-2 weights, [N, 1, H, W].
at::Tensor Grayscale(const at::Tensor& img) {
  const std::vector<at::Tensor> rgb = img.unbind(-3);
  return (rgb[0] * 0.2989 + rgb[1] * 0.587 + rgb[2] * 0.114).to(img.scalar_type()).unsqueeze(-3);
}

// ratio * a + (1 - ratio) * b, clamped to a float image's range [0, 1] (the clamp is
// torchvision's, applied whatever the input's range).
at::Tensor Blend(const at::Tensor& a, const at::Tensor& b, double ratio) {
  return (a * ratio + b * (1.0 - ratio)).clamp(0.0, 1.0);
}

// RGB -> HSV without clamping, H in [0, 1); grey pixels get H = S = 0 without dividing
// by zero.
at::Tensor RgbToHsv(const at::Tensor& img) {
  const std::vector<at::Tensor> rgb = img.unbind(-3);
  const at::Tensor& r = rgb[0];
  const at::Tensor& g = rgb[1];
  const at::Tensor& b = rgb[2];
  const at::Tensor maxc = std::get<0>(at::max(img, -3));
  const at::Tensor minc = std::get<0>(at::min(img, -3));
  const at::Tensor grey = maxc == minc;
  const at::Tensor chroma = maxc - minc;
  const at::Tensor ones = at::ones_like(maxc);
  const at::Tensor s = chroma / at::where(grey, ones, maxc);
  const at::Tensor divisor = at::where(grey, ones, chroma);
  const at::Tensor rc = (maxc - r) / divisor;
  const at::Tensor gc = (maxc - g) / divisor;
  const at::Tensor bc = (maxc - b) / divisor;
  const at::Tensor red_max = maxc == r;
  const at::Tensor green_max = (maxc == g).logical_and(maxc != r);
  const at::Tensor blue_max = (maxc != g).logical_and(maxc != r);
  const at::Tensor h = red_max * (bc - gc) + green_max * (rc + 2.0 - bc) + blue_max * (gc + 4.0 - rc);
  return at::stack({at::fmod(h / 6.0 + 1.0, 1.0), s, maxc}, -3);
}

// HSV -> RGB by sector; p, q and t are clamped to [0, 1], V is passed through as is.
at::Tensor HsvToRgb(const at::Tensor& hsv) {
  const std::vector<at::Tensor> parts = hsv.unbind(-3);
  const at::Tensor& h = parts[0];
  const at::Tensor& s = parts[1];
  const at::Tensor& v = parts[2];
  const at::Tensor sector_f = at::floor(h * 6.0);
  const at::Tensor frac = h * 6.0 - sector_f;
  const at::Tensor sector = at::remainder(sector_f.to(at::kInt), 6);
  const at::Tensor p = at::clamp(v * at::rsub(s, 1.0), 0.0, 1.0);
  const at::Tensor q = at::clamp(v * at::rsub(s * frac, 1.0), 0.0, 1.0);
  const at::Tensor t = at::clamp(v * at::rsub(s * at::rsub(frac, 1.0), 1.0), 0.0, 1.0);
  const at::Tensor select =
      sector.unsqueeze(-3) == at::arange(6, at::TensorOptions().dtype(at::kLong).device(h.device())).view({-1, 1, 1});
  const at::Tensor red = at::stack({v, q, p, p, t, v}, -3);
  const at::Tensor green = at::stack({t, v, v, q, p, p}, -3);
  const at::Tensor blue = at::stack({p, p, t, v, v, q}, -3);
  const at::Tensor table = at::stack({red, green, blue}, -4);
  return at::einsum("...ijk, ...xijk -> ...xjk", {select.to(hsv.scalar_type()), table});
}

}  // namespace

std::array<double, 6> InverseAffineMatrix(double angle, int64_t tx, int64_t ty, double shear_x) {
  const double rot = angle * kDegToRad;
  const double sx = shear_x * kDegToRad;
  const double sy = 0.0 * kDegToRad;
  // Rotation times shear, R(rot) * SHy(sy) * SHx(sx), at scale 1 (determinant 1).
  const double a = std::cos(rot - sy) / std::cos(sy);
  const double b = -std::cos(rot - sy) * std::tan(sx) / std::cos(sy) - std::sin(rot);
  const double c = std::sin(rot - sy) / std::cos(sy);
  const double d = -std::sin(rot - sy) * std::tan(sx) / std::cos(sy) + std::cos(rot);
  // Its inverse, then the inverse translation applied first; the centre is the origin.
  std::array<double, 6> m{d, -b, 0.0, -c, a, 0.0};
  const double cx = 0.0;
  const double cy = 0.0;
  const auto fx = static_cast<double>(tx);
  const auto fy = static_cast<double>(ty);
  m[2] += m[0] * (-cx - fx) + m[1] * (-cy - fy);
  m[5] += m[3] * (-cx - fx) + m[4] * (-cy - fy);
  m[2] += cx;
  m[5] += cy;
  return m;
}

std::array<double, 8> PerspectiveCoefficients(int64_t height, int64_t width,
                                              const std::array<std::array<int64_t, 2>, 4>& end) {
  const std::array<std::array<int64_t, 2>, 4> start{{{0, 0}, {width - 1, 0}, {width - 1, height - 1}, {0, height - 1}}};
  // Each corner gives two linear equations in the 8 unknowns; float32 least squares
  // (LAPACK gels) on the CPU, as torchvision solves them.
  at::Tensor lhs = at::zeros({8, 8}, at::kFloat);
  at::Tensor rhs = at::zeros({8}, at::kFloat);
  auto a = lhs.accessor<float, 2>();
  auto b = rhs.accessor<float, 1>();
  for (int64_t i = 0; i < 4; ++i) {
    const int64_t ex = end[i][0];
    const int64_t ey = end[i][1];
    const int64_t sx = start[i][0];
    const int64_t sy = start[i][1];
    const std::array<int64_t, 8> row_x{ex, ey, 1, 0, 0, 0, -sx * ex, -sx * ey};
    const std::array<int64_t, 8> row_y{0, 0, 0, ex, ey, 1, -sy * ex, -sy * ey};
    for (int64_t j = 0; j < 8; ++j) {
      a[2 * i][j] = static_cast<float>(row_x[j]);
      a[2 * i + 1][j] = static_cast<float>(row_y[j]);
    }
    b[2 * i] = static_cast<float>(sx);
    b[2 * i + 1] = static_cast<float>(sy);
  }
  const at::Tensor solution = std::get<0>(at::linalg_lstsq(lhs, rhs, c10::nullopt, "gels")).contiguous();
  auto s = solution.accessor<float, 1>();
  std::array<double, 8> coeffs{};
  for (int64_t j = 0; j < 8; ++j) coeffs[j] = static_cast<double>(s[j]);
  return coeffs;
}

at::Tensor AffineNearest(const at::Tensor& img, double angle, int64_t tx, int64_t ty, double shear_x) {
  CheckImage(img, false);
  const int64_t h = img.size(2);
  const int64_t w = img.size(3);
  const at::Tensor grid = AffineGrid(InverseAffineMatrix(angle, tx, ty, shear_x), h, w, GridType(img), img.device());
  // torchvision also samples a mask of ones and writes the fill where it is below 0.5;
  // with nearest sampling those are exactly the pixels the zero padding already zeroed,
  // so for fill 0 the plain sample is the same.
  return at::grid_sampler(img, BatchGrid(grid, img.size(0)), kNearest, kZerosPadding, false);
}

at::Tensor PerspectiveBilinear(const at::Tensor& img, const std::array<std::array<int64_t, 2>, 4>& end) {
  CheckImage(img, false);
  const int64_t n = img.size(0);
  const int64_t c = img.size(1);
  const int64_t h = img.size(2);
  const int64_t w = img.size(3);
  const at::Tensor grid = PerspectiveGrid(PerspectiveCoefficients(h, w, end), h, w, GridType(img), img.device());
  // The image and a mask of ones sampled together; the result is image * mask +
  // (1 - mask) * fill, which for fill 0 is image * mask.
  const at::Tensor with_mask = at::cat({img, at::ones({n, 1, h, w}, img.options())}, 1);
  const at::Tensor sampled = at::grid_sampler(with_mask, BatchGrid(grid, n), kBilinear, kZerosPadding, false);
  return sampled.slice(1, 0, c) * sampled.slice(1, c, c + 1);
}

at::Tensor AdjustBrightness(const at::Tensor& img, double f) {
  CheckImage(img, true);
  TORCH_CHECK(f >= 0, "brightness factor ", f, " is negative");
  // A blend with black: f * img + (1 - f) * 0.
  return (img * f).clamp(0.0, 1.0);
}

at::Tensor AdjustContrast(const at::Tensor& img, double f) {
  CheckImage(img, true);
  TORCH_CHECK(f >= 0, "contrast factor ", f, " is negative");
  // A blend with each image's mean grey level.
  return Blend(img, at::mean(Grayscale(img), {-3, -2, -1}, /*keepdim=*/true), f);
}

at::Tensor AdjustSaturation(const at::Tensor& img, double f) {
  CheckImage(img, true);
  TORCH_CHECK(f >= 0, "saturation factor ", f, " is negative");
  return Blend(img, Grayscale(img), f);
}

at::Tensor AdjustHue(const at::Tensor& img, double f) {
  CheckImage(img, true);
  TORCH_CHECK(f >= -0.5 && f <= 0.5, "hue factor ", f, " is not in [-0.5, 0.5]");
  const std::vector<at::Tensor> hsv = RgbToHsv(img).unbind(-3);
  const at::Tensor shifted = at::remainder(hsv[0] + f, 1.0);
  return HsvToRgb(at::stack({shifted, hsv[1], hsv[2]}, -3));
}

at::Tensor EraseRect(const at::Tensor& img, int64_t top, int64_t left, int64_t h, int64_t w) {
  CheckImage(img, false);
  TORCH_CHECK(top >= 0 && left >= 0 && h >= 0 && w >= 0, "erase rectangle (", top, ", ", left, ", ", h, ", ", w,
              ") has a negative entry");
  const auto index = at::TensorOptions().dtype(at::kLong).device(img.device());
  const at::Tensor rows = at::arange(img.size(2), index);
  const at::Tensor cols = at::arange(img.size(3), index);
  const at::Tensor in_rows = (rows >= top).logical_and(rows < top + h).view({-1, 1});
  const at::Tensor in_cols = (cols >= left).logical_and(cols < left + w).view({1, -1});
  return at::where(in_rows.logical_and(in_cols), at::zeros({}, img.options()), img);
}

at::Tensor ApplyColorJitter(const at::Tensor& img, const OneshotAugmentParams& p) {
  at::Tensor x = img;
  for (const int op : p.jitter_order) {
    switch (op) {
      case 0: x = AdjustBrightness(x, p.brightness); break;
      case 1: x = AdjustContrast(x, p.contrast); break;
      case 2: x = AdjustSaturation(x, p.saturation); break;
      case 3: x = AdjustHue(x, p.hue); break;
      default: TORCH_CHECK(false, "colour jitter op ", op, " is not 0..3");
    }
  }
  return x;
}

at::Tensor ApplyOneshotAugment(const at::Tensor& images, const OneshotAugmentParams& p, int64_t out_size) {
  CheckImage(images, true);
  TORCH_CHECK(out_size > 0, "output size ", out_size, " is not positive");
  at::Tensor x = AffineNearest(images, p.angle, p.translate_x, p.translate_y, p.shear_x);
  x = PerspectiveBilinear(x, p.perspective_end);
  x = ApplyColorJitter(x, p);
  if (p.erase) x = EraseRect(x, p.erase_top, p.erase_left, p.erase_height, p.erase_width);
  if (x.size(2) == out_size && x.size(3) == out_size) return x;
  // Resize of a tensor: bilinear, half-pixel centres, no antialiasing.
  return at::upsample_bilinear2d(x, {out_size, out_size}, /*align_corners=*/false);
}

OneshotAugmentParams DrawOneshotAugmentParams(int64_t height, int64_t width, std::mt19937_64& rng) {
  TORCH_CHECK(height > 1 && width > 1, "image size ", height, " x ", width, " is too small");
  auto uniform = [&rng](double lo, double hi) { return std::uniform_real_distribution<double>(lo, hi)(rng); };
  // torch.randint(lo, hi): lo..hi-1.
  auto randint = [&rng](int64_t lo, int64_t hi) { return std::uniform_int_distribution<int64_t>(lo, hi - 1)(rng); };
  OneshotAugmentParams p;

  // RandomAffine(degrees=15, translate=(0.1, 0.1), shear=5): the x shift scales with the
  // width, the y shift with the height.
  p.angle = uniform(-15.0, 15.0);
  const double max_dx = 0.1 * static_cast<double>(width);
  const double max_dy = 0.1 * static_cast<double>(height);
  p.translate_x = static_cast<int64_t>(RoundHalfEven(uniform(-max_dx, max_dx)));
  p.translate_y = static_cast<int64_t>(RoundHalfEven(uniform(-max_dy, max_dy)));
  p.shear_x = uniform(-5.0, 5.0);

  // RandomPerspective(distortion_scale=0.7): each corner moves inwards by up to
  // int(0.7 * (size // 2)) pixels per axis.
  constexpr double kDistortion = 0.7;
  const int64_t half_width = width / 2;  // floor division, as torchvision's `width // 2`
  const int64_t half_height = height / 2;
  const auto dx = static_cast<int64_t>(kDistortion * static_cast<double>(half_width));
  const auto dy = static_cast<int64_t>(kDistortion * static_cast<double>(half_height));
  p.perspective_end[0] = {randint(0, dx + 1), randint(0, dy + 1)};
  p.perspective_end[1] = {randint(width - dx - 1, width), randint(0, dy + 1)};
  p.perspective_end[2] = {randint(width - dx - 1, width), randint(height - dy - 1, height)};
  p.perspective_end[3] = {randint(0, dx + 1), randint(height - dy - 1, height)};

  // ColorJitter(0.1, 0.1, 0.1, 0.1): a random order, factors in [0.9, 1.1], hue in
  // [-0.1, 0.1].
  std::iota(p.jitter_order.begin(), p.jitter_order.end(), 0);
  std::shuffle(p.jitter_order.begin(), p.jitter_order.end(), rng);
  p.brightness = uniform(0.9, 1.1);
  p.contrast = uniform(0.9, 1.1);
  p.saturation = uniform(0.9, 1.1);
  p.hue = uniform(-0.1, 0.1);

  // RandomErasing(p=0.7, scale=(0.1, 0.4), ratio=(0.3, 1/0.3)): up to 10 tries at a
  // rectangle smaller than the image; none erased if all fail.
  if (uniform(0.0, 1.0) < 0.7) {
    const auto area = static_cast<double>(height * width);
    const double log_lo = std::log(0.3);
    const double log_hi = std::log(1.0 / 0.3);
    for (int attempt = 0; attempt < 10; ++attempt) {
      const double erase_area = area * uniform(0.1, 0.4);
      const double aspect = std::exp(uniform(log_lo, log_hi));
      const auto eh = static_cast<int64_t>(RoundHalfEven(std::sqrt(erase_area * aspect)));
      const auto ew = static_cast<int64_t>(RoundHalfEven(std::sqrt(erase_area / aspect)));
      if (eh >= height || ew >= width) continue;
      p.erase = true;
      p.erase_height = eh;
      p.erase_width = ew;
      p.erase_top = randint(0, height - eh + 1);
      p.erase_left = randint(0, width - ew + 1);
      break;
    }
  }
  return p;
}

}  // namespace ganserve::core::adapt
