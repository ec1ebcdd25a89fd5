// Lightweight domain training: the losses and one optimisation step against
// HyperDomainNet's own (tests/fixtures/lightweight), training lowers the directional
// loss for every kind, checkpoints resume exactly, and bad options are refused.
#include "core/adapt/domain_trainer.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/io/npy.h"
#include "core/models/stylegan2/random_init.h"
#include "tests/testing/clip_guide.h"
#include "tests/testing/shared.h"
#include "tests/testing/tensor_compare.h"

namespace ganserve::core::adapt {
namespace {

using ::ganserve::testing::MaxAbsDiff;
using stylegan2::DomainKind;

std::string Dir() { return std::string(GANSERVE_SOURCE_DIR) + "/tests/fixtures/lightweight/"; }

FloatTensor Npy(const std::string& path) {
  auto t = ReadNpyFloat(path);
  EXPECT_TRUE(t.ok()) << t.status();
  return t.ok() ? *t : FloatTensor{};
}

nlohmann::json Json(const std::string& path) {
  std::ifstream in(path);
  return nlohmann::json::parse(in);
}

// d.npy-style rows [7, 32] as the a1 generator's domain tensors (row k: conv1, convs.k-1).
stylegan2::DomainTensors Rows(const FloatTensor& rows) {
  stylegan2::DomainTensors t;
  for (int k = 0; k < 7; ++k) {
    t.tensors[k == 0 ? std::string("conv1.domain") : absl::StrCat("convs.", k - 1, ".domain")] =
        FloatTensor{{32}, std::vector<float>(rows.data.begin() + k * 32, rows.data.begin() + (k + 1) * 32)};
  }
  return t;
}

FloatTensor Flat(const stylegan2::DomainTensors& t) {
  FloatTensor out{{7, 32}, {}};
  for (int k = 0; k < 7; ++k) {
    const auto& v = t.tensors.at(k == 0 ? std::string("conv1.domain") : absl::StrCat("convs.", k - 1, ".domain")).data;
    out.data.insert(out.data.end(), v.begin(), v.end());
  }
  return out;
}

TEST(DomainLossesTest, MatchHyperDomainNet) {
  const nlohmann::json want = Json(Dir() + "losses.json");
  for (int b : {2, 4, 8}) {
    const std::string p = absl::StrCat(Dir(), "loss_b", b, "_");
    const FloatTensor ts = Npy(p + "t_src.npy"), tt = Npy(p + "t_trg.npy");
    // The template mean of the differences (HyperDomainNet does not renormalise it).
    FloatTensor dir{{64}, std::vector<float>(64, 0.0f)};
    for (int r = 0; r < 79; ++r) {
      for (int i = 0; i < 64; ++i) dir.data[i] += (tt.data[r * 64 + i] - ts.data[r * 64 + i]) / 79.0f;
    }
    auto l = ComputeDomainLosses(Npy(p + "e_src.npy"), Npy(p + "e_trg.npy"), dir);
    ASSERT_TRUE(l.ok()) << l.status();
    const auto& w = want[absl::StrCat("b", b)];
    EXPECT_NEAR(l->direction, w["direction"].get<double>(), 1e-5) << "B=" << b;
    EXPECT_NEAR(l->indomain, w["indomain"].get<double>(), 1e-6) << "B=" << b;
  }
  FloatTensor one{{1, 64}, std::vector<float>(64, 0.125f)};
  EXPECT_FALSE(ComputeDomainLosses(one, one, FloatTensor{{64}, std::vector<float>(64, 1.0f)}).ok());
}

class DomainTrainerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    shared_ = ::ganserve::testing::SharedDir();
    if (shared_.empty()) GTEST_SKIP() << "shared/ fixtures not found: no CLIP model to train with";
    auto guide = ::ganserve::testing::SharedTinyClipGuide(shared_);
    ASSERT_TRUE(guide.has_value());
    guide_ = *guide;
  }
  std::unique_ptr<DomainTrainer> Make(const std::shared_ptr<const stylegan2::Generator>& g,
                                      const DomainTrainerOptions& o) {
    auto t = DomainTrainer::Create(g, {guide_}, o, &cache_);
    EXPECT_TRUE(t.ok()) << t.status();
    return t.ok() ? std::move(*t) : nullptr;
  }
  static std::shared_ptr<const stylegan2::Generator> Tiny() {
    auto cfg = stylegan2::MakeConfig(32, 64, 2, 2, 16);
    auto g = stylegan2::Generator::FromTensors(ViewsOf(std::make_shared<const std::map<std::string, FloatTensor>>(
                                                   stylegan2::RandomGeneratorWeights(cfg, 9, 0.1f))),
                                               nullptr, {});
    EXPECT_TRUE(g.ok()) << g.status();
    return std::move(*g);
  }
  std::string shared_;
  ClipGuide guide_;
  clip::TextEmbeddingCache cache_;
};

// HyperDomainNet's train_step on the a1 generator and the tiny CLIP: "photo" -> "sketch",
// d0 seeded, z fixed, stored noise, no mixing, direction + 1.5 in-domain, Adam lr 0.1.
TEST_F(DomainTrainerTest, OneStepMatchesHyperDomainNet) {
  auto g = stylegan2::Generator::Load(shared_ + "/fixtures/stylegan2/a1_g32_sd512_zip.pt", {});
  ASSERT_TRUE(g.ok()) << g.status();
  std::shared_ptr<const stylegan2::Generator> gen(std::move(*g));
  DomainTrainerOptions o = DomainTrainerDefaults(DomainKind::kDomainModulation);
  o.source_text = "photo";
  o.target_text = "sketch";
  o.lr = 0.1f;
  o.lambda_indomain = 1.5f;
  auto t = Make(gen, o);
  ASSERT_NE(t, nullptr);

  // The text direction: the template mean of the official normalised embeddings.
  const FloatTensor ts = Npy(Dir() + "step_t_src.npy"), tt = Npy(Dir() + "step_t_trg.npy");
  FloatTensor dir{{64}, std::vector<float>(64, 0.0f)};
  for (int r = 0; r < 79; ++r) {
    for (int i = 0; i < 64; ++i) dir.data[i] += (tt.data[r * 64 + i] - ts.data[r * 64 + i]) / 79.0f;
  }
  auto ours = t->TextDirection(0);
  ASSERT_TRUE(ours.ok());
  EXPECT_LT(MaxAbsDiff(*ours, dir), 1e-5f);

  ASSERT_TRUE(t->SetParameters(Rows(Npy(Dir() + "d0.npy"))).ok());
  const FloatTensor z = Npy(Dir() + "z_step.npy");
  auto grad = t->Gradient(z);
  ASSERT_TRUE(grad.ok()) << grad.status();
  const FloatTensor want_grad = Npy(Dir() + "step_grad.npy");
  float scale = 0;
  for (float v : want_grad.data) scale = std::max(scale, std::fabs(v));
  // Float32 through the generator, CLIP and back: relative to the largest entry.
  EXPECT_LT(MaxAbsDiff(Flat(*grad), want_grad), 1e-3f * scale) << "largest |g| " << scale;

  auto losses = t->StepOn(z);
  ASSERT_TRUE(losses.ok()) << losses.status();
  const nlohmann::json want = Json(Dir() + "step_loss.json");
  EXPECT_NEAR(losses->at("direction"), want["direction"].get<double>(), 1e-5);
  EXPECT_NEAR(losses->at("indomain"), want["indomain"].get<double>(), 1e-6);
  EXPECT_NEAR(losses->at("total"), want["total"].get<double>(), 1e-5);
  EXPECT_LT(MaxAbsDiff(Flat(t->Parameters()), Npy(Dir() + "step_d1.npy")), 1e-5f);
  EXPECT_EQ(t->step(), 1);

  // HyperDomainNet's offsets_l2 of d.npy: the sum over layers of mean(d^2).
  o.lambda_l2 = 1.0f;
  auto t2 = Make(gen, o);
  ASSERT_TRUE(t2->SetParameters(Rows(Npy(Dir() + "d.npy"))).ok());
  auto l2 = t2->StepOn(z);
  ASSERT_TRUE(l2.ok());
  EXPECT_NEAR(l2->at("l2"), Json(Dir() + "losses.json")["b2"]["offsets_l2"].get<double>(), 1e-6);
}

// The directional loss on a fixed evaluation batch falls for every kind (tiny random
// CLIP, so small absolute changes; the mean of evaluations after steps 10-20 against the
// one after step 1).
TEST_F(DomainTrainerTest, EveryKindLowersTheDirectionalLoss) {
  const auto gen = Tiny();
  for (DomainKind k : {DomainKind::kDomainModulation, DomainKind::kStyleSpaceDirection, DomainKind::kAffineLight}) {
    DomainTrainerOptions o = DomainTrainerDefaults(k);
    o.target_text = "pencil sketch";
    o.seed = 3;
    o.lr *= 2;
    auto t = Make(gen, o);
    ASSERT_NE(t, nullptr);
    ASSERT_TRUE(t->Step().ok());
    auto before = t->EvalDirectionLoss(99, 4);
    ASSERT_TRUE(before.ok());
    double sum = 0;
    int n = 0;
    for (int i = 2; i <= 20; ++i) {
      auto l = t->Step();
      ASSERT_TRUE(l.ok()) << l.status();
      ASSERT_TRUE(std::isfinite(l->at("total")));
      if (i >= 10) {
        sum += *t->EvalDirectionLoss(99, 4);
        ++n;
      }
    }
    EXPECT_LT(sum / n, *before - 0.01) << stylegan2::DomainKindName(k) << ": " << *before << " -> " << sum / n;
  }
}

TEST_F(DomainTrainerTest, CheckpointResumesExactly) {
  const auto gen = Tiny();
  for (DomainKind k : {DomainKind::kDomainModulation, DomainKind::kAffineLight}) {
    DomainTrainerOptions o = DomainTrainerDefaults(k);
    o.target_text = "pencil sketch";
    auto a = Make(gen, o);
    for (int i = 0; i < 3; ++i) ASSERT_TRUE(a->Step().ok());
    const std::string path = ::testing::TempDir() + "/domain_ckpt_" + std::to_string(getpid()) + ".safetensors";
    ASSERT_TRUE(a->SaveCheckpoint(path).ok());
    auto b = Make(gen, o);
    ASSERT_TRUE(b->RestoreCheckpoint(path).ok());
    EXPECT_EQ(b->step(), 3);
    ASSERT_TRUE(a->Step().ok());
    ASSERT_TRUE(b->Step().ok());
    // The same computation on the same machine: bit for bit.
    for (const auto& [name, t] : a->Parameters().tensors) EXPECT_EQ(t.data, b->Parameters().tensors.at(name).data);
    DomainTrainerOptions other = DomainTrainerDefaults(DomainKind::kStyleSpaceDirection);
    other.target_text = "x";
    EXPECT_FALSE(Make(gen, other)->RestoreCheckpoint(path).ok());
    std::remove(path.c_str());
  }
}

TEST_F(DomainTrainerTest, RefusesWhatCannotTrain) {
  const auto gen = Tiny();
  DomainTrainerOptions o = DomainTrainerDefaults(DomainKind::kDomainModulation);
  o.target_text = "sketch";
  o.batch_size = 1;
  EXPECT_EQ(DomainTrainer::Create(gen, {guide_}, o, &cache_).status().code(), absl::StatusCode::kInvalidArgument);
  o.batch_size = 2;
  o.target_text.clear();
  EXPECT_EQ(DomainTrainer::Create(gen, {guide_}, o, &cache_).status().code(), absl::StatusCode::kInvalidArgument);
  o.target_text = "sketch";
  EXPECT_EQ(DomainTrainer::Create(gen, {}, o, &cache_).status().code(), absl::StatusCode::kInvalidArgument);
  auto trained = Make(gen, o);
  ASSERT_TRUE(trained->Step().ok());
  auto d = gen->MakeDomain(trained->Parameters());
  ASSERT_TRUE(d.ok()) << d.status();
  auto view = stylegan2::Generator::WithDomain(gen, *d);
  ASSERT_TRUE(view.ok());
  EXPECT_EQ(DomainTrainer::Create(*view, {guide_}, o, &cache_).status().code(), absl::StatusCode::kInvalidArgument);
  // What it trained renders as the preview shows it.
  auto preview = trained->Preview(false);
  ASSERT_TRUE(preview.ok());
  EXPECT_GT(MaxAbsDiff(*preview, *trained->Preview(true)), 0.0f);
}

}  // namespace
}  // namespace ganserve::core::adapt
