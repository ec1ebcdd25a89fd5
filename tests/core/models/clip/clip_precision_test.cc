// Reduced-precision CLIP (OpenAI's fp16 split of weights; bf16 runs on CPUs, so the
// split is exercised here): encodings close to float32, gradients reach the input.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>
#include <memory>

#include "core/models/clip/clip_model.h"
#include "core/models/clip/clip_model_impl.h"
#include "core/models/clip/random_init.h"

namespace ganserve::core::clip {
namespace {

std::unique_ptr<ClipModel> Build(ClipPrecision p, absl::StatusCode* code = nullptr) {
  static const auto weights =
      std::make_shared<const std::map<std::string, FloatTensor>>(RandomClipWeights(TinyClipConfig(), 11));
  auto m = ClipModel::FromTensors(ViewsOf(weights), "cpu", p);
  if (code != nullptr) *code = m.status().code();
  return m.ok() ? std::move(*m) : nullptr;
}

double Cosine(const FloatTensor& a, const FloatTensor& b, int row, int dim) {
  double ab = 0, aa = 0, bb = 0;
  for (int i = 0; i < dim; ++i) {
    const double x = a.data[row * dim + i], y = b.data[row * dim + i];
    ab += x * y;
    aa += x * x;
    bb += y * y;
  }
  return ab / std::sqrt(aa * bb);
}

TEST(ClipPrecisionTest, ParsesNamesAndRejectsOthers) {
  EXPECT_EQ(*ParseClipPrecision("bf16"), ClipPrecision::kBFloat16);
  EXPECT_EQ(*ParseClipPrecision("fp16"), ClipPrecision::kFloat16);
  EXPECT_EQ(*ParseClipPrecision("auto"), ClipPrecision::kAuto);
  auto bad = ParseClipPrecision("fp8");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("fp32"), std::string::npos) << bad.status();
  EXPECT_STREQ(ClipPrecisionName(ClipPrecision::kBFloat16), "bf16");
}

TEST(ClipPrecisionTest, AutoIsFloat32OnCpuAndHalfNeedsCuda) {
  auto m = Build(ClipPrecision::kAuto);
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(m->precision(), ClipPrecision::kFloat32);
  absl::StatusCode code;
  EXPECT_EQ(Build(ClipPrecision::kFloat16, &code), nullptr);
  EXPECT_EQ(code, absl::StatusCode::kInvalidArgument);
}

TEST(ClipPrecisionTest, Bfloat16EncodingsFollowFloat32) {
  auto f32 = Build(ClipPrecision::kFloat32);
  auto b16 = Build(ClipPrecision::kBFloat16);
  ASSERT_NE(f32, nullptr);
  ASSERT_NE(b16, nullptr);
  EXPECT_EQ(b16->precision(), ClipPrecision::kBFloat16);
  const int dim = f32->config().embed_dim;
  FloatTensor images{{2, 3, 224, 224}, {}};
  for (int i = 0; i < 2 * 3 * 224 * 224; ++i) images.data.push_back(std::sin(0.37f * i) * 1.5f);
  auto a = f32->EncodeImage(images);
  auto b = b16->EncodeImage(images);
  ASSERT_TRUE(a.ok() && b.ok()) << a.status() << b.status();
  std::vector<int> row(77, 0);
  row[0] = 49406;
  row[1] = 320;
  row[2] = 1125;
  row[3] = 49407;
  auto ta = f32->EncodeText({row});
  auto tb = b16->EncodeText({row});
  ASSERT_TRUE(ta.ok() && tb.ok());
  for (int r = 0; r < 2; ++r) {
    // bf16 keeps 8 bits of mantissa: directions agree closely, values are not equal.
    EXPECT_GT(Cosine(*a, *b, r, dim), 0.99) << r;
    EXPECT_NE(a->data[r * dim], b->data[r * dim]);
  }
  EXPECT_GT(Cosine(*ta, *tb, 0, dim), 0.99);
}

TEST(ClipPrecisionTest, GradientsReachFloat32InputsThroughBfloat16) {
  auto m = Build(ClipPrecision::kBFloat16);
  ASSERT_NE(m, nullptr);
  at::Tensor x = at::randn({1, 3, 224, 224}).set_requires_grad(true);
  at::Tensor e = m->impl().EncodeImage(x);
  EXPECT_EQ(e.scalar_type(), at::kFloat);
  e.pow(2).sum().backward();
  ASSERT_TRUE(x.grad().defined());
  EXPECT_EQ(x.grad().scalar_type(), at::kFloat);
  EXPECT_GT(x.grad().abs().sum().item<float>(), 0.f);
}

}  // namespace
}  // namespace ganserve::core::clip
