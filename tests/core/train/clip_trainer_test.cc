#include "core/train/clip_trainer.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>

#include "core/models/clip/bpe_learner.h"
#include "core/models/clip/random_init.h"
#include "core/models/clip/tokenizer.h"

namespace ganserve::core::train {
namespace {

clip::ClipConfig Tiny(int vocab) {
  clip::ClipConfig c;
  c.embed_dim = 16;
  c.image_resolution = 8;
  c.vision_layers = 1;
  c.vision_width = 64;
  c.vision_patch_size = 4;
  c.vision_heads = 1;
  c.context_length = 8;
  c.vocab_size = vocab;
  c.transformer_width = 64;
  c.transformer_heads = 1;
  c.transformer_layers = 1;
  return c;
}

// Batch of 8: images 0-3 bright (red), 4-7 dark (blue), one caption per image; the
// captions "red" / "blue" are true of every image of their colour.
struct Batch {
  FloatTensor images;
  std::vector<std::vector<int>> tokens;
  std::vector<uint8_t> truth;
};

Batch MakeBatch(const clip::Tokenizer& tok) {
  Batch b;
  b.images.shape = {8, 3, 8, 8};
  for (int i = 0; i < 8; ++i) {
    for (int c = 0; c < 3; ++c) {
      const float v = i < 4 ? (c == 0 ? 1.5f : -1.0f) : (c == 2 ? 1.5f : -1.0f);
      for (int p = 0; p < 64; ++p) b.images.data.push_back(v);
    }
    b.tokens.push_back(*tok.Tokenize(i < 4 ? "red" : "blue", false, 8));
  }
  for (int i = 0; i < 8; ++i) {
    for (int t = 0; t < 8; ++t) b.truth.push_back((i < 4) == (t < 4));
  }
  return b;
}

TEST(ClipTrainerTest, LearnsToMatchImagesAndCaptions) {
  auto vocab = clip::LearnBpeVocabulary({"red blue", "red blue"}, 20);
  ASSERT_TRUE(vocab.ok());
  auto tok = clip::Tokenizer::FromText(*vocab);
  ASSERT_TRUE(tok.ok());
  const clip::ClipConfig cfg = Tiny(static_cast<int>((*tok)->vocab_size()));
  ClipTrainerOptions opt;
  opt.lr = 2e-3f;
  opt.weight_decay = 0;
  opt.warmup_steps = 10;
  opt.total_steps = 150;
  auto trainer = ClipTrainer::Create(InitialClipWeights(cfg, 1), opt);
  ASSERT_TRUE(trainer.ok()) << trainer.status();
  const Batch b = MakeBatch(**tok);
  float first = 0, last = 0, accuracy = 0;
  for (int i = 0; i < 150; ++i) {
    auto losses = (*trainer)->Step(b.images, b.tokens, b.truth);
    ASSERT_TRUE(losses.ok()) << losses.status();
    if (i == 0) first = losses->at("loss");
    last = losses->at("loss");
    accuracy = losses->at("accuracy");
  }
  // Half the captions are true of each image: the loss's floor is ln(4) per direction.
  EXPECT_LT(last, first);
  EXPECT_LT(last, std::log(4.0) + 0.2);
  EXPECT_EQ(accuracy, 1.0f);
  // The weights load as an ordinary CLIP model that tells the two apart.
  std::map<std::string, TensorView> views;
  for (const auto& [k, t] : (*trainer)->Weights()) views[k] = ViewOf(std::make_shared<const FloatTensor>(t));
  auto model = clip::ClipModel::FromTensors(views, "cpu");
  ASSERT_TRUE(model.ok()) << model.status();
  auto img = (*model)->EncodeImage(b.images);
  auto txt = (*model)->EncodeText({b.tokens[0], b.tokens[4]});
  ASSERT_TRUE(img.ok() && txt.ok());
  auto dot = [&](int i, int t) {
    double s = 0, ni = 0, nt = 0;
    for (int j = 0; j < 16; ++j) {
      s += img->data[i * 16 + j] * txt->data[t * 16 + j];
      ni += img->data[i * 16 + j] * img->data[i * 16 + j];
      nt += txt->data[t * 16 + j] * txt->data[t * 16 + j];
    }
    return s / std::sqrt(ni * nt);
  };
  EXPECT_GT(dot(0, 0), dot(0, 1));
  EXPECT_GT(dot(7, 1), dot(7, 0));
}

double Std(const FloatTensor& t) {
  double s = 0, s2 = 0;
  for (float v : t.data) {
    s += v;
    s2 += static_cast<double>(v) * v;
  }
  const double n = static_cast<double>(t.data.size());
  return std::sqrt(s2 / n - (s / n) * (s / n));
}

double MaxAbs(const FloatTensor& t) {
  double m = 0;
  for (float v : t.data) m = std::max(m, std::abs(static_cast<double>(v)));
  return m;
}

// The scales of OpenAI's initialisation (w = 64, two text layers). A sample std of n
// values has a relative standard error of about (2 n)^-1/2: allowed 4 of them.
TEST(ClipTrainerTest, InitialWeightsFollowClipsScales) {
  clip::ClipConfig cfg = Tiny(100);
  cfg.transformer_layers = 2;
  const auto w = InitialClipWeights(cfg, 3);
  const auto reference = clip::RandomClipWeights(cfg, 3);
  ASSERT_EQ(w.size(), reference.size());
  for (const auto& [k, t] : reference) EXPECT_EQ(w.at(k).shape, t.shape) << k;
  auto near = [&](const std::string& key, double want) {
    const FloatTensor& t = w.at(key);
    return std::abs(Std(t) / want - 1) < 4 / std::sqrt(2.0 * static_cast<double>(t.data.size()));
  };
  const std::string t0 = "transformer.resblocks.0.", v0 = "visual.transformer.resblocks.0.";
  EXPECT_PRED2(near, "token_embedding.weight", 0.02);
  EXPECT_PRED2(near, t0 + "attn.in_proj_weight", 0.125);
  EXPECT_PRED2(near, t0 + "attn.out_proj.weight", 0.125 / 2);
  EXPECT_PRED2(near, t0 + "mlp.c_fc.weight", std::pow(128, -0.5));
  EXPECT_PRED2(near, "text_projection", std::pow(64, -0.5));
  // Uniform draws: within their bound, with the uniform's std.
  const double conv = std::pow(3 * 4 * 4, -0.5), xavier = std::sqrt(6.0 / (64 + 192));
  EXPECT_LE(MaxAbs(w.at("visual.conv1.weight")), conv);
  EXPECT_LE(MaxAbs(w.at(v0 + "attn.in_proj_weight")), xavier);
  EXPECT_PRED2(near, v0 + "attn.in_proj_weight", xavier / std::sqrt(3.0));
  EXPECT_PRED2(near, v0 + "mlp.c_proj.weight", std::pow(256, -0.5) / std::sqrt(3.0));
  EXPECT_EQ(MaxAbs(w.at(v0 + "attn.in_proj_bias")), 0);
  EXPECT_EQ(w.at(v0 + "ln_1.weight").data.front(), 1.0f);
  EXPECT_FLOAT_EQ(w.at("logit_scale").data.front(), std::log(1 / 0.07));
  // One seed, one draw.
  EXPECT_EQ(InitialClipWeights(cfg, 3).at("visual.proj").data, w.at("visual.proj").data);
  EXPECT_NE(InitialClipWeights(cfg, 4).at("visual.proj").data, w.at("visual.proj").data);
}

TEST(ClipTrainerTest, RefusesBatchesItCannotLearnFrom) {
  auto vocab = clip::LearnBpeVocabulary({"red blue", "red blue"}, 20);
  auto tok = clip::Tokenizer::FromText(*vocab);
  ASSERT_TRUE(tok.ok());
  auto trainer = ClipTrainer::Create(clip::RandomClipWeights(Tiny(static_cast<int>((*tok)->vocab_size())), 1), {});
  ASSERT_TRUE(trainer.ok());
  Batch b = MakeBatch(**tok);
  std::vector<uint8_t> none(b.truth.size(), 0);
  EXPECT_EQ((*trainer)->Step(b.images, b.tokens, none).status().code(), absl::StatusCode::kInvalidArgument);
  b.tokens[0].push_back(1);
  EXPECT_EQ((*trainer)->Step(b.images, b.tokens, b.truth).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ((*trainer)->step(), 0);
}

}  // namespace
}  // namespace ganserve::core::train
