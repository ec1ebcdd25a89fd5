// Learning a byte-level BPE vocabulary in the format of OpenAI's bpe_simple_vocab_16e6.txt
// ("#version: 0.2", then one merge "a b" per line, most frequent first), for CLIP models
// trained by the project on a small language (the toy world's captions). The classic
// algorithm (Sennrich et al. 2016): words with a </w> end marker, the most frequent
// adjacent pair merged until none occurs twice or `max_merges` is reached; ties go to the
// lexicographically smaller pair, so the result depends only on the texts. Torch-free.
#ifndef GANSERVE_CORE_MODELS_CLIP_BPE_LEARNER_H_
#define GANSERVE_CORE_MODELS_CLIP_BPE_LEARNER_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace ganserve::core::clip {

// The vocabulary file's text. Texts are lower-cased and split as the tokenizer splits
// printable ASCII (letter runs, single digits, runs of other symbols); InvalidArgument
// for other bytes (the learner covers ASCII only) or max_merges outside [1, 48894].
absl::StatusOr<std::string> LearnBpeVocabulary(const std::vector<std::string>& texts, int max_merges);

}  // namespace ganserve::core::clip

#endif  // GANSERVE_CORE_MODELS_CLIP_BPE_LEARNER_H_
