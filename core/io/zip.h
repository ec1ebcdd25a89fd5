// A small ZIP reader (stored and deflated entries, ZIP64) over a MappedFile, and a
// writer of stored entries. Enough for PyTorch archives, TorchScript archives and .npz.
#ifndef GANSERVE_CORE_IO_ZIP_H_
#define GANSERVE_CORE_IO_ZIP_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>
#include "absl/strings/string_view.h"

#include "absl/status/statusor.h"
#include "core/util/mapped_file.h"

namespace ganserve::core {

// Read-only ZIP archive. Thread-safe after Open (immutable).
class ZipReader {
 public:
  struct Entry {
    std::string name;
    uint64_t local_header_offset = 0;
    uint64_t compressed_size = 0;
    uint64_t uncompressed_size = 0;
    uint16_t method = 0;  // 0 stored, 8 deflate
  };

  // Parses the central directory. InvalidArgument if `file` is not a ZIP archive or
  // its directory is inconsistent with the file size.
  static absl::StatusOr<std::unique_ptr<ZipReader>> Open(std::shared_ptr<const MappedFile> file);

  const std::vector<Entry>& entries() const { return entries_; }
  bool Has(absl::string_view name) const { return index_.count(std::string(name)) > 0; }

  // The bytes of a stored entry as a view into the file (no copy); for a deflated entry,
  // an inflated copy. NotFound if absent, InvalidArgument if corrupt. `max_bytes` caps
  // the inflated size (zip bombs).
  struct Bytes {
    const uint8_t* data = nullptr;
    size_t size = 0;
    std::shared_ptr<const void> owner;  // keeps the bytes alive
  };
  absl::StatusOr<Bytes> Read(absl::string_view name, uint64_t max_bytes = uint64_t{1} << 34) const;

  const std::shared_ptr<const MappedFile>& file() const { return file_; }

 private:
  explicit ZipReader(std::shared_ptr<const MappedFile> file) : file_(std::move(file)) {}
  std::shared_ptr<const MappedFile> file_;
  std::vector<Entry> entries_;
  std::map<std::string, size_t> index_;
};

// Builds a ZIP of stored (uncompressed) entries in memory. Not thread-safe.
class ZipWriter {
 public:
  // Adds an entry; data is padded so that it starts at a multiple of `align` bytes
  // (PyTorch aligns tensor records to 64).
  void Add(std::string name, absl::string_view data, size_t align = 1);
  // Returns the finished archive.
  std::string Finish();

 private:
  struct Record {
    std::string name;
    uint32_t crc;
    uint64_t size;
    uint64_t offset;
  };
  std::string out_;
  std::vector<Record> records_;
};

}  // namespace ganserve::core

#endif  // GANSERVE_CORE_IO_ZIP_H_
