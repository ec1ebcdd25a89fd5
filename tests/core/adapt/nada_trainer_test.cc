// StyleGAN-NADA training on tiny models: the loss falls, only the selected layers
// change, the text direction equals a direct computation, layer mappings, checkpoint
// resume, and the delta reproduces the trained generator.
#include "core/adapt/nada_trainer.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>

#include "core/adapt/nada_adam.h"
#include "core/adapt/text_templates.h"
#include "core/checkpoint/safetensors.h"
#include "core/models/stylegan2/random_init.h"
#include "tests/testing/clip_guide.h"
#include "tests/testing/shared.h"

namespace ganserve::core::adapt {
namespace {

std::shared_ptr<const stylegan2::Generator> TinyGenerator() {
  auto cfg = stylegan2::MakeConfig(32, 64, 2, 2, 16);
  auto views = ViewsOf(
      std::make_shared<const std::map<std::string, FloatTensor>>(stylegan2::RandomGeneratorWeights(cfg, 9, 0.1f)));
  auto g = stylegan2::Generator::FromTensors(views, nullptr, {});
  EXPECT_TRUE(g.ok()) << g.status();
  return std::move(*g);
}

class NadaTrainerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    shared_ = ::ganserve::testing::SharedDir();
    if (shared_.empty()) GTEST_SKIP() << "shared/ fixtures not found: no CLIP model to train with";
    auto guide = ::ganserve::testing::SharedTinyClipGuide(shared_);
    ASSERT_TRUE(guide.has_value());
    guide_ = *guide;
    gen_ = TinyGenerator();
  }
  std::unique_ptr<NadaTrainer> Make(NadaOptions opt) {
    auto t = NadaTrainer::Create(gen_, {guide_}, opt, &cache_);
    EXPECT_TRUE(t.ok()) << t.status();
    return t.ok() ? std::move(*t) : nullptr;
  }
  static NadaOptions Opt() {
    NadaOptions o;
    o.source_text = "photo";
    o.target_text = "pencil sketch";
    o.batch_size = 2;
    o.seed = 4;
    return o;
  }
  std::string shared_;
  ClipGuide guide_;
  std::shared_ptr<const stylegan2::Generator> gen_;
  clip::TextEmbeddingCache cache_;
};

// The directional loss on a fixed evaluation batch falls as training goes on. (Per-step
// losses are too noisy to compare: every step draws new latents and noise.) With a tiny
// random CLIP (64-d embeddings) the reachable alignment is small, so the test uses a
// larger step than the reference's 0.0016, batches of 8 for less gradient noise, and the
// mean of five evaluations (steps 10-30) against the loss after step 1. At batch 2 and lr
// 0.05 the end point depended on the BLAS kernels (OPENBLAS_CORETYPE=Sandybridge: 0.795 ->
// 0.792, default: -> 0.757); here it does not: 0.783 -> mean 0.726 with the default and
// the Sandybridge kernels.
TEST_F(NadaTrainerTest, DirectionalLossFalls) {
  NadaOptions o = Opt();
  o.lr = 0.02f;
  o.batch_size = 8;
  auto t = Make(o);
  // Before any step the two generators are equal, so use the state after one step.
  ASSERT_TRUE(t->Step().ok());
  auto before = t->EvalDirectionLoss(99, 4);
  ASSERT_TRUE(before.ok()) << before.status();
  double sum = 0;
  int evals = 0;
  for (int i = 1; i <= 30; ++i) {
    auto l = t->Step();
    ASSERT_TRUE(l.ok()) << l.status();
    ASSERT_TRUE(std::isfinite(l->at("total")));
    if (i >= 10 && i % 5 == 0) {
      auto e = t->EvalDirectionLoss(99, 4);
      ASSERT_TRUE(e.ok());
      sum += *e;
      ++evals;
    }
  }
  EXPECT_LT(sum / evals, *before * 0.95) << "before " << *before << ", mean of later evaluations " << sum / evals;
}

TEST_F(NadaTrainerTest, OnlySelectedLayersChangeAndTheFrozenGeneratorStays) {
  auto before = gen_->StateDict();
  NadaOptions o = Opt();
  o.layer_preset = LayerPreset::kShape;  // input, conv1, convs.0, convs.1
  auto t = Make(o);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(t->Step().ok());
  auto delta = t->Delta();
  ASSERT_FALSE(delta.empty());
  for (const auto& [name, v] : delta) {
    const bool allowed = name == "input.input" || name.rfind("conv1.", 0) == 0 || name.rfind("convs.0.", 0) == 0 ||
                         name.rfind("convs.1.", 0) == 0;
    EXPECT_TRUE(allowed) << name;
    EXPECT_NE(v.data, before.at(name).data) << name << " did not change";
  }
  EXPECT_EQ(delta.count("convs.2.conv.weight"), 0u);
  EXPECT_EQ(delta.count("style.1.weight"), 0u);  // the mapping never trains
  auto after = gen_->StateDict();
  for (const auto& [name, v] : before) EXPECT_EQ(v.data, after.at(name).data) << name;
}

TEST_F(NadaTrainerTest, TextDirectionEqualsDirectComputation) {
  auto t = Make(Opt());
  auto dir = t->TextDirection(0);
  ASSERT_TRUE(dir.ok());
  auto encode = [&](const std::string& text) {
    std::vector<std::vector<int>> rows;
    for (const auto& p : ApplyTemplates(text)) rows.push_back(*guide_.tokenizer->Tokenize(p, false));
    auto e = guide_.model->EncodeText(rows);
    EXPECT_TRUE(e.ok());
    return *e;
  };
  FloatTensor s = encode("photo"), g = encode("pencil sketch");
  ASSERT_EQ(s.shape[0], 79);
  const int d = 64;
  std::vector<double> mean(d, 0.0);
  for (int r = 0; r < 79; ++r) {
    double ns = 0, ng = 0;
    for (int k = 0; k < d; ++k) {
      ns += s.data[r * d + k] * s.data[r * d + k];
      ng += g.data[r * d + k] * g.data[r * d + k];
    }
    for (int k = 0; k < d; ++k) mean[k] += (g.data[r * d + k] / std::sqrt(ng) - s.data[r * d + k] / std::sqrt(ns)) / 79;
  }
  double norm = 0;
  for (double v : mean) norm += v * v;
  norm = std::sqrt(norm);
  for (int k = 0; k < d; ++k) EXPECT_NEAR(dir->data[k], mean[k] / norm, 1e-5) << k;
}

TEST_F(NadaTrainerTest, AdaptiveSelectionPicksKValidLayers) {
  NadaOptions o = Opt();
  o.auto_layer_k = 3;
  o.auto_layer_batch = 2;
  auto t = Make(o);
  ASSERT_TRUE(t->Step().ok());
  const auto& layers = t->last_trained_layers();
  ASSERT_EQ(layers.size(), 3u);
  std::set<std::string> unique(layers.begin(), layers.end());
  EXPECT_EQ(unique.size(), 3u);
  for (const auto& l : layers) {
    EXPECT_TRUE(l == "conv1" || l.rfind("convs.", 0) == 0 || l.rfind("to_rgbs.", 0) == 0) << l;
  }
}

TEST(LayerRankingTest, PlantedChangesAreFoundInOrder) {
  // 2 samples, 6 rows, 4 dims: rows 4, 1 and 5 moved by 3, 2 and 1 (row 1 only in one
  // sample, so its mean is 1); the others by tiny noise.
  FloatTensor w0{{2, 6, 4}, std::vector<float>(48, 0.f)};
  FloatTensor w = w0;
  for (size_t i = 0; i < w.data.size(); ++i) w.data[i] = 1e-3f * static_cast<float>(i % 3);
  auto set_row = [&](int sample, int row, float v) {
    for (int j = 0; j < 4; ++j) w.data[(sample * 6 + row) * 4 + j] = v;
  };
  for (int s = 0; s < 2; ++s) {
    set_row(s, 4, 3.f);
    set_row(s, 5, -2.f);
  }
  set_row(0, 1, 2.f);  // mean |delta| 1.0
  EXPECT_EQ(RankLatentIndices(w0, w, 3), (std::vector<int>{4, 5, 1}));
  EXPECT_EQ(RankLatentIndices(w0, w, 1), (std::vector<int>{4}));
}

TEST(LayerMappingTest, OfficialIsOneOffAndConsumerFollowsTheW) {
  // 1024 px: n_latent 18, convs 0..15, to_rgbs 0..7.
  EXPECT_EQ(LayerForLatentIndex(0, 18, LayerMapping::kOfficial), "conv1");
  EXPECT_EQ(LayerForLatentIndex(1, 18, LayerMapping::kOfficial), "to_rgb1");
  EXPECT_EQ(LayerForLatentIndex(5, 18, LayerMapping::kOfficial), "convs.3");  // consumes w[4]
  EXPECT_EQ(LayerForLatentIndex(0, 18, LayerMapping::kConsumer), "conv1");
  EXPECT_EQ(LayerForLatentIndex(1, 18, LayerMapping::kConsumer), "convs.0");  // convs[0] consumes w[1]
  EXPECT_EQ(LayerForLatentIndex(5, 18, LayerMapping::kConsumer), "convs.4");
  EXPECT_EQ(LayerForLatentIndex(16, 18, LayerMapping::kConsumer), "convs.15");
  EXPECT_EQ(LayerForLatentIndex(17, 18, LayerMapping::kConsumer), "to_rgbs.7");  // only the last ToRGB reads w[17]
  EXPECT_EQ(PresetLayers(LayerPreset::kShape, 16), (std::vector<std::string>{"input", "conv1", "convs.0", "convs.1"}));
}

// The reference's --phase sets: children[1:3] (input, conv1) plus a slice of convs.
TEST(LayerPresetTest, PresetsAreTheReferencePhases) {
  auto convs = [](std::vector<std::string> head, int a, int b) {
    for (int i = a; i < b; ++i) head.push_back("convs." + std::to_string(i));
    return head;
  };
  EXPECT_EQ(PresetLayers(LayerPreset::kDefault, 16), convs({"input", "conv1"}, 0, 16));
  EXPECT_EQ(PresetLayers(LayerPreset::kNoFine, 16), convs({"input", "conv1"}, 0, 10));
  EXPECT_EQ(PresetLayers(LayerPreset::kShapeExpanded, 16), convs({"input", "conv1"}, 0, 3));
  EXPECT_EQ(PresetLayers(LayerPreset::kTexture, 16), convs({"input", "conv1"}, 2, 10));
  EXPECT_EQ(PresetLayers(LayerPreset::kShape, 16), convs({"input", "conv1"}, 0, 2));
  // A small generator has fewer convs: the slices stop at its last.
  EXPECT_EQ(PresetLayers(LayerPreset::kNoFine, 6), convs({"input", "conv1"}, 0, 6));
}

// Adam with the reference's betas on a planted selection sequence: a parameter without a
// gradient for steps 1-4 (another layer was selected), then selected at steps 5 and 6.
TEST(NadaAdamTest, SharedCountsScaleTheFirstUpdateOfALateLayer) {
  const double lr = 0.002 * 0.8, b2 = kNadaAdamBeta2, eps = kNadaAdamEps;
  const double g5 = 0.3, g6 = -0.05;
  for (bool shared : {true, false}) {
    at::Tensor value = at::full({1}, 1.0, at::kDouble);
    AdamSlot slot{at::zeros({1}, at::kDouble), 0};
    for (int t = 1; t <= 4; ++t) {
      EXPECT_EQ(AdamUpdate(lr, at::Tensor(), shared, value, slot), shared) << t;
      EXPECT_EQ(value.item<double>(), 1.0) << "a parameter without a gradient does not move";
    }
    ASSERT_TRUE(AdamUpdate(lr, at::full({1}, g5, at::kDouble), shared, value, slot));
    ASSERT_TRUE(AdamUpdate(lr, at::full({1}, g6, at::kDouble), shared, value, slot));
    // Direct computation: the count is the global step (shared) or the parameter's own.
    const int t5 = shared ? 5 : 1, t6 = shared ? 6 : 2;
    double v = (1 - b2) * g5 * g5;
    double x = 1.0 - lr * g5 / (std::sqrt(v) / std::sqrt(1 - std::pow(b2, t5)) + eps);
    const double first_move = 1.0 - x;
    v = b2 * v + (1 - b2) * g6 * g6;
    x -= lr * g6 / (std::sqrt(v) / std::sqrt(1 - std::pow(b2, t6)) + eps);
    EXPECT_NEAR(value.item<double>(), x, 1e-12) << (shared ? "shared" : "per parameter");
    EXPECT_EQ(slot.steps, t6);
    // The size of the first update: sqrt((1-b2^5)/(1-b2)) = 2.23 lr shared, lr per parameter.
    EXPECT_NEAR(first_move / lr, shared ? std::sqrt((1 - std::pow(b2, 5)) / (1 - b2)) : 1.0, 1e-4);
  }
}

// With layer selection and shared counts, every parameter's Adam count is the step
// count, also for layers trained only on later steps.
TEST_F(NadaTrainerTest, SelectionStepsEveryParameterWithSharedCounts) {
  NadaOptions o = Opt();
  o.auto_layer_k = 1;
  o.auto_layer_batch = 2;
  o.seed = 1;  // selects convs.1, convs.0, convs.3 on steps 1-3
  auto t = Make(o);
  std::map<std::string, int> first_selected;  // layer -> the step that first trained it
  for (int i = 1; i <= 3; ++i) {
    ASSERT_TRUE(t->Step().ok());
    for (const auto& l : t->last_trained_layers()) first_selected.emplace(l, i);
  }
  int late = 0;
  for (const auto& [layer, step] : first_selected) late += step > 1;
  // Selection is data-dependent (a 64-d random CLIP); if this seed ever stops selecting
  // a new layer after step 1 the check below proves nothing, so it stops here.
  ASSERT_GT(late, 0) << "seed 1 should select a new layer after step 1";
  const std::string path = ::testing::TempDir() + "/nada_shared_" + std::to_string(::getpid()) + ".safetensors";
  ASSERT_TRUE(t->SaveCheckpoint(path).ok());
  auto f = LoadSafetensors(path);
  ASSERT_TRUE(f.ok()) << f.status();
  int counted = 0;
  for (const auto& [key, value] : f->metadata) {
    if (key.rfind("adam_steps/", 0) != 0) continue;
    EXPECT_EQ(value, "3") << key;
    ++counted;
  }
  EXPECT_GT(counted, 0);
  // Resumed, the untrained parameters carry the global count too: the next step is the
  // same as without the interruption.
  auto la = t->Step();
  auto b = Make(o);
  ASSERT_TRUE(b->RestoreCheckpoint(path).ok());
  auto lb = b->Step();
  ASSERT_TRUE(la.ok() && lb.ok());
  auto da = t->Delta(), db = b->Delta();
  ASSERT_EQ(da.size(), db.size());
  for (const auto& [k, v] : da) EXPECT_EQ(v.data, db.at(k).data) << k;
}

// Style mixing: the frozen and the trainable generator each draw their own crossover in
// [1, n_latent - 1], as the reference's two generators do.
TEST_F(NadaTrainerTest, MixedStepsDrawACrossoverPerGenerator) {
  NadaOptions o = Opt();
  o.mixing = 1.0f;
  auto t = Make(o);
  const int n_latent = gen_->config().n_latent;
  int differ = 0;
  for (int i = 0; i < 8; ++i) {
    ASSERT_TRUE(t->Step().ok());
    auto [kf, kt] = t->last_inject_indices();
    EXPECT_GE(kf, 1);
    EXPECT_LE(kf, n_latent - 1);
    EXPECT_GE(kt, 1);
    EXPECT_LE(kt, n_latent - 1);
    differ += kf != kt;
  }
  EXPECT_GT(differ, 0) << "8 mixed steps, and the two generators always crossed at the same row";
  o.mixing = 0.0f;
  auto plain = Make(o);
  ASSERT_TRUE(plain->Step().ok());
  EXPECT_EQ(plain->last_inject_indices(), std::make_pair(0, 0));
}

// A global-loss-only run (the paper's Fig. 13): lambda_direction 0 trains on the global
// CLIP loss alone.
TEST_F(NadaTrainerTest, GlobalLossAloneTrains) {
  NadaOptions o = Opt();
  o.lambda_direction = 0;
  o.lambda_global = 1;
  auto t = Make(o);
  auto l = t->Step();
  ASSERT_TRUE(l.ok()) << l.status();
  EXPECT_EQ(l->count("direction"), 0u);
  ASSERT_EQ(l->count("global"), 1u);
  EXPECT_FALSE(t->Delta().empty());
}

TEST_F(NadaTrainerTest, CheckpointResumeReplaysTheSameSteps) {
  auto a = Make(Opt());
  for (int i = 0; i < 2; ++i) ASSERT_TRUE(a->Step().ok());
  const std::string path = ::testing::TempDir() + "/nada_ckpt_" + std::to_string(::getpid()) + ".safetensors";
  ASSERT_TRUE(a->SaveCheckpoint(path).ok());
  auto la = a->Step();
  auto b = Make(Opt());
  ASSERT_TRUE(b->RestoreCheckpoint(path).ok());
  EXPECT_EQ(b->step(), 2);
  auto lb = b->Step();
  ASSERT_TRUE(la.ok() && lb.ok());
  EXPECT_FLOAT_EQ(la->at("total"), lb->at("total"));
  auto da = a->Delta(), db = b->Delta();
  ASSERT_EQ(da.size(), db.size());
  for (const auto& [k, v] : da) EXPECT_EQ(v.data, db.at(k).data) << k;
}

TEST_F(NadaTrainerTest, DeltaOverBaseReproducesTheTrainedGenerator) {
  auto t = Make(Opt());
  for (int i = 0; i < 2; ++i) ASSERT_TRUE(t->Step().ok());
  // Round trip through a safetensors file, as the model repository stores deltas.
  const std::string path = ::testing::TempDir() + "/delta_" + std::to_string(::getpid()) + ".safetensors";
  ASSERT_TRUE(SaveSafetensors(path, t->Delta(), {}).ok());
  auto delta = LoadSafetensors(path);
  ASSERT_TRUE(delta.ok());
  auto sd = std::make_shared<std::map<std::string, FloatTensor>>(gen_->StateDict());
  for (auto& [k, v] : delta->tensors) (*sd)[k] = *ToFloatTensor(v);
  auto views = ViewsOf(sd);
  auto avg = std::make_shared<const FloatTensor>(gen_->mean_latent());
  TensorView avg_view = ViewOf(avg);
  auto adapted = stylegan2::Generator::FromTensors(views, &avg_view, {});
  ASSERT_TRUE(adapted.ok());
  auto preview = t->Preview(false);
  ASSERT_TRUE(preview.ok());
  auto frozen = t->Preview(true);
  ASSERT_TRUE(frozen.ok());
  EXPECT_NE(preview->data, frozen->data);  // training changed the images
  // The adapted generator renders what the trainer renders for the same w+.
  stylegan2::GenerateParams p;
  p.latents.shape = {1, 64};
  p.latents.data = stylegan2::SeedToZ(11, 64);
  p.truncation = 0.7f;
  p.return_wplus = true;
  auto via_base = gen_->Generate(p);
  ASSERT_TRUE(via_base.ok());
  auto via_adapted = (*adapted)->Generate(p);
  ASSERT_TRUE(via_adapted.ok());
  EXPECT_EQ(via_base->wplus.data, via_adapted->wplus.data);  // mapping and mean unchanged
  EXPECT_NE(via_base->images.data, via_adapted->images.data);
  // Identical images: the trainer's generator and the one rebuilt from base + delta.
  auto via_trainer = t->Render(via_base->wplus);
  ASSERT_TRUE(via_trainer.ok()) << via_trainer.status();
  EXPECT_EQ(via_trainer->data, via_adapted->images.data);
}

TEST_F(NadaTrainerTest, ImageGuidedDirectionTrains) {
  NadaOptions o = Opt();
  o.target_text = "";
  Rgb8Image img{40, 30, std::vector<uint8_t>(40 * 30 * 3)};
  for (size_t i = 0; i < img.pixels.size(); ++i) img.pixels[i] = static_cast<uint8_t>((i * 37) % 256);
  o.target_images = {img, img};
  auto t = Make(o);
  ASSERT_NE(t, nullptr);
  auto dir = t->TextDirection(0);
  ASSERT_TRUE(dir.ok());
  double norm = 0;
  for (float v : dir->data) norm += v * v;
  EXPECT_NEAR(norm, 1.0, 1e-5);
  auto l = t->Step();
  ASSERT_TRUE(l.ok()) << l.status();
  EXPECT_TRUE(std::isfinite(l->at("direction")));
  o.auto_layer_k = 2;  // selection is text-guided
  EXPECT_EQ(NadaTrainer::Create(gen_, {guide_}, o, &cache_).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(NadaTrainerTest, RejectsBadOptions) {
  NadaOptions o = Opt();
  o.target_text = "";
  EXPECT_EQ(NadaTrainer::Create(gen_, {guide_}, o, &cache_).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(NadaTrainer::Create(gen_, {}, Opt(), &cache_).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace ganserve::core::adapt
