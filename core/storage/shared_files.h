// SharedFiles (core/util/shared_files.h) in an artifact store, by content:
//   blobs/sha256/<hex>   every file, once per content (checkpoints, weights, ...)
//   sets/<name>.json     a named set: {"files": {"<relative path>": {"sha256", "size"}}}
// Downloads go through the replica's ArtifactCache (verified by their digest).
// Unreferenced blobs (checkpoints of finished jobs, uploads of a replica that lost its
// job, a set replaced) stay until CollectUnreferenced takes them, once older than
// `collect_after`; nothing that references a blob is written before it is whole. A
// PutBlob that finds its content already stored but older than half that age uploads it
// again, so a blob is never both about to be collected and newly referenced (as long as
// publishing takes less than half the age).
#ifndef GANSERVE_CORE_STORAGE_SHARED_FILES_H_
#define GANSERVE_CORE_STORAGE_SHARED_FILES_H_

#include <memory>
#include <string>

#include "core/storage/artifact_cache.h"
#include "core/storage/artifact_store.h"
#include "core/util/shared_files.h"

namespace ganserve::core::storage {

// The key of a blob and of a set's pointer.
std::string BlobKey(const std::string& sha256);
std::string SetKey(const std::string& name);

struct SharedFilesOptions {
  absl::Duration collect_after = absl::Hours(24);
};

// `store` and `cache` must outlive the result.
std::unique_ptr<SharedFiles> NewSharedFiles(ArtifactStore* store, ArtifactCache* cache,
                                            SharedFilesOptions options = {});

}  // namespace ganserve::core::storage

#endif  // GANSERVE_CORE_STORAGE_SHARED_FILES_H_
