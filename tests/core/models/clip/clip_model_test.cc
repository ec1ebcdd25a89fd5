// CLIP encoders against the official model's outputs (shared/fixtures/clip), from both
// OpenAI's TorchScript archive format and a plain state dict, within 1e-4.
#include "core/models/clip/clip_model.h"

#include <gtest/gtest.h>

#include <unistd.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/io/npy.h"
#include "core/models/clip/tokenizer.h"
#include "tests/testing/shared.h"
#include "tests/testing/tensor_compare.h"

namespace ganserve::core::clip {
namespace {

using ::ganserve::testing::MaxAbsDiff;

class ClipParityTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    shared_ = ::ganserve::testing::SharedDir();
    if (shared_.empty()) GTEST_SKIP() << "shared/ fixtures not found (set GANSERVE_SHARED_DIR)";
    refs_ = shared_ + "/fixtures/clip/refs/";
    auto m = ClipModel::Load(shared_ + "/fixtures/clip/" + GetParam(), "cpu", &report_);
    ASSERT_TRUE(m.ok()) << m.status();
    model_ = std::move(*m);
  }
  FloatTensor Npy(const std::string& name) {
    auto t = ReadNpyFloat(refs_ + name);
    EXPECT_TRUE(t.ok()) << t.status();
    return t.ok() ? *t : FloatTensor{};
  }
  std::vector<std::vector<int>> Tokens() {
    auto v = ReadNpy(refs_ + "text20_tokens.npy");
    EXPECT_TRUE(v.ok());
    auto ids = ToInt64Vector(*v);
    std::vector<std::vector<int>> rows(20);
    for (size_t i = 0; i < ids->size(); ++i) rows[i / 77].push_back(static_cast<int>((*ids)[i]));
    return rows;
  }
  std::string shared_, refs_;
  ClipLoadReport report_;
  std::unique_ptr<ClipModel> model_;
};

TEST_P(ClipParityTest, ConfigFollowsBuildModel) {
  const ClipConfig& c = model_->config();
  EXPECT_EQ(c.embed_dim, 64);
  EXPECT_EQ(c.image_resolution, 224);
  EXPECT_EQ(c.vision_layers, 2);
  EXPECT_EQ(c.vision_width, 128);
  EXPECT_EQ(c.vision_patch_size, 32);
  EXPECT_EQ(c.vision_heads, 2);
  EXPECT_EQ(c.transformer_heads, 2);
  EXPECT_EQ(c.transformer_layers, 2);
  EXPECT_EQ(c.context_length, 77);
  EXPECT_EQ(c.vocab_size, 49408);
  EXPECT_TRUE(report_.ignored_tensors.empty());
  EXPECT_FLOAT_EQ(model_->logit_scale(), 2.533203125f);
}

TEST_P(ClipParityTest, EncodeImage) {
  auto f = model_->EncodeImage(Npy("images4_preprocessed.npy"));
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_LE(MaxAbsDiff(*f, Npy("encode_image_images4.npy")), 1e-4f);
}

TEST_P(ClipParityTest, EncodeText) {
  auto f = model_->EncodeText(Tokens());
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_LE(MaxAbsDiff(*f, Npy("encode_text_text20.npy")), 1e-4f);
}

TEST_P(ClipParityTest, Logits) {
  FloatTensor images = Npy("images4_preprocessed.npy");
  for (const char* png : {"img_300x200_preprocessed.npy", "img_150x257_preprocessed.npy"}) {
    FloatTensor p = Npy(png);
    images.data.insert(images.data.end(), p.data.begin(), p.data.end());
    images.shape[0] += 1;
  }
  auto logits = model_->Logits(images, Tokens());
  ASSERT_TRUE(logits.ok()) << logits.status();
  EXPECT_LE(MaxAbsDiff(*logits, Npy("logits_per_image_6x20.npy")), 1e-4f);
}

TEST_P(ClipParityTest, TokenizerFeedsTheSameIds) {
  const std::string vocab = shared_ + "/clip/bpe_simple_vocab_16e6.txt.gz";
  auto tok = Tokenizer::Load(vocab);
  ASSERT_TRUE(tok.ok());
  std::ifstream in(refs_ + "text20_prompts.json");
  auto prompts = nlohmann::json::parse(in);
  auto want = Tokens();
  for (size_t i = 0; i < prompts.size(); ++i) {
    auto ids = (*tok)->Tokenize(prompts[i].get<std::string>(), /*truncate=*/true);
    ASSERT_TRUE(ids.ok());
    EXPECT_EQ(*ids, want[i]) << i;
  }
}

TEST_P(ClipParityTest, BadInputsAreRejected) {
  FloatTensor wrong{{1, 3, 32, 32}, std::vector<float>(3 * 32 * 32, 0.f)};
  EXPECT_EQ(model_->EncodeImage(wrong).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(model_->EncodeText({{1, 2, 3}}).status().code(), absl::StatusCode::kInvalidArgument);
  std::vector<int> bad(77, 0);
  bad[3] = 49408;
  EXPECT_EQ(model_->EncodeText({bad}).status().code(), absl::StatusCode::kInvalidArgument);
}

INSTANTIATE_TEST_SUITE_P(BothFormats, ClipParityTest,
                         ::testing::Values("b1_clip_tiny_traced.pt", "b2_clip_tiny_state_dict.pt"));

TEST(ClipLoadTest, TruncatedArchiveGivesAClearError) {
  const std::string shared = ::ganserve::testing::SharedDir();
  if (shared.empty()) GTEST_SKIP() << "shared/ fixtures not found";
  std::ifstream in(shared + "/fixtures/clip/b1_clip_tiny_traced.pt", std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const std::string path = ::testing::TempDir() + "/clip_truncated_" + std::to_string(::getpid()) + ".pt";
  std::ofstream(path, std::ios::binary) << bytes.substr(0, bytes.size() / 2);
  auto m = ClipModel::Load(path, "cpu");
  EXPECT_EQ(m.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(m.status().message().find(path), std::string::npos) << m.status();
}

}  // namespace
}  // namespace ganserve::core::clip

#include "core/models/clip/text_embedding_cache.h"

namespace ganserve::core::clip {
namespace {

TEST(TextEmbeddingCacheTest, EncodesOnceAndMatchesDirectEncoding) {
  const std::string shared = ::ganserve::testing::SharedDir();
  if (shared.empty()) GTEST_SKIP() << "shared/ fixtures not found";
  auto model = ClipModel::Load(shared + "/fixtures/clip/b2_clip_tiny_state_dict.pt", "cpu");
  auto tok = Tokenizer::Load(shared + "/clip/bpe_simple_vocab_16e6.txt.gz");
  ASSERT_TRUE(model.ok() && tok.ok());
  TextEmbeddingCache cache(3);
  std::vector<std::string> prompts = {"a photo", "a sketch", "a photo"};
  auto a = cache.Encode("tiny", **model, **tok, prompts);
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(cache.misses(), 3);  // the duplicate in one call is a miss too, encoded once per row
  auto b = cache.Encode("tiny", **model, **tok, {"a sketch", "a photo"});
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(cache.hits(), 2);
  auto direct = (*model)->EncodeText({*(*tok)->Tokenize("a sketch", false)});
  ASSERT_TRUE(direct.ok());
  // Cached rows equal a direct encoding up to the rounding of a different batch shape
  // (kernels are chosen per CPU and batch size).
  for (int i = 0; i < 64; ++i) {
    EXPECT_NEAR(b->data[i], direct->data[i], 1e-5f);
    EXPECT_NEAR(a->data[i], a->data[2 * 64 + i], 1e-5f);
  }
  // Bounded: two more prompts evict the least recently used.
  ASSERT_TRUE(cache.Encode("tiny", **model, **tok, {"x", "y"}).ok());
  EXPECT_EQ(cache.size(), 3u);
  std::string long_prompt;
  for (int i = 0; i < 100; ++i) long_prompt += "dog ";
  EXPECT_EQ(cache.Encode("tiny", **model, **tok, {long_prompt}).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace ganserve::core::clip
