// A bounded LRU cache of CLIP text embeddings keyed by (model, prompt), so repeated
// prompts and prompt templates are encoded once per model.
#ifndef GANSERVE_CORE_MODELS_CLIP_TEXT_EMBEDDING_CACHE_H_
#define GANSERVE_CORE_MODELS_CLIP_TEXT_EMBEDDING_CACHE_H_

#include <cstdint>
#include <list>
#include <string>
#include <unordered_map>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "core/models/clip/clip_model.h"
#include "core/models/clip/tokenizer.h"

namespace ganserve::core::clip {

// Thread-safe. Misses are encoded outside the lock, in one batch per call.
class TextEmbeddingCache {
 public:
  explicit TextEmbeddingCache(size_t max_entries = 4096) : max_entries_(max_entries) {}

  // Embeddings [N, embed_dim] (not normalised) of `prompts` under `model_key` (the
  // model's repository name: the same name must always mean the same weights).
  // InvalidArgument for prompts that do not tokenize (too long without truncation,
  // invalid UTF-8).
  absl::StatusOr<FloatTensor> Encode(const std::string& model_key, const ClipModel& model, const Tokenizer& tokenizer,
                                     const std::vector<std::string>& prompts, bool truncate = false);

  int64_t hits() const;
  int64_t misses() const;
  size_t size() const;

 private:
  using Key = std::string;  // model_key + '\0' + prompt
  struct Entry {
    std::vector<float> embedding;
    std::list<Key>::iterator lru;
  };
  const size_t max_entries_;
  mutable absl::Mutex mu_;
  std::list<Key> lru_ ABSL_GUARDED_BY(mu_);  // front = most recent
  std::unordered_map<Key, Entry> entries_ ABSL_GUARDED_BY(mu_);
  int64_t hits_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t misses_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace ganserve::core::clip

#endif  // GANSERVE_CORE_MODELS_CLIP_TEXT_EMBEDDING_CACHE_H_
