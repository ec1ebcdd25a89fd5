// Small file helpers with atomic writes.
#ifndef GANSERVE_CORE_UTIL_FILE_UTIL_H_
#define GANSERVE_CORE_UTIL_FILE_UTIL_H_

#include <string>
#include "absl/strings/string_view.h"

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace ganserve::core {

// Reads a whole file. NotFound / Internal on failure; ResourceExhausted if it is
// larger than `max_bytes`.
absl::StatusOr<std::string> ReadFile(const std::string& path, size_t max_bytes = size_t{1} << 32);

// Writes `contents` to `path` atomically: a temp file in the same directory, fsync,
// rename, fsync of the directory. Readers see the old file or the new one, never a
// partial one.
absl::Status WriteFileAtomic(const std::string& path, absl::string_view contents);

// Creates a directory and its parents (mkdir -p).
absl::Status MakeDirs(const std::string& path);

}  // namespace ganserve::core

#endif  // GANSERVE_CORE_UTIL_FILE_UTIL_H_
