// A replica's local copies of artifacts from a shared store, by content: each file is
// named by its SHA-256, downloaded once (to a temporary name, verified, renamed into
// place), then read from disk; past `max_bytes` the least recently fetched files go.
// Files already in the folder at start are adopted (oldest first in the LRU order).
// Thread-safe; concurrent fetches of one artifact may both download it (the renames are
// atomic and the content the same).
#ifndef GANSERVE_CORE_STORAGE_ARTIFACT_CACHE_H_
#define GANSERVE_CORE_STORAGE_ARTIFACT_CACHE_H_

#include <cstdint>
#include <list>
#include <map>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "core/storage/artifact_store.h"

namespace ganserve::core::storage {

class ArtifactCache {
 public:
  // `store` must outlive the cache. max_bytes 0 = unbounded.
  ArtifactCache(ArtifactStore* store, std::string dir, int64_t max_bytes);

  // The local path of the artifact at `key` whose content hashes to `sha256` (64
  // lowercase hex digits). DataLoss when the downloaded bytes hash otherwise (nothing is
  // kept); the store's error when the download fails. The file stays until newer
  // fetches push the cache past max_bytes: open it promptly.
  absl::StatusOr<std::string> Fetch(const std::string& key, const std::string& sha256);

  int64_t bytes() const;
  int64_t downloads() const;

 private:
  void Touch(const std::string& sha256, int64_t size) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Evict(const std::string& keep) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  ArtifactStore* const store_;
  const std::string dir_;
  const int64_t max_bytes_;
  mutable absl::Mutex mu_;
  std::list<std::string> lru_ ABSL_GUARDED_BY(mu_);  // front = most recent
  struct Entry {
    std::list<std::string>::iterator pos;
    int64_t size = 0;
  };
  std::map<std::string, Entry> entries_ ABSL_GUARDED_BY(mu_);
  int64_t bytes_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t downloads_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace ganserve::core::storage

#endif  // GANSERVE_CORE_STORAGE_ARTIFACT_CACHE_H_
