// OneshotCLIP's losses against the official code: inputs drawn from
// np.random.RandomState(2022) in the order tests/fixtures/oneshot_losses/make_fixture.py
// draws them, values from its reference.json. Also the crop boxes' bounds, where the
// gradients go, and the crop-major grouping of the patch loss.
#include "core/adapt/oneshot_losses.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "core/util/np_random.h"

namespace ganserve::core::adapt {
namespace {

// The losses run in float32, and LibTorch may reduce in another order than the
// official code (a matmul of unit rows instead of F.cosine_similarity, a sum instead
// of bmm): a few float32 ulps (1.2e-7 each) of error, far inside 1e-5 relative.
constexpr double kRel = 1e-5;

// The fixture script's draw(): one rs.randn(n).astype(float32) per tensor.
struct Drawn {
  std::vector<std::pair<at::Tensor, at::Tensor>> constant;  // (target, source) per batch
  at::Tensor patch_target, patch_source;
  std::vector<std::pair<at::Tensor, at::Tensor>> logits;  // (real, fake) per shape
  at::Tensor r1_images, r1_w, crop_images;
};

at::Tensor Randn(NumpyRandomState& rs, at::IntArrayRef shape) {
  int64_t n = 1;
  for (int64_t s : shape) n *= s;
  std::vector<float> v = rs.Randn(static_cast<size_t>(n));
  return at::from_blob(v.data(), shape, at::kFloat).clone();
}

Drawn Draw() {
  NumpyRandomState rs(2022);
  Drawn d;
  for (int64_t b : {2, 4}) {
    at::Tensor target = Randn(rs, {b, 16});
    d.constant.emplace_back(target, Randn(rs, {b, 16}));
  }
  d.patch_source = Randn(rs, {32, 16});
  d.patch_target = d.patch_source + 0.5 * Randn(rs, {32, 16});
  for (const std::vector<int64_t>& shape : {std::vector<int64_t>{4, 1}, std::vector<int64_t>{2, 1, 8, 8}}) {
    at::Tensor real = Randn(rs, shape);
    d.logits.emplace_back(real, Randn(rs, shape));
  }
  d.r1_images = Randn(rs, {2, 3, 8, 8});
  d.r1_w = Randn(rs, {3, 8, 8});
  d.crop_images = Randn(rs, {2, 2, 6, 6});
  return d;
}

// The fixture script's r1_logits(): tanh(0.1 * <w, x_b>), [B, 1].
at::Tensor R1Logits(const at::Tensor& images, const at::Tensor& w) {
  return at::tanh(0.1 * (images * w).sum({1, 2, 3})).unsqueeze(1);
}

std::optional<nlohmann::json> Reference() {
  const std::string path = std::string(GANSERVE_SOURCE_DIR) + "/tests/fixtures/oneshot_losses/reference.json";
  if (!std::filesystem::exists(path)) return std::nullopt;
  std::ifstream in(path);
  return nlohmann::json::parse(in);
}

// The cases compared with the official code: skipped when the fixture is absent.
class OneshotReferenceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::optional<nlohmann::json> ref = Reference();
    if (!ref) GTEST_SKIP() << "tests/fixtures/oneshot_losses/reference.json not found (make_fixture.py makes it)";
    ref_ = *ref;
    d_ = Draw();
  }
  nlohmann::json ref_;
  Drawn d_;
};

TEST_F(OneshotReferenceTest, ConsistencyMatchesOfficialConstLoss) {
  ASSERT_EQ(ref_["const"].size(), d_.constant.size());
  for (size_t i = 0; i < d_.constant.size(); ++i) {
    const nlohmann::json& c = ref_["const"][i];
    ASSERT_EQ(c["batch"].get<int64_t>(), d_.constant[i].first.size(0));
    const double want = c["value"].get<double>();
    const double got = CrossDomainConsistencyLoss(d_.constant[i].first, d_.constant[i].second).item<double>();
    EXPECT_NEAR(got, want, kRel * want) << "batch " << c["batch"];
  }
}

TEST_F(OneshotReferenceTest, PatchMatchesOfficialPatchLoss) {
  ASSERT_EQ(ref_["patch"].size(), 2u);
  for (const nlohmann::json& p : ref_["patch"]) {
    const double tau = p["tau"].get<double>();
    const at::Tensor rows =
        PatchContrastiveLoss(d_.patch_target, d_.patch_source, p["groups"].get<int64_t>(), tau).contiguous();
    ASSERT_EQ(rows.sizes(), at::IntArrayRef({32}));
    const auto want = p["rows"].get<std::vector<double>>();
    ASSERT_EQ(want.size(), 32u);
    // A row's loss is a log-softmax of logits up to 1/tau (14.3 at tau 0.07), where a
    // float32 ulp is 1.9e-6: near-zero losses get that absolute floor on top of kRel.
    const double floor = 4 * std::numeric_limits<float>::epsilon() / tau;
    for (int64_t i = 0; i < 32; ++i) {
      const double w = want[static_cast<size_t>(i)];
      EXPECT_NEAR(rows[i].item<double>(), w, kRel * w + floor) << "tau " << tau << " row " << i;
    }
    const double mean = p["mean"].get<double>();
    EXPECT_NEAR(rows.mean().item<double>(), mean, kRel * mean + floor) << "tau " << tau;
  }
}

TEST_F(OneshotReferenceTest, AdversarialLossesMatchOfficial) {
  ASSERT_EQ(ref_["logistic"].size(), d_.logits.size());
  for (size_t i = 0; i < d_.logits.size(); ++i) {
    const nlohmann::json& l = ref_["logistic"][i];
    const auto& [real, fake] = d_.logits[i];
    ASSERT_EQ(l["shape"].get<std::vector<int64_t>>(), real.sizes().vec());
    const double want_d = l["d_logistic"].get<double>();
    const double want_g = l["g_nonsaturating"].get<double>();
    EXPECT_NEAR(DiscriminatorLogisticLoss(real, fake).item<double>(), want_d, kRel * want_d) << real.sizes();
    EXPECT_NEAR(NonSaturatingLoss(fake).item<double>(), want_g, kRel * want_g) << real.sizes();
  }
}

TEST_F(OneshotReferenceTest, R1MatchesOfficialAndBackpropagates) {
  const at::Tensor images = d_.r1_images.clone().requires_grad_(true);
  const at::Tensor w = d_.r1_w.clone().requires_grad_(true);
  const at::Tensor penalty = R1Penalty(R1Logits(images, w), images);
  const double want = ref_["r1"]["value"].get<double>();
  EXPECT_NEAR(penalty.item<double>(), want, kRel * want);
  // The gradient was taken with create_graph: the penalty reaches w through it, as the
  // official penalty.backward() does.
  penalty.backward();
  ASSERT_TRUE(w.grad().defined());
  const auto want_grad = ref_["r1"]["grad_w"].get<std::vector<double>>();
  ASSERT_EQ(static_cast<int64_t>(want_grad.size()), w.numel());
  double scale = 0;
  for (double g : want_grad) scale = std::max(scale, std::fabs(g));
  const at::Tensor got = w.grad().reshape(-1);
  // Elements near zero are judged against the largest one (same kRel).
  for (int64_t i = 0; i < w.numel(); ++i) {
    EXPECT_NEAR(got[i].item<double>(), want_grad[static_cast<size_t>(i)], kRel * scale) << "w[" << i << "]";
  }
}

TEST_F(OneshotReferenceTest, GatherCropsMatchesOfficialRandSamplingMult) {
  const nlohmann::json& c = ref_["crops"];
  std::vector<CropBox> boxes;
  for (const nlohmann::json& xy : c["boxes_xy"])
    boxes.push_back({.top = xy[1].get<int64_t>(), .left = xy[0].get<int64_t>()});
  const at::Tensor crops = GatherCrops(d_.crop_images, boxes, c["size"].get<int64_t>()).contiguous();
  ASSERT_EQ(crops.sizes().vec(), c["shape"].get<std::vector<int64_t>>());
  const auto want = c["values"].get<std::vector<double>>();
  ASSERT_EQ(static_cast<int64_t>(want.size()), crops.numel());
  const float* got = crops.data_ptr<float>();
  // Copies of float32 values: exact.
  for (size_t i = 0; i < want.size(); ++i) EXPECT_EQ(static_cast<double>(got[i]), want[i]) << "element " << i;
}

TEST(OneshotLossesTest, CropBoxesStayInsideTheOfficialExclusiveBound) {
  std::mt19937_64 rng(5);
  const int64_t image_size = 16, size = 10;  // positions 0..5; 6 = image_size - size is never drawn
  const std::vector<CropBox> boxes = DrawCropBoxes(image_size, size, 4000, rng);
  ASSERT_EQ(boxes.size(), 4000u);
  int64_t min_top = image_size, max_top = -1, min_left = image_size, max_left = -1;
  for (const CropBox& b : boxes) {
    min_top = std::min(min_top, b.top);
    max_top = std::max(max_top, b.top);
    min_left = std::min(min_left, b.left);
    max_left = std::max(max_left, b.left);
  }
  EXPECT_EQ(min_top, 0);
  EXPECT_EQ(min_left, 0);
  EXPECT_EQ(max_top, image_size - size - 1);
  EXPECT_EQ(max_left, image_size - size - 1);
  // x and y are separate draws.
  EXPECT_TRUE(std::any_of(boxes.begin(), boxes.end(), [](const CropBox& b) { return b.top != b.left; }));
  // np.random.randint(0, 0) fails: no full-size crops.
  EXPECT_THROW(DrawCropBoxes(size, size, 1, rng), c10::Error);
  // The boxes always fit GatherCrops.
  EXPECT_EQ(GatherCrops(at::zeros({2, 3, image_size, image_size}), boxes, size).sizes(),
            at::IntArrayRef({4000 * 2, 3, size, size}));
}

TEST(OneshotLossesTest, GradientsReachTargetNotSource) {
  const Drawn d = Draw();
  for (int which = 0; which < 2; ++which) {
    const bool patch = which == 1;
    const at::Tensor target = (patch ? d.patch_target : d.constant[1].first).clone().requires_grad_(true);
    const at::Tensor source = (patch ? d.patch_source : d.constant[1].second).clone().requires_grad_(true);
    const at::Tensor loss =
        patch ? PatchContrastiveLoss(target, source, 2, 0.07).mean() : CrossDomainConsistencyLoss(target, source);
    ASSERT_TRUE(loss.requires_grad()) << (patch ? "patch" : "const");
    loss.backward();
    ASSERT_TRUE(target.grad().defined()) << (patch ? "patch" : "const");
    EXPECT_GT(target.grad().abs().max().item<double>(), 0) << (patch ? "patch" : "const");
    EXPECT_FALSE(source.grad().defined()) << (patch ? "patch" : "const");
  }
}

TEST(OneshotLossesTest, ConsistencyIsZeroForTheSameGeometry) {
  const Drawn d = Draw();
  const at::Tensor x = d.constant[1].first;
  // Cosines ignore scale, so a scaled copy has the same pairwise similarities.
  EXPECT_NEAR(CrossDomainConsistencyLoss(x, 3 * x).item<double>(), 0, 1e-12);
  EXPECT_THROW(CrossDomainConsistencyLoss(x.slice(0, 0, 1), x.slice(0, 0, 1)), c10::Error);
}

// A row-by-row InfoNCE written out directly: its negatives are the source rows of
// rows [group * per_group, (group + 1) * per_group), its own entry at -10.
double SlowPatchRow(const at::Tensor& t, const at::Tensor& s, int64_t row, int64_t groups, double tau) {
  const int64_t per_group = t.size(0) / groups;
  const int64_t first = row / per_group * per_group;
  auto cosine = [&](int64_t j) { return (at::dot(t[row], s[j]) / (t[row].norm() * s[j].norm())).item<double>(); };
  std::vector<double> logits = {cosine(row) / tau};
  for (int64_t j = first; j < first + per_group; ++j) logits.push_back((j == row ? -10.0 : cosine(j)) / tau);
  const double top = *std::max_element(logits.begin(), logits.end());
  double sum = 0;
  for (double l : logits) sum += std::exp(l - top);
  return top + std::log(sum) - logits[0];
}

TEST(OneshotLossesTest, PatchGroupsFollowTheOfficialCropMajorOrder) {
  // Two images, four crops of each, as rand_sampling_mult then CLIP would give them:
  // crop-major rows (crop c of image b at row c * 2 + b), grouped by view(2, -1, D) into
  // rows 0..3 (crops 0-1 of both images) and rows 4..7 (crops 2-3).
  NumpyRandomState rs(11);
  const at::Tensor source = Randn(rs, {8, 6});
  const at::Tensor target = source + 0.3 * Randn(rs, {8, 6});
  const at::Tensor rows = PatchContrastiveLoss(target, source, 2, 0.5);
  for (int64_t i = 0; i < 8; ++i) {
    const double want = SlowPatchRow(target, source, i, 2, 0.5);
    EXPECT_NEAR(rows[i].item<double>(), want, kRel * want) << "row " << i;
  }
  // Image-major rows (all crops of image 0, then image 1) would put each image in its
  // own group: a different loss, so the order matters and is the official one.
  const auto image_major = [](const at::Tensor& x) { return x.view({4, 2, 6}).transpose(0, 1).reshape({8, 6}); };
  const at::Tensor swapped = PatchContrastiveLoss(image_major(target), image_major(source), 2, 0.5);
  EXPECT_GT(std::fabs(swapped.mean().item<double>() - rows.mean().item<double>()), 1e-3);
}

TEST(OneshotLossesTest, GatherCropsIsCropMajor) {
  const at::Tensor images = at::arange(2 * 1 * 5 * 5, at::kFloat).view({2, 1, 5, 5});
  const std::vector<CropBox> boxes = {{.top = 0, .left = 1}, {.top = 2, .left = 0}};
  const at::Tensor crops = GatherCrops(images, boxes, 3);
  ASSERT_EQ(crops.sizes(), at::IntArrayRef({4, 1, 3, 3}));
  for (int64_t c = 0; c < 2; ++c) {
    for (int64_t b = 0; b < 2; ++b) {
      const at::Tensor want =
          images[b].slice(1, boxes[c].top, boxes[c].top + 3).slice(2, boxes[c].left, boxes[c].left + 3);
      EXPECT_TRUE(at::equal(crops[c * 2 + b], want)) << "crop " << c << " image " << b;
    }
  }
  EXPECT_THROW(GatherCrops(images, {{.top = 3, .left = 0}}, 3), c10::Error);
}

}  // namespace
}  // namespace ganserve::core::adapt
