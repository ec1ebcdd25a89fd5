// SharedFiles (core/util/shared_files.h) in an artifact store, by content:
//   blobs/sha256/<hex>   every file, once per content (checkpoints, weights, ...)
//   sets/<name>.json     a named set: {"files": {"<relative path>": {"sha256", "size"}}}
// Downloads go through the replica's ArtifactCache (verified by their digest).
// Unreferenced blobs (a replica that lost its lease, an upload cut short) stay until
// they are collected; nothing that references them is written before they are whole.
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

// `store` and `cache` must outlive the result.
std::unique_ptr<SharedFiles> NewSharedFiles(ArtifactStore* store, ArtifactCache* cache);

}  // namespace ganserve::core::storage

#endif  // GANSERVE_CORE_STORAGE_SHARED_FILES_H_
