// StarGAN v2's AlexNet LPIPS against the official OneshotCLIP code: weights and images
// drawn from np.random.RandomState(7) in the order tests/fixtures/alex_lpips/
// make_fixture.py draws them, distances from its reference.json.
#include "core/models/lpips/alex_lpips.h"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/util/np_random.h"

namespace ganserve::core::lpips {
namespace {

struct Drawn {
  std::map<std::string, TensorView> alexnet, weights;
  FloatTensor x, y;
};

std::shared_ptr<const FloatTensor> Tensor(std::vector<int64_t> shape, std::vector<float> data) {
  return std::make_shared<const FloatTensor>(FloatTensor{std::move(shape), std::move(data)});
}

// The fixture script's draw(): conv weights (randn * sqrt(2 / fan_in)) and biases
// (randn * 0.1) in float32, |randn| * 0.1 for the 1x1 layers, tanh(randn) images.
Drawn Draw() {
  NumpyRandomState rs(7);
  struct Conv {
    int index, out, in, k;
  };
  const Conv convs[] = {{0, 64, 3, 11}, {3, 192, 64, 5}, {6, 384, 192, 3}, {8, 256, 384, 3}, {10, 256, 256, 3}};
  Drawn d;
  for (const Conv& c : convs) {
    const auto scale = static_cast<float>(std::sqrt(2.0 / (c.in * c.k * c.k)));
    std::vector<float> w = rs.Randn(static_cast<size_t>(c.out) * c.in * c.k * c.k);
    for (float& v : w) v *= scale;
    std::vector<float> b = rs.Randn(static_cast<size_t>(c.out));
    for (float& v : b) v *= 0.1f;
    d.alexnet["features." + std::to_string(c.index) + ".weight"] = ViewOf(Tensor({c.out, c.in, c.k, c.k}, w));
    d.alexnet["features." + std::to_string(c.index) + ".bias"] = ViewOf(Tensor({c.out}, b));
  }
  for (int i = 0; i < 5; ++i) {
    std::vector<float> w(static_cast<size_t>(convs[i].out));
    for (float& v : w) v = static_cast<float>(std::fabs(rs.Gauss())) * 0.1f;
    d.weights["lpips_weights." + std::to_string(i) + ".main.1.weight"] = ViewOf(Tensor({1, convs[i].out, 1, 1}, w));
  }
  for (FloatTensor* img : {&d.x, &d.y}) {
    img->shape = {3, 3, 64, 64};
    img->data.resize(3 * 3 * 64 * 64);
    for (float& v : img->data) v = static_cast<float>(std::tanh(rs.Gauss()));
  }
  return d;
}

nlohmann::json Reference() {
  std::ifstream in(std::string(GANSERVE_SOURCE_DIR) + "/tests/fixtures/alex_lpips/reference.json");
  return nlohmann::json::parse(in);
}

TEST(AlexLpipsTest, MatchesTheOfficialOneshotClipLpips) {
  const Drawn d = Draw();
  auto lp = AlexLpips::FromTensors(d.alexnet, d.weights, "cpu");
  ASSERT_TRUE(lp.ok()) << lp.status();
  auto dist = (*lp)->Distance(d.x, d.y);
  ASSERT_TRUE(dist.ok()) << dist.status();
  ASSERT_EQ(dist->shape, std::vector<int64_t>{3});
  const nlohmann::json ref = Reference();
  // float32 convolutions in LibTorch and PyTorch may sum in another order: 1e-5 relative.
  double mean = 0;
  for (int i = 0; i < 3; ++i) {
    const double want = ref["per_sample"][i].get<double>();
    EXPECT_NEAR(dist->data[i], want, 1e-5 * want) << "image " << i;
    mean += dist->data[i] / 3;
  }
  // The official loss is one number per batch: the mean over it.
  EXPECT_NEAR(mean, ref["batch_value"].get<double>(), 1e-5 * ref["batch_value"].get<double>());
  auto same = (*lp)->Distance(d.x, d.x);
  ASSERT_TRUE(same.ok());
  // An image against itself: zero up to rounding (its two copies sit in different rows of
  // one batch, which kernels may block differently); real pairs here are ~0.14.
  for (float v : same->data) EXPECT_LT(std::fabs(v), 1e-6f);
}

TEST(AlexLpipsTest, RefusesWrongShapesAndMissingTensors) {
  Drawn d = Draw();
  auto lp = AlexLpips::FromTensors(d.alexnet, d.weights, "cpu");
  ASSERT_TRUE(lp.ok());
  FloatTensor small{{1, 3, 16, 16}, std::vector<float>(3 * 16 * 16)};
  EXPECT_EQ((*lp)->Distance(small, small).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ((*lp)->Distance(d.x, small).status().code(), absl::StatusCode::kInvalidArgument);
  d.weights.erase("lpips_weights.3.main.1.weight");
  auto missing = AlexLpips::FromTensors(d.alexnet, d.weights, "cpu");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(missing.status().message().find("lpips_weights.3"), std::string::npos) << missing.status();
  EXPECT_EQ(AlexLpips::Load("/nonexistent/alexnet.pth", "/nonexistent/w.ckpt", "cpu").status().code(),
            absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace ganserve::core::lpips
