// ArcFace IR-SE-50 against the official Backbone and IDLoss (StyleCLIP's
// models/facial_recognition and criteria/id_loss.py): RandomArcFaceWeights redraws from
// np.random.RandomState(2023) the weights tests/fixtures/arcface/make_fixture.py drew (the
// tensors reference.json lists, in that order), and the outputs are compared with the
// official ones. Also the tensor contract and the loss's gradient.
#include "core/models/arcface/arcface.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <optional>

#include "core/models/arcface/arcface_impl.h"
#include "core/models/arcface/random_init.h"
#include "core/models/common/torch_convert.h"
#include "core/util/np_random.h"

namespace ganserve::core::arcface {
namespace {

const std::string kFixture = std::string(GANSERVE_SOURCE_DIR) + "/tests/fixtures/arcface/reference.json";

// 50 layers of float32 with activations growing to ~2e3 before the normalisation: the
// unit features (entries up to ~0.14) agree to a few 1e-6 when LibTorch and PyTorch
// pick the same kernels; 2e-5 leaves room for other convolution algorithms.
constexpr double kFeatureTol = 2e-5;

class ArcFaceReferenceTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!std::filesystem::exists(kFixture)) return;
    std::ifstream in(kFixture);
    ref_ = new nlohmann::json(nlohmann::json::parse(in));
    NumpyRandomState rs(ref_->at("seed").get<uint32_t>());
    auto drawn = RandomArcFaceWeights(&rs);
    // The same tensors in the same order as the official state dict.
    const auto& listed = ref_->at("tensors");
    order_ok_ = listed.size() == drawn.size();
    for (size_t i = 0; order_ok_ && i < drawn.size(); ++i) {
      order_ok_ = listed[i][0] == drawn[i].first && listed[i][1].get<std::vector<int64_t>>() == drawn[i].second.shape;
    }
    std::map<std::string, FloatTensor> weights(std::make_move_iterator(drawn.begin()),
                                               std::make_move_iterator(drawn.end()));
    std::map<std::string, TensorView> views;
    for (auto& [k, v] : weights) views[k] = ViewOf(std::make_shared<const FloatTensor>(std::move(v)));
    auto net = ArcFace::FromTensors(views, "cpu");
    if (net.ok()) net_ = net->release();
    load_error_ = new std::string(net.ok() ? "" : std::string(net.status().message()));
    // The redraws continue the stream: the inputs follow the weights.
    auto draw = [&rs](std::vector<int64_t> shape) {
      int64_t n = 1;
      for (int64_t d : shape) n *= d;
      return FloatTensor{shape, rs.Randn(static_cast<size_t>(n))};
    };
    x_ = new FloatTensor(draw(ref_->at("x_shape")));
    y64_ = new FloatTensor(draw(ref_->at("y64_shape")));
    FloatTensor noise64 = draw(ref_->at("y64_shape"));
    y256_ = new FloatTensor(draw(ref_->at("y256_shape")));
    FloatTensor noise256 = draw(ref_->at("y256_shape"));
    const auto scale = ref_->at("noise_scale").get<float>();
    yhat64_ = new FloatTensor(*y64_);
    for (size_t i = 0; i < yhat64_->data.size(); ++i) yhat64_->data[i] += scale * noise64.data[i];
    yhat256_ = new FloatTensor(*y256_);
    for (size_t i = 0; i < yhat256_->data.size(); ++i) yhat256_->data[i] += scale * noise256.data[i];
  }
  void SetUp() override {
    if (ref_ == nullptr) GTEST_SKIP() << "tests/fixtures/arcface/reference.json not found (make_fixture.py makes it)";
    ASSERT_NE(net_, nullptr) << *load_error_;
    ASSERT_TRUE(order_ok_) << "RandomArcFaceWeights does not draw the official state dict's tensors in its order";
  }
  static void ExpectNear(const std::vector<float>& got, const nlohmann::json& want, double tol, const char* what) {
    const auto w = want.get<std::vector<float>>();
    ASSERT_EQ(got.size(), w.size()) << what;
    for (size_t i = 0; i < w.size(); ++i) ASSERT_NEAR(got[i], w[i], tol) << what << " [" << i << "]";
  }
  static nlohmann::json* ref_;
  static ArcFace* net_;
  static std::string* load_error_;
  static bool order_ok_;
  static FloatTensor *x_, *y64_, *yhat64_, *y256_, *yhat256_;
};
nlohmann::json* ArcFaceReferenceTest::ref_ = nullptr;
ArcFace* ArcFaceReferenceTest::net_ = nullptr;
std::string* ArcFaceReferenceTest::load_error_ = nullptr;
bool ArcFaceReferenceTest::order_ok_ = false;
FloatTensor* ArcFaceReferenceTest::x_ = nullptr;
FloatTensor* ArcFaceReferenceTest::y64_ = nullptr;
FloatTensor* ArcFaceReferenceTest::yhat64_ = nullptr;
FloatTensor* ArcFaceReferenceTest::y256_ = nullptr;
FloatTensor* ArcFaceReferenceTest::yhat256_ = nullptr;

TEST_F(ArcFaceReferenceTest, FeaturesMatchTheOfficialBackbone) {
  auto f = net_->Embed(*x_);
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(f->shape, (std::vector<int64_t>{2, 512}));
  ExpectNear(f->data, ref_->at("feats"), kFeatureTol, "features");
}

TEST_F(ArcFaceReferenceTest, IdentityLossMatchesTheOfficialIdLoss) {
  auto f = net_->IdFeatures(*y64_);
  ASSERT_TRUE(f.ok()) << f.status();
  ExpectNear(f->data, ref_->at("extract_feats_64"), kFeatureTol, "IDLoss.extract_feats at 64 px");
  auto l64 = net_->IdLoss(*yhat64_, *y64_);
  ASSERT_TRUE(l64.ok()) << l64.status();
  EXPECT_NEAR(*l64, ref_->at("id_loss_64").get<double>(), 1e-5);
  // 256 px images skip the first pooling.
  auto l256 = net_->IdLoss(*yhat256_, *y256_);
  ASSERT_TRUE(l256.ok()) << l256.status();
  EXPECT_NEAR(*l256, ref_->at("id_loss_256").get<double>(), 1e-5);
  // An image against itself loses nothing.
  auto same = net_->IdLoss(*y64_, *y64_);
  ASSERT_TRUE(same.ok());
  EXPECT_NEAR(*same, 0.0, 1e-6);
}

TEST_F(ArcFaceReferenceTest, TheLossReachesTheImageButNotTheReference) {
  const at::Tensor y = ToTorch(*y64_, c10::kCPU).requires_grad_(true);
  const at::Tensor y_hat = ToTorch(*yhat64_, c10::kCPU).requires_grad_(true);
  net_->impl().IdLoss(y_hat, y).backward();
  ASSERT_TRUE(y_hat.grad().defined());
  EXPECT_GT(y_hat.grad().abs().sum().item<double>(), 0.0);
  EXPECT_FALSE(y.grad().defined() && y.grad().abs().sum().item<double>() > 0);  // detached, as the official
}

TEST(ArcFaceTest, RefusesIncompleteWeightsAndBadShapes) {
  std::map<std::string, TensorView> none;
  auto empty = ArcFace::FromTensors(none, "cpu");
  ASSERT_FALSE(empty.ok());
  EXPECT_NE(empty.status().message().find("input_layer.0.weight"), std::string::npos) << empty.status();
  auto wrong = std::make_shared<const FloatTensor>(FloatTensor{{64, 3, 5, 5}, std::vector<float>(64 * 3 * 25)});
  none["input_layer.0.weight"] = ViewOf(wrong);
  auto shaped = ArcFace::FromTensors(none, "cpu");
  ASSERT_FALSE(shaped.ok());
  EXPECT_NE(shaped.status().message().find("shape"), std::string::npos) << shaped.status();
  EXPECT_EQ(IrSe50Units().size(), 24u);
  EXPECT_EQ(IrSe50Units()[3].in, 64);
  EXPECT_EQ(IrSe50Units()[3].depth, 128);
  EXPECT_EQ(IrSe50Units()[3].stride, 2);
}

}  // namespace
}  // namespace ganserve::core::arcface
