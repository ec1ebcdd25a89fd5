// Where artifacts that every replica must reach live (training checkpoints, adapted
// models, inversions, statistics): a local folder (the single-machine default) or an
// S3-compatible object store. Keys are relative paths ("models/sketch/delta.safetensors",
// "sha256/ab12..."): 1..1024 bytes of [A-Za-z0-9._/-], no "..", no leading "/".
//
// Writes are whole-object and atomic (a reader sees the old object or the new one);
// there are no partial updates and no rename. Thread-safe.
#ifndef GANSERVE_CORE_STORAGE_ARTIFACT_STORE_H_
#define GANSERVE_CORE_STORAGE_ARTIFACT_STORE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace ganserve::core::storage {

struct ArtifactEntry {
  std::string key;
  int64_t size = 0;
  absl::Time modified;  // when it was last written
};

class ArtifactStore {
 public:
  virtual ~ArtifactStore() = default;
  // "file:///abs/path" or "s3://bucket/prefix".
  virtual std::string url() const = 0;
  virtual absl::Status Put(const std::string& key, const std::string& bytes) = 0;
  // Uploads a file (S3: multipart past the part size, so any size works).
  virtual absl::Status PutFile(const std::string& key, const std::string& path) = 0;
  // NotFound when absent.
  virtual absl::StatusOr<std::string> Get(const std::string& key) = 0;
  // Downloads to `path` atomically (a temporary file renamed into place).
  virtual absl::Status GetFile(const std::string& key, const std::string& path) = 0;
  // Size and time of writing; NotFound when absent.
  virtual absl::StatusOr<ArtifactEntry> Stat(const std::string& key) = 0;
  // Size in bytes, NotFound when absent.
  absl::StatusOr<int64_t> Size(const std::string& key);
  // Idempotent: deleting an absent key is OK.
  virtual absl::Status Delete(const std::string& key) = 0;
  // Entries under `prefix` (a key prefix, not only a folder), sorted by key.
  virtual absl::StatusOr<std::vector<ArtifactEntry>> ListEntries(const std::string& prefix) = 0;
  // Their keys.
  absl::StatusOr<std::vector<std::string>> List(const std::string& prefix);
};

// InvalidArgument naming the problem when `key` is not a valid artifact key.
absl::Status ValidateArtifactKey(const std::string& key);

// A folder on local disk.
std::unique_ptr<ArtifactStore> NewLocalArtifactStore(const std::string& root);

// From a URL: a plain path or file:// (local), or s3://bucket[/prefix] with the
// endpoint, region and credentials from the AWS_* environment (s3_client.h).
absl::StatusOr<std::unique_ptr<ArtifactStore>> OpenArtifactStore(const std::string& url);

}  // namespace ganserve::core::storage

#endif  // GANSERVE_CORE_STORAGE_ARTIFACT_STORE_H_
