// The shared tiny CLIP fixture with the real BPE vocabulary, as a training guide.
#ifndef GANSERVE_TESTS_TESTING_CLIP_GUIDE_H_
#define GANSERVE_TESTS_TESTING_CLIP_GUIDE_H_

#include <gtest/gtest.h>

#include <optional>
#include <string>

#include "core/adapt/nada_trainer.h"

namespace ganserve::testing {

// shared/fixtures/clip/b2_clip_tiny_state_dict.pt and shared/clip's vocabulary, weight 1;
// nullopt (and a test failure) when they do not load.
inline std::optional<core::adapt::ClipGuide> SharedTinyClipGuide(const std::string& shared) {
  auto m = core::clip::ClipModel::Load(shared + "/fixtures/clip/b2_clip_tiny_state_dict.pt", "cpu");
  auto t = core::clip::Tokenizer::Load(shared + "/clip/bpe_simple_vocab_16e6.txt.gz");
  EXPECT_TRUE(m.ok() && t.ok());
  if (!m.ok() || !t.ok()) return std::nullopt;
  return core::adapt::ClipGuide{"clip-tiny", std::move(*m), std::move(*t), 1.0f};
}

}  // namespace ganserve::testing

#endif  // GANSERVE_TESTS_TESTING_CLIP_GUIDE_H_
