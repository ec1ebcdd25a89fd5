#include "core/models/clip/bpe_learner.h"

#include <gtest/gtest.h>

#include "core/models/clip/tokenizer.h"

namespace ganserve::core::clip {
namespace {

TEST(BpeLearnerTest, FrequentWordsBecomeOneTokenAndUnknownOnesStillTokenize) {
  std::vector<std::string> texts;
  for (int i = 0; i < 5; ++i) {
    texts.push_back("a photo of a red circle.");
    texts.push_back("a pencil sketch of a blue square!");
  }
  auto vocab = LearnBpeVocabulary(texts, 500);
  ASSERT_TRUE(vocab.ok()) << vocab.status();
  EXPECT_EQ(vocab->rfind("#version: 0.2\n", 0), 0u);
  // Deterministic.
  EXPECT_EQ(*vocab, *LearnBpeVocabulary(texts, 500));
  auto tok = Tokenizer::FromText(*vocab);
  ASSERT_TRUE(tok.ok()) << tok.status();
  // Bytes, bytes with </w>, the merges, start and end.
  EXPECT_GT(tok->get()->vocab_size(), 514u);
  EXPECT_LT(tok->get()->vocab_size(), 600u);
  EXPECT_EQ((*tok)->eot(), static_cast<int>((*tok)->vocab_size()) - 1);
  EXPECT_EQ((*tok)->sot(), (*tok)->eot() - 1);
  for (const std::string word : {"photo", "pencil", "sketch", "circle", "square"}) {
    auto ids = (*tok)->Encode(word);
    ASSERT_TRUE(ids.ok());
    EXPECT_EQ(ids->size(), 1u) << word;
  }
  auto unknown = (*tok)->Encode("zebra");
  ASSERT_TRUE(unknown.ok());
  EXPECT_GT(unknown->size(), 1u);
  EXPECT_EQ((*tok)->Decode(*unknown), "zebra ");
  auto row = (*tok)->Tokenize("a red circle", false, 8);
  ASSERT_TRUE(row.ok());
  EXPECT_EQ((*row)[0], (*tok)->sot());
  EXPECT_EQ((*row)[4], (*tok)->eot());
  EXPECT_EQ((*row)[5], 0);
  EXPECT_TRUE((*tok)->CheckModelVocabulary(static_cast<int>((*tok)->vocab_size())).ok());
  EXPECT_EQ((*tok)->CheckModelVocabulary(49408).code(), absl::StatusCode::kInvalidArgument);
}

TEST(BpeLearnerTest, RefusesWhatItDoesNotCover) {
  EXPECT_EQ(LearnBpeVocabulary({"caf\xc3\xa9"}, 10).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(LearnBpeVocabulary({"a"}, 0).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Tokenizer::FromText("#version: 0.2\n").status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace ganserve::core::clip
