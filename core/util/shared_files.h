// Files that every replica of a scaled-out service reaches (README "Scaling out"):
// training checkpoints, adapted models, inversions, global-direction statistics. The
// engine, the model repository and the job runners see only this interface, so the
// engine-only build needs no object-store client; core/storage/shared_files.h stores
// them in an artifact store (a local folder or S3) by content.
//
// Two kinds of entries:
//  - blobs: one file by its SHA-256 (lowercase hex), e.g. a checkpoint whose digest the
//    job store keeps as the pointer;
//  - named sets: a name ("models/sketch", "inversions/inv-ab12") pointing at a set of
//    files by relative path. The pointer is written after every file it names, so a
//    reader never sees a set whose files are missing.
// Thread-safe.
#ifndef GANSERVE_CORE_UTIL_SHARED_FILES_H_
#define GANSERVE_CORE_UTIL_SHARED_FILES_H_

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace ganserve::core {

class SharedFiles {
 public:
  virtual ~SharedFiles() = default;
  // Where they live, for logs ("s3://bucket/prefix").
  virtual std::string url() const = 0;

  // Uploads the file (skipped when the store has the same content) and returns its
  // SHA-256.
  virtual absl::StatusOr<std::string> PutBlob(const std::string& path) = 0;
  // Writes the blob to `path` (atomically) unless the file there has its content.
  // NotFound when the store lacks it, DataLoss when what arrived hashes otherwise.
  virtual absl::Status GetBlob(const std::string& sha256, const std::string& path) = 0;
  // Idempotent.
  virtual absl::Status DeleteBlob(const std::string& sha256) = 0;

  // Uploads `files` (paths relative to `dir`; empty = every regular file under it,
  // recursively), then points `name` at them, replacing what it pointed at.
  virtual absl::Status PutSet(const std::string& name, const std::string& dir,
                              const std::vector<std::string>& files) = 0;
  // Recreates the set under `dir` (created if missing; files already there with the
  // right content are kept). NotFound when nothing is named so.
  virtual absl::Status GetSet(const std::string& name, const std::string& dir) = 0;
  virtual absl::StatusOr<bool> HasSet(const std::string& name) = 0;
  // Names of the sets under `prefix` ("models/" -> {"models/a", "models/b"}), sorted.
  virtual absl::StatusOr<std::vector<std::string>> ListSets(const std::string& prefix) = 0;
  // Removes the name (its files stay until they are collected). Idempotent.
  virtual absl::Status DeleteSet(const std::string& name) = 0;

  // Whether the store answers (readiness).
  virtual absl::Status Check() = 0;

  // Deletes the blobs that no set names and `in_use` lacks (the checkpoints unfinished
  // jobs point at) and that were written longer ago than the store's collection age (so
  // a blob being published meanwhile is never taken). Nothing is deleted when a set's
  // pointer cannot be read.
  struct Collected {
    int64_t blobs = 0;
    int64_t bytes = 0;
  };
  virtual absl::StatusOr<Collected> CollectUnreferenced(const std::set<std::string>& in_use) = 0;
};

}  // namespace ganserve::core

#endif  // GANSERVE_CORE_UTIL_SHARED_FILES_H_
