#include "core/models/clip/text_embedding_cache.h"

#include "core/util/status_macros.h"

namespace ganserve::core::clip {

absl::StatusOr<FloatTensor> TextEmbeddingCache::Encode(const std::string& model_key, const ClipModel& model,
                                                       const Tokenizer& tokenizer,
                                                       const std::vector<std::string>& prompts, bool truncate) {
  const int dim = model.config().embed_dim;
  FloatTensor out;
  out.shape = {static_cast<int64_t>(prompts.size()), dim};
  out.data.assign(prompts.size() * static_cast<size_t>(dim), 0.f);
  std::vector<size_t> missing;
  {
    absl::MutexLock lock(&mu_);
    for (size_t i = 0; i < prompts.size(); ++i) {
      auto it = entries_.find(model_key + '\0' + prompts[i]);
      if (it == entries_.end()) {
        missing.push_back(i);
        ++misses_;
        continue;
      }
      ++hits_;
      lru_.splice(lru_.begin(), lru_, it->second.lru);
      std::copy(it->second.embedding.begin(), it->second.embedding.end(), out.data.begin() + i * dim);
    }
  }
  if (missing.empty()) return out;
  std::vector<std::vector<int>> tokens;
  for (size_t i : missing) {
    ASSIGN_OR_RETURN(std::vector<int> ids, tokenizer.Tokenize(prompts[i], truncate, model.config().context_length));
    tokens.push_back(std::move(ids));
  }
  ASSIGN_OR_RETURN(FloatTensor enc, model.EncodeText(tokens));
  absl::MutexLock lock(&mu_);
  for (size_t j = 0; j < missing.size(); ++j) {
    const size_t i = missing[j];
    std::vector<float> row(enc.data.begin() + j * dim, enc.data.begin() + (j + 1) * dim);
    std::copy(row.begin(), row.end(), out.data.begin() + i * dim);
    const Key key = model_key + '\0' + prompts[i];
    if (entries_.count(key) > 0) continue;  // a concurrent call filled it
    lru_.push_front(key);
    entries_[key] = Entry{std::move(row), lru_.begin()};
    while (entries_.size() > max_entries_) {
      entries_.erase(lru_.back());
      lru_.pop_back();
    }
  }
  return out;
}

int64_t TextEmbeddingCache::hits() const {
  absl::MutexLock lock(&mu_);
  return hits_;
}

int64_t TextEmbeddingCache::misses() const {
  absl::MutexLock lock(&mu_);
  return misses_;
}

size_t TextEmbeddingCache::size() const {
  absl::MutexLock lock(&mu_);
  return entries_.size();
}

}  // namespace ganserve::core::clip
