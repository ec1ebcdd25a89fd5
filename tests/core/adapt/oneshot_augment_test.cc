// OneshotCLIP's reference-search augmentations against torchvision 0.14: the input
// redrawn from np.random.RandomState(1916) as tests/fixtures/oneshot_augment/
// make_fixture.py draws it, each op's output (and the official Compose's, with fixed
// draws) from its reference.json. Also the ranges of the parameter draws, the identical
// copies of a repeated batch, and the gradients.
#include "core/adapt/oneshot_augment.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "core/util/np_random.h"

namespace ganserve::core::adapt {
namespace {

using Corners = std::array<std::array<int64_t, 2>, 4>;

// Tolerances. The fixture's decimals read back to torchvision's float32 outputs exactly,
// and the C++ ops repeat torchvision's arithmetic op for op (float32 grids built the same
// way, the same LAPACK solve, the same kernels), so with Debian's LibTorch 1.13 every
// element agrees bit for bit, near-tie pixels included. The tolerances leave room for
// another LibTorch build or device, and still catch any formula error (>= 1e-3):
// - Pointwise colour ops, erasing, nearest affine: 1e-6 absolute, a few float32 ulps
//   (1.2e-7 at 1.2) for another vectorisation or FMA contraction.
// - Anything through the perspective warp: 2e-4 absolute. Its coefficients come from a
//   float32 least-squares solve (relative error up to ~1e-4 for these conditioning
//   numbers, ~2e3), which puts the fixture's sample points up to 5e-5 pixel off the exact
//   ones inside the image (measured against a float64 solve); another LAPACK may land
//   elsewhere in that range, and bilinear sampling turns 5e-5 pixel into up to 1.2e-4 of
//   value (neighbouring pixels differ by up to 2.4).
// - Nearest sampling: output pixels whose source point (computed here in double) lies
//   within 1e-3 pixel of a half-pixel boundary are not compared. There the float32 grid
//   (error ~1e-6 pixel) decides between two neighbours, and either is torchvision's
//   answer under some float order; every other pixel must match. The fixture counts
//   those pixels too, and its pipeline cases have none.
constexpr double kPointwiseTol = 1e-6;
constexpr double kWarpTol = 2e-4;
constexpr double kTieMargin = 1e-3;

const nlohmann::json& Reference() {
  static const nlohmann::json* ref = [] {
    std::ifstream in(std::string(GANSERVE_SOURCE_DIR) + "/tests/fixtures/oneshot_augment/reference.json");
    return new nlohmann::json(nlohmann::json::parse(in));
  }();
  return *ref;
}

std::vector<int64_t> Shape() { return Reference()["shape"].get<std::vector<int64_t>>(); }

// The fixture's input: (tanh(randn) * scale) as float32; "unit" is (x + scale) / (2 scale).
at::Tensor Input(const std::string& name) {
  const nlohmann::json& ref = Reference();
  const std::vector<int64_t> shape = Shape();
  const double scale = ref["scale"].get<double>();
  NumpyRandomState rs(ref["seed"].get<uint32_t>());
  std::vector<float> data(static_cast<size_t>(shape[0] * shape[1] * shape[2] * shape[3]));
  for (float& v : data) v = static_cast<float>(std::tanh(rs.Gauss()) * scale);
  at::Tensor raw = at::from_blob(data.data(), shape, at::kFloat).clone();
  if (name == "raw") return raw;
  EXPECT_EQ(name, "unit");
  return (raw + scale) / (2 * scale);
}

Corners CornersOf(const nlohmann::json& j) {
  Corners c{};
  for (size_t i = 0; i < 4; ++i) c[i] = {j[i][0].get<int64_t>(), j[i][1].get<int64_t>()};
  return c;
}

OneshotAugmentParams JitterParams(const nlohmann::json& order, const nlohmann::json& factors) {
  OneshotAugmentParams p;
  for (size_t i = 0; i < 4; ++i) p.jitter_order[i] = order[i].get<int>();
  p.brightness = factors[0].get<double>();
  p.contrast = factors[1].get<double>();
  p.saturation = factors[2].get<double>();
  p.hue = factors[3].get<double>();
  return p;
}

// Compares `got` with the case's flattened output; `skip` marks elements not compared.
void ExpectMatches(const at::Tensor& got, const nlohmann::json& c, double tol, const std::vector<bool>& skip = {}) {
  const std::vector<double> want = c["output"].get<std::vector<double>>();
  const at::Tensor flat = got.detach().to(at::kDouble).contiguous().view(-1);
  ASSERT_EQ(flat.numel(), static_cast<int64_t>(want.size())) << c["op"];
  const auto g = flat.accessor<double, 1>();
  double worst = 0;
  size_t bad = 0;
  size_t first_bad = want.size();
  for (size_t i = 0; i < want.size(); ++i) {
    if (!skip.empty() && skip[i]) continue;
    // The fixture's decimals read back to torchvision's float32 values exactly.
    const double err = std::fabs(g[static_cast<int64_t>(i)] - static_cast<double>(static_cast<float>(want[i])));
    worst = std::max(worst, err);
    if (!(err <= tol)) {
      ++bad;
      first_bad = std::min(first_bad, i);
    }
  }
  EXPECT_EQ(bad, 0u) << c["op"] << " " << c["input"] << ": " << bad << " of " << want.size()
                     << " elements off by more than " << tol << ", worst " << worst << ", first at " << first_bad;
}

// Near-tie flags per output element of an [N, C, H, W] nearest warp with matrix m.
std::vector<bool> NearTies(const std::array<double, 6>& m, const std::vector<int64_t>& shape, size_t* pixels) {
  const int64_t h = shape[2];
  const int64_t w = shape[3];
  auto tie = [](double s) { return std::fabs(s - std::floor(s) - 0.5) < kTieMargin; };
  std::vector<bool> plane(static_cast<size_t>(h * w));
  *pixels = 0;
  for (int64_t y = 0; y < h; ++y) {
    for (int64_t x = 0; x < w; ++x) {
      const double cx = static_cast<double>(x) - static_cast<double>(w) / 2 + 0.5;
      const double cy = static_cast<double>(y) - static_cast<double>(h) / 2 + 0.5;
      const double sx = m[0] * cx + m[1] * cy + m[2] + static_cast<double>(w) / 2 - 0.5;
      const double sy = m[3] * cx + m[4] * cy + m[5] + static_cast<double>(h) / 2 - 0.5;
      plane[static_cast<size_t>(y * w + x)] = tie(sx) || tie(sy);
      *pixels += plane[static_cast<size_t>(y * w + x)] ? 1 : 0;
    }
  }
  std::vector<bool> all;
  for (int64_t i = 0; i < shape[0] * shape[1]; ++i) all.insert(all.end(), plane.begin(), plane.end());
  return all;
}

std::vector<nlohmann::json> Cases(const std::string& op) {
  std::vector<nlohmann::json> out;
  for (const nlohmann::json& c : Reference()["cases"]) {
    if (c["op"] == op) out.push_back(c);
  }
  EXPECT_FALSE(out.empty()) << op;
  return out;
}

TEST(OneshotAugmentTest, AffineMatchesTorchvision) {
  for (const nlohmann::json& c : Cases("affine")) {
    const double angle = c["angle"].get<double>();
    const int64_t tx = c["translate"][0].get<int64_t>();
    const int64_t ty = c["translate"][1].get<int64_t>();
    const double shear = c["shear_x"].get<double>();
    const std::array<double, 6> m = InverseAffineMatrix(angle, tx, ty, shear);
    const std::vector<double> want = c["matrix"].get<std::vector<double>>();
    for (size_t i = 0; i < 6; ++i) EXPECT_NEAR(m[i], want[i], 1e-12) << "angle " << angle << " entry " << i;
    size_t ties = 0;
    const std::vector<bool> skip = NearTies(m, Shape(), &ties);
    EXPECT_EQ(ties, c["near_ties"].get<size_t>()) << "angle " << angle;
    SCOPED_TRACE("angle " + std::to_string(angle));
    ExpectMatches(AffineNearest(Input("raw"), angle, tx, ty, shear), c, kPointwiseTol, skip);
  }
}

TEST(OneshotAugmentTest, PerspectiveMatchesTorchvision) {
  const std::vector<int64_t> shape = Shape();
  for (const nlohmann::json& c : Cases("perspective")) {
    const Corners end = CornersOf(c["end"]);
    const std::array<double, 8> coeffs = PerspectiveCoefficients(shape[2], shape[3], end);
    const std::vector<double> want = c["coeffs"].get<std::vector<double>>();
    // float32 solutions (bit for bit with the same LAPACK): another one may differ by the
    // solve's own error, condition number (~2e3) times float32 epsilon.
    for (size_t i = 0; i < 8; ++i) EXPECT_NEAR(coeffs[i], want[i], 1e-4 * std::max(1.0, std::fabs(want[i])));
    SCOPED_TRACE(c["end"].dump());
    ExpectMatches(PerspectiveBilinear(Input("raw"), end), c, kWarpTol);
  }
}

TEST(OneshotAugmentTest, ColourOpsMatchTorchvision) {
  for (const std::string op : {"brightness", "contrast", "saturation", "hue"}) {
    for (const nlohmann::json& c : Cases(op)) {
      const at::Tensor x = Input(c["input"].get<std::string>());
      const double f = c["factor"].get<double>();
      at::Tensor y;
      if (op == "brightness") y = AdjustBrightness(x, f);
      if (op == "contrast") y = AdjustContrast(x, f);
      if (op == "saturation") y = AdjustSaturation(x, f);
      if (op == "hue") y = AdjustHue(x, f);
      SCOPED_TRACE(op + " " + std::to_string(f));
      ExpectMatches(y, c, kPointwiseTol);
    }
  }
}

TEST(OneshotAugmentTest, EraseMatchesTorchvision) {
  for (const nlohmann::json& c : Cases("erase")) {
    const std::vector<int64_t> r = c["rect"].get<std::vector<int64_t>>();
    const at::Tensor x = Input("raw");
    ExpectMatches(EraseRect(x, r[0], r[1], r[2], r[3]), c, kPointwiseTol);
    EXPECT_TRUE(at::equal(x, Input("raw"))) << "erasing is out of place";
  }
}

TEST(OneshotAugmentTest, JitterOrdersMatchTorchvision) {
  for (const nlohmann::json& c : Cases("jitter")) {
    SCOPED_TRACE(c["order"].dump());
    ExpectMatches(ApplyColorJitter(Input(c["input"].get<std::string>()), JitterParams(c["order"], c["factors"])), c,
                  kPointwiseTol);
  }
}

TEST(OneshotAugmentTest, OfficialPipelineMatchesTorchvision) {
  for (const nlohmann::json& c : Cases("pipeline")) {
    OneshotAugmentParams p = JitterParams(c["order"], c["factors"]);
    p.angle = c["angle"].get<double>();
    p.translate_x = c["translate"][0].get<int64_t>();
    p.translate_y = c["translate"][1].get<int64_t>();
    p.shear_x = c["shear_x"].get<double>();
    p.perspective_end = CornersOf(c["end"]);
    p.erase = !c["erase"].is_null();
    if (p.erase) {
      p.erase_top = c["erase"][0].get<int64_t>();
      p.erase_left = c["erase"][1].get<int64_t>();
      p.erase_height = c["erase"][2].get<int64_t>();
      p.erase_width = c["erase"][3].get<int64_t>();
    }
    // The fixture chose affine parameters without near ties, so every pixel is compared.
    size_t ties = 0;
    NearTies(InverseAffineMatrix(p.angle, p.translate_x, p.translate_y, p.shear_x), Shape(), &ties);
    EXPECT_EQ(ties, 0u);
    const int64_t out = c["out_size"].get<int64_t>();
    const at::Tensor y = ApplyOneshotAugment(Input("raw"), p, out);
    EXPECT_EQ(y.sizes(), (std::vector<int64_t>{Shape()[0], 3, out, out}));
    SCOPED_TRACE("angle " + std::to_string(p.angle));
    ExpectMatches(y, c, kWarpTol);
  }
}

TEST(OneshotAugmentTest, ColourBlendsClampAnUnclampedImage) {
  // torchvision's float blends clamp to [0, 1] whatever the input range; hue clamps the
  // derived channels p, q, t but not V, so negative values survive it, and a negative
  // grey pixel is not grey after it.
  const at::Tensor x = Input("raw");
  ASSERT_LT(x.min().item<double>(), -1.0);
  ASSERT_GT(x.max().item<double>(), 1.0);
  EXPECT_TRUE(at::equal(AdjustBrightness(x, 1.0), x.clamp(0, 1)));
  EXPECT_TRUE(at::allclose(AdjustSaturation(x, 1.0), x.clamp(0, 1), 0, 1e-7));
  EXPECT_LT(AdjustHue(x, 0.05).min().item<double>(), 0.0);
  const at::Tensor grey = at::full({1, 3, 2, 2}, 0.5);
  EXPECT_TRUE(at::allclose(AdjustHue(grey, 0.3), grey));
  // Hue 0.3 puts it in sector 1, (q, v, p): only green keeps V = -0.5 (as torchvision).
  const at::Tensor dark = AdjustHue(at::full({1, 3, 1, 1}, -0.5), 0.3);
  EXPECT_TRUE(at::equal(dark.view(-1), at::tensor({0.0f, -0.5f, 0.0f}))) << dark.view(-1);
}

TEST(OneshotAugmentTest, DrawsStayInTorchvisionRanges) {
  constexpr int64_t kH = 256;
  constexpr int64_t kW = 192;  // non-square: x ranges follow the width, y the height
  constexpr int kDraws = 4000;
  const auto max_tx = static_cast<int64_t>(std::round(0.1 * kW));  // 19
  const auto max_ty = static_cast<int64_t>(std::round(0.1 * kH));  // 26
  constexpr int64_t kHalfW = kW / 2;
  constexpr int64_t kHalfH = kH / 2;
  const auto dx = static_cast<int64_t>(0.7 * kHalfW);  // 67
  const auto dy = static_cast<int64_t>(0.7 * kHalfH);  // 89
  std::mt19937_64 rng(20240601);
  int erased = 0;
  int64_t min_tx = 0;
  int64_t max_seen_tx = 0;
  double max_angle = 0;
  const double area = kH * kW;
  for (int i = 0; i < kDraws; ++i) {
    const OneshotAugmentParams p = DrawOneshotAugmentParams(kH, kW, rng);
    ASSERT_LE(std::fabs(p.angle), 15.0);
    ASSERT_LE(std::abs(p.translate_x), max_tx);
    ASSERT_LE(std::abs(p.translate_y), max_ty);
    ASSERT_LE(std::fabs(p.shear_x), 5.0);
    min_tx = std::min(min_tx, p.translate_x);
    max_seen_tx = std::max(max_seen_tx, p.translate_x);
    max_angle = std::max(max_angle, std::fabs(p.angle));
    const Corners& e = p.perspective_end;
    auto in = [](int64_t v, int64_t lo, int64_t hi) { return v >= lo && v <= hi; };
    ASSERT_TRUE(in(e[0][0], 0, dx) && in(e[0][1], 0, dy)) << "top-left";
    ASSERT_TRUE(in(e[1][0], kW - dx - 1, kW - 1) && in(e[1][1], 0, dy)) << "top-right";
    ASSERT_TRUE(in(e[2][0], kW - dx - 1, kW - 1) && in(e[2][1], kH - dy - 1, kH - 1)) << "bottom-right";
    ASSERT_TRUE(in(e[3][0], 0, dx) && in(e[3][1], kH - dy - 1, kH - 1)) << "bottom-left";
    ASSERT_EQ(std::set<int>(p.jitter_order.begin(), p.jitter_order.end()), (std::set<int>{0, 1, 2, 3}));
    for (double f : {p.brightness, p.contrast, p.saturation}) {
      ASSERT_GE(f, 0.9);
      ASSERT_LE(f, 1.1);
    }
    ASSERT_LE(std::fabs(p.hue), 0.1);
    if (!p.erase) continue;
    ++erased;
    const auto h = static_cast<double>(p.erase_height);
    const auto w = static_cast<double>(p.erase_width);
    ASSERT_GE(p.erase_top, 0);
    ASSERT_GE(p.erase_left, 0);
    ASSERT_LE(p.erase_top + p.erase_height, kH);
    ASSERT_LE(p.erase_left + p.erase_width, kW);
    ASSERT_LT(p.erase_height, kH);
    ASSERT_LT(p.erase_width, kW);
    // h and w are sqrt(area * aspect) and sqrt(area / aspect) rounded to integers, so the
    // drawn area in [0.1, 0.4] of the image and aspect in [0.3, 1/0.3] hold up to half a
    // pixel per side.
    ASSERT_LE((h - 0.5) * (w - 0.5), 0.4 * area) << h << " x " << w;
    ASSERT_GE((h + 0.5) * (w + 0.5), 0.1 * area) << h << " x " << w;
    ASSERT_LE((h - 0.5) / (w + 0.5), 1 / 0.3) << h << " x " << w;
    ASSERT_GE((h + 0.5) / (w - 0.5), 0.3) << h << " x " << w;
  }
  // The ranges are reached, not only respected.
  EXPECT_EQ(min_tx, -max_tx);
  EXPECT_EQ(max_seen_tx, max_tx);
  EXPECT_GT(max_angle, 14.9);
  // p = 0.7 (a failed set of 10 tries is rare here): 4000 draws have a standard
  // deviation of 0.0072; 0.04 is over 5 of them.
  EXPECT_NEAR(static_cast<double>(erased) / kDraws, 0.7, 0.04);
}

OneshotAugmentParams ErasingDraw(int64_t h, int64_t w) {
  std::mt19937_64 rng(7);
  for (;;) {
    OneshotAugmentParams p = DrawOneshotAugmentParams(h, w, rng);
    if (p.erase) return p;
  }
}

at::Tensor Image(int64_t n, int64_t h, int64_t w) {
  NumpyRandomState rs(3);
  std::vector<float> v = rs.Randn(static_cast<size_t>(n * 3 * h * w));
  return at::tanh(at::from_blob(v.data(), {n, 3, h, w}, at::kFloat).clone());
}

TEST(OneshotAugmentTest, RepeatedBatchGetsIdenticalCopies) {
  // The official fake_img.repeat(8, 1, 1, 1) under one draw: eight equal images.
  const at::Tensor img = Image(1, 32, 40);
  const OneshotAugmentParams p = ErasingDraw(32, 40);
  const at::Tensor out = ApplyOneshotAugment(img.repeat({8, 1, 1, 1}), p, 24);
  ASSERT_EQ(out.sizes(), (std::vector<int64_t>{8, 3, 24, 24}));
  for (int64_t i = 1; i < 8; ++i) EXPECT_TRUE(at::equal(out[i], out[0])) << "copy " << i;
  EXPECT_TRUE(at::allclose(out[0], ApplyOneshotAugment(img, p, 24)[0], 0, 1e-6));
  EXPECT_GT(out.abs().sum().item<double>(), 0);
}

TEST(OneshotAugmentTest, GradientsReachTheImages) {
  const at::Tensor base = Image(2, 32, 40);
  const at::Tensor weights = Image(2, 24, 24);
  const OneshotAugmentParams p = ErasingDraw(32, 40);
  const at::Tensor img = base.clone().requires_grad_(true);
  (ApplyOneshotAugment(img, p, 24) * weights).sum().backward();
  ASSERT_TRUE(img.grad().defined());
  EXPECT_TRUE(at::isfinite(img.grad()).all().item<bool>());
  EXPECT_GT(img.grad().abs().sum().item<double>(), 0);

  // Each op on its own passes a gradient; erasing passes none inside its rectangle.
  using Op = std::function<at::Tensor(const at::Tensor&)>;
  const std::vector<std::pair<std::string, Op>> ops = {
      {"affine", [&](const at::Tensor& x) { return AffineNearest(x, p.angle, 1, -1, p.shear_x); }},
      {"perspective", [&](const at::Tensor& x) { return PerspectiveBilinear(x, p.perspective_end); }},
      {"brightness", [](const at::Tensor& x) { return AdjustBrightness(x, 1.05); }},
      {"contrast", [](const at::Tensor& x) { return AdjustContrast(x, 0.95); }},
      {"saturation", [](const at::Tensor& x) { return AdjustSaturation(x, 1.05); }},
      {"hue", [](const at::Tensor& x) { return AdjustHue(x, 0.07); }},
  };
  for (const auto& [name, op] : ops) {
    const at::Tensor x = (base * 0.5 + 0.5).requires_grad_(true);
    op(x).sum().backward();
    ASSERT_TRUE(x.grad().defined()) << name;
    EXPECT_TRUE(at::isfinite(x.grad()).all().item<bool>()) << name;
    EXPECT_GT(x.grad().abs().sum().item<double>(), 0) << name;
  }
  const at::Tensor x = base.clone().requires_grad_(true);
  EraseRect(x, 4, 6, 10, 12).sum().backward();
  const at::Tensor& g = x.grad();
  EXPECT_EQ(g.slice(2, 4, 14).slice(3, 6, 18).abs().sum().item<double>(), 0);
  EXPECT_EQ(g.sum().item<double>(), static_cast<double>(x.numel() - int64_t{2} * 3 * 10 * 12));
}

}  // namespace
}  // namespace ganserve::core::adapt
