// A read-only memory mapping of a whole file.
#ifndef GANSERVE_CORE_UTIL_MAPPED_FILE_H_
#define GANSERVE_CORE_UTIL_MAPPED_FILE_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include "absl/strings/string_view.h"

#include "absl/status/statusor.h"

namespace ganserve::core {

// Immutable view of a file's bytes. Thread-safe (read-only after creation). Shared by
// the tensors that point into it, so it lives as long as the last of them.
class MappedFile {
 public:
  // Maps `path`. NotFound if it does not exist, InvalidArgument if it is not a regular
  // file, Internal on other I/O errors. An empty file maps to an empty view.
  static absl::StatusOr<std::shared_ptr<const MappedFile>> Open(const std::string& path);
  // Wraps bytes already in memory (tests, fuzzers, uploads).
  static std::shared_ptr<const MappedFile> FromString(std::string bytes);

  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  absl::string_view view() const { return {reinterpret_cast<const char*>(data_), size_}; }

 private:
  MappedFile() = default;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  void* mapping_ = nullptr;  // munmap target, null when backed by `owned_`
  std::string owned_;
};

}  // namespace ganserve::core

#endif  // GANSERVE_CORE_UTIL_MAPPED_FILE_H_
