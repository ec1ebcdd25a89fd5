// The CLIP tokenizer against the official tokenizer's outputs for 151 prompts
// (shared/fixtures/tokenizer): cleaning, BPE ids, truncation and decoding, all exact.
#include "core/models/clip/tokenizer.h"

#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "core/models/clip/text_clean.h"
#include "tests/testing/shared.h"

namespace ganserve::core::clip {
namespace {

class TokenizerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    shared_ = ::ganserve::testing::SharedDir();
    if (shared_.empty()) GTEST_SKIP() << "shared/ not found (set GANSERVE_SHARED_DIR): no vocabulary to test with";
    auto t = Tokenizer::Load(shared_ + "/clip/bpe_simple_vocab_16e6.txt.gz");
    ASSERT_TRUE(t.ok()) << t.status();
    tok_ = std::move(*t);
    std::ifstream in(shared_ + "/fixtures/tokenizer/clip_tokenize_cases.json");
    ASSERT_TRUE(in);
    cases_ = nlohmann::json::parse(in)["cases"];
    ASSERT_EQ(cases_.size(), 151u);
  }
  std::string shared_;
  std::unique_ptr<Tokenizer> tok_;
  nlohmann::json cases_;
};

TEST_F(TokenizerTest, VocabularySize) { EXPECT_EQ(tok_->vocab_size(), 49408u); }

TEST_F(TokenizerTest, CleaningMatchesFtfyHtmlAndLower) {
  int wrong = 0;
  for (const auto& c : cases_) {
    auto cleaned = CleanForClip(c["text"].get<std::string>());
    ASSERT_TRUE(cleaned.ok());
    if (*cleaned != c["cleaned"].get<std::string>()) {
      ++wrong;
      ADD_FAILURE() << "case " << c["id"] << " (" << c["category"] << "): got '" << *cleaned << "', want '"
                    << c["cleaned"].get<std::string>() << "'";
    }
  }
  EXPECT_EQ(wrong, 0);
}

TEST_F(TokenizerTest, AllCasesMatchExactly) {
  for (const auto& c : cases_) {
    const std::string text = c["text"];
    auto ids = tok_->Encode(text);
    ASSERT_TRUE(ids.ok());
    EXPECT_EQ(*ids, c["bpe_ids"].get<std::vector<int>>()) << "case " << c["id"] << ": " << text;
    auto t77 = tok_->Tokenize(text, /*truncate=*/true);
    ASSERT_TRUE(t77.ok());
    EXPECT_EQ(*t77, c["tokens77"].get<std::vector<int>>()) << "case " << c["id"];
    auto strict = tok_->Tokenize(text, /*truncate=*/false);
    EXPECT_EQ(!strict.ok(), c["too_long"].get<bool>()) << "case " << c["id"];
    if (!strict.ok()) {
      EXPECT_EQ(strict.status().code(), absl::StatusCode::kInvalidArgument);
      EXPECT_NE(strict.status().message().find("tokens; CLIP takes at most 77"), std::string::npos);
    }
    EXPECT_EQ(tok_->Decode(*ids), c["decoded"].get<std::string>()) << "case " << c["id"];
  }
}

TEST_F(TokenizerTest, SpecialTokensAndInvalidUtf8) {
  auto eot = tok_->Tokenize("<|endoftext|>", true);
  ASSERT_TRUE(eot.ok());
  EXPECT_EQ((*eot)[0], kSotToken);
  EXPECT_EQ((*eot)[1], kEotToken);
  EXPECT_EQ((*eot)[2], kEotToken);
  EXPECT_EQ((*eot)[3], 0);
  EXPECT_EQ(tok_->Encode(std::string("bad \xff byte")).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(TokenizerFileTest, RejectsWhatIsNotAVocabulary) {
  EXPECT_EQ(Tokenizer::FromText("hello").status().code(), absl::StatusCode::kInvalidArgument);
  // A vocabulary may hold fewer merges than OpenAI's (the toy world's), but not none and
  // no malformed line.
  EXPECT_TRUE(Tokenizer::FromText("#version: 0.2\na b\n").ok());
  EXPECT_EQ(Tokenizer::FromText("#version: 0.2\n").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Tokenizer::FromText("#version: 0.2\na b c\n").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Tokenizer::Load("/nonexistent/vocab.gz").status().code(), absl::StatusCode::kNotFound);
}

TEST(TextCleanTest, PythonLowerSpecialCases) {
  EXPECT_EQ(PythonLower("ΟΔΥΣΣΕΥΣ"), "οδυσσευς");
  EXPECT_EQ(PythonLower("İ"), "i\xCC\x87");
  EXPECT_EQ(HtmlUnescape("&ampxyz &lt &#x41; &#0; &bogus;"), "&xyz < A \xEF\xBF\xBD &bogus;");
}

}  // namespace
}  // namespace ganserve::core::clip
