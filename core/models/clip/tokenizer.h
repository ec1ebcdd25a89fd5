// OpenAI CLIP's byte-level BPE tokenizer (simple_tokenizer.py), reproduced exactly:
// text cleaning, the split pattern, byte-to-unicode mapping, the first 48894 merges of
// bpe_simple_vocab_16e6.txt.gz, </w> word ends, start/end tokens and context length.
//
// The split pattern needs Unicode letter and number classes (\p{L}, \p{N}), which
// std::regex lacks. Rather than a regex engine, the pattern is a hand-written scanner
// over utf8proc's general categories: the pattern is small and fixed, utf8proc is
// already needed for NFC/NFKC, and a scanner cannot backtrack badly on hostile input.
#ifndef GANSERVE_CORE_MODELS_CLIP_TOKENIZER_H_
#define GANSERVE_CORE_MODELS_CLIP_TOKENIZER_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

namespace ganserve::core::clip {

// Start and end tokens of OpenAI's vocabulary (Tokenizer::sot()/eot() of any other).
inline constexpr int kSotToken = 49406;
inline constexpr int kEotToken = 49407;
inline constexpr int kContextLength = 77;

// Thread-safe (the BPE cache is guarded).
class Tokenizer {
 public:
  // Reads the gzip'd merges file (or a plain-text one): OpenAI's (its first 48894 merges)
  // or a smaller one in the same format (all of its merges). InvalidArgument if it is
  // not a CLIP BPE vocabulary (no '#version:' header, no merges, a malformed line).
  static absl::StatusOr<std::unique_ptr<Tokenizer>> Load(const std::string& vocab_path);
  // From the decompressed file contents (tests, fuzzers).
  static absl::StatusOr<std::unique_ptr<Tokenizer>> FromText(const std::string& text);

  // BPE ids of `text` without start/end tokens. InvalidArgument for invalid UTF-8.
  absl::StatusOr<std::vector<int>> Encode(const std::string& text) const;
  // clip.tokenize for one text: [SOT, ids..., EOT, 0...] of length `context_length`.
  // Too long: with `truncate`, cut to context_length and make the last token EOT;
  // without, InvalidArgument naming the prompt and its token count.
  absl::StatusOr<std::vector<int>> Tokenize(const std::string& text, bool truncate,
                                            int context_length = kContextLength) const;
  // Inverse of Encode (spaces at word ends, as the reference decode does).
  std::string Decode(const std::vector<int>& ids) const;

  // Bytes, bytes with </w>, merges, then the start and end tokens (49408 for OpenAI's).
  size_t vocab_size() const { return decoder_.size(); }
  int sot() const { return sot_; }
  int eot() const { return eot_; }
  // InvalidArgument unless a model whose token embedding has `model_vocab` rows was
  // trained with this vocabulary's size (a vocabulary and a model that do not belong together).
  absl::Status CheckModelVocabulary(int model_vocab) const;

 private:
  Tokenizer() = default;
  std::vector<std::string> Bpe(const std::string& token) const;

  std::vector<std::string> byte_encoder_;  // byte -> UTF-8 of its stand-in character
  std::unordered_map<std::string, int> encoder_;
  std::vector<std::string> decoder_;
  std::unordered_map<std::string, int> ranks_;  // "a b" -> merge rank
  int sot_ = kSotToken, eot_ = kEotToken;
  mutable absl::Mutex mu_;
  mutable std::unordered_map<std::string, std::vector<std::string>> cache_ ABSL_GUARDED_BY(mu_);
};

}  // namespace ganserve::core::clip

#endif  // GANSERVE_CORE_MODELS_CLIP_TOKENIZER_H_
