#include "core/io/zip.h"

#include <zlib.h>

#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace ganserve::core {
namespace {

constexpr uint32_t kEocdSig = 0x06054b50;
constexpr uint32_t kEocd64Sig = 0x06064b50;
constexpr uint32_t kEocd64LocSig = 0x07064b50;
constexpr uint32_t kCentralSig = 0x02014b50;
constexpr uint32_t kLocalSig = 0x04034b50;

uint16_t U16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }
uint32_t U32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8) | (static_cast<uint32_t>(p[2]) << 16) |
         (static_cast<uint32_t>(p[3]) << 24);
}
uint64_t U64(const uint8_t* p) { return U32(p) | (static_cast<uint64_t>(U32(p + 4)) << 32); }

void Put16(std::string& s, uint16_t v) {
  s.push_back(static_cast<char>(v & 0xff));
  s.push_back(static_cast<char>(v >> 8));
}
void Put32(std::string& s, uint32_t v) {
  Put16(s, static_cast<uint16_t>(v & 0xffff));
  Put16(s, static_cast<uint16_t>(v >> 16));
}

absl::Status Corrupt(absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("corrupt ZIP archive: ", what));
}

}  // namespace

absl::StatusOr<std::unique_ptr<ZipReader>> ZipReader::Open(std::shared_ptr<const MappedFile> file) {
  const uint8_t* d = file->data();
  const uint64_t n = file->size();
  if (n < 22) return absl::InvalidArgumentError("not a ZIP archive (too short)");
  // The end-of-central-directory record sits in the last 64 KiB + 22 bytes.
  int64_t eocd = -1;
  uint64_t lo = n > 65557 ? n - 65557 : 0;
  for (uint64_t i = n - 22 + 1; i-- > lo;) {
    if (U32(d + i) == kEocdSig) {
      eocd = static_cast<int64_t>(i);
      break;
    }
  }
  if (eocd < 0) return absl::InvalidArgumentError("not a ZIP archive (no end of central directory)");
  uint64_t count = U16(d + eocd + 10);
  uint64_t cd_size = U32(d + eocd + 12);
  uint64_t cd_offset = U32(d + eocd + 16);
  if (eocd >= 20 && U32(d + eocd - 20) == kEocd64LocSig) {
    uint64_t e64 = U64(d + eocd - 20 + 8);
    if (e64 > n || n - e64 < 56 || U32(d + e64) != kEocd64Sig) return Corrupt("bad ZIP64 end record");
    count = U64(d + e64 + 32);
    cd_size = U64(d + e64 + 40);
    cd_offset = U64(d + e64 + 48);
  }
  if (cd_offset > n || cd_size > n - cd_offset) return Corrupt("central directory outside the file");
  if (count > cd_size / 46) return Corrupt("entry count larger than the central directory");

  std::unique_ptr<ZipReader> zip(new ZipReader(file));
  uint64_t p = cd_offset;
  const uint64_t end = cd_offset + cd_size;
  for (uint64_t i = 0; i < count; ++i) {
    if (p + 46 > end || U32(d + p) != kCentralSig) return Corrupt("bad central directory entry");
    Entry e;
    e.method = U16(d + p + 10);
    e.compressed_size = U32(d + p + 20);
    e.uncompressed_size = U32(d + p + 24);
    uint16_t name_len = U16(d + p + 28);
    uint16_t extra_len = U16(d + p + 30);
    uint16_t comment_len = U16(d + p + 32);
    e.local_header_offset = U32(d + p + 42);
    if (p + 46 + name_len + extra_len + comment_len > end) return Corrupt("entry overruns the directory");
    e.name.assign(reinterpret_cast<const char*>(d + p + 46), name_len);
    // ZIP64 extra field: present values replace the 0xffffffff placeholders in order.
    const uint8_t* x = d + p + 46 + name_len;
    const uint8_t* xend = x + extra_len;
    while (x + 4 <= xend) {
      uint16_t id = U16(x), len = U16(x + 2);
      if (x + 4 + len > xend) break;
      if (id == 0x0001) {
        const uint8_t* f = x + 4;
        const uint8_t* fend = f + len;
        if (e.uncompressed_size == 0xffffffffu && f + 8 <= fend) {
          e.uncompressed_size = U64(f);
          f += 8;
        }
        if (e.compressed_size == 0xffffffffu && f + 8 <= fend) {
          e.compressed_size = U64(f);
          f += 8;
        }
        if (e.local_header_offset == 0xffffffffu && f + 8 <= fend) {
          e.local_header_offset = U64(f);
        }
      }
      x += 4 + len;
    }
    if (e.local_header_offset >= n) return Corrupt(absl::StrCat("entry ", e.name, " starts outside the file"));
    zip->index_[e.name] = zip->entries_.size();
    zip->entries_.push_back(std::move(e));
    p += 46 + name_len + extra_len + comment_len;
  }
  return zip;
}

absl::StatusOr<ZipReader::Bytes> ZipReader::Read(absl::string_view name, uint64_t max_bytes) const {
  auto it = index_.find(std::string(name));
  if (it == index_.end()) return absl::NotFoundError(absl::StrCat("archive has no entry ", name));
  const Entry& e = entries_[it->second];
  const uint8_t* d = file_->data();
  const uint64_t n = file_->size();
  uint64_t lh = e.local_header_offset;
  if (lh + 30 > n || U32(d + lh) != kLocalSig) return Corrupt(absl::StrCat("bad local header for ", name));
  uint64_t data_off = lh + 30 + U16(d + lh + 26) + U16(d + lh + 28);
  if (data_off > n || e.compressed_size > n - data_off) {
    return Corrupt(absl::StrCat("entry ", name, " is truncated"));
  }
  if (e.uncompressed_size > max_bytes) {
    return absl::ResourceExhaustedError(
        absl::StrCat("entry ", name, " is ", e.uncompressed_size, " bytes, over the limit of ", max_bytes));
  }
  Bytes out;
  if (e.method == 0) {
    if (e.compressed_size != e.uncompressed_size)
      return Corrupt(absl::StrCat("stored entry ", name, " has inconsistent sizes"));
    out.data = d + data_off;
    out.size = e.compressed_size;
    out.owner = file_;
    return out;
  }
  if (e.method != 8) {
    return absl::InvalidArgumentError(absl::StrCat("entry ", name, " uses unsupported compression method ", e.method));
  }
  // Deflate expands at most ~1032:1, and zlib counts in 32 bits: refuse sizes a stream of
  // this length cannot produce before allocating for them.
  if (e.uncompressed_size > e.compressed_size * 1032 + 1024 || e.uncompressed_size > 0xffffffffULL ||
      e.compressed_size > 0xffffffffULL) {
    return Corrupt(absl::StrCat("deflated entry ", name, " claims ", e.uncompressed_size, " bytes from ",
                                e.compressed_size, " compressed"));
  }
  auto buf = std::make_shared<std::string>(e.uncompressed_size, '\0');
  z_stream zs{};
  if (inflateInit2(&zs, -MAX_WBITS) != Z_OK) return absl::InternalError("inflateInit2 failed");
  zs.next_in = const_cast<Bytef*>(d + data_off);
  zs.avail_in = static_cast<uInt>(e.compressed_size);
  zs.next_out = reinterpret_cast<Bytef*>(buf->data());
  zs.avail_out = static_cast<uInt>(buf->size());
  int rc = inflate(&zs, Z_FINISH);
  uint64_t produced = zs.total_out;
  inflateEnd(&zs);
  if (rc != Z_STREAM_END || produced != e.uncompressed_size) {
    return Corrupt(absl::StrCat("entry ", name, " does not inflate to its stated size"));
  }
  out.data = reinterpret_cast<const uint8_t*>(buf->data());
  out.size = buf->size();
  out.owner = buf;
  return out;
}

void ZipWriter::Add(std::string name, absl::string_view data, size_t align) {
  const uint64_t header_end = out_.size() + 30 + name.size();
  size_t pad = 0;
  if (align > 1) {
    // Padding goes into an extra field (id 0x4150 'PA', as PyTorch's writer does); it
    // needs at least 4 bytes for its own header.
    uint64_t rem = (header_end + 4) % align;
    pad = 4 + (rem == 0 ? 0 : align - rem);
  }
  Record r{
      std::move(name),
      static_cast<uint32_t>(crc32(0L, reinterpret_cast<const Bytef*>(data.data()), static_cast<uInt>(data.size()))),
      data.size(), out_.size()};
  Put32(out_, kLocalSig);
  Put16(out_, 20);
  Put16(out_, 0);
  Put16(out_, 0);  // stored
  Put16(out_, 0);
  Put16(out_, 0x21);  // DOS date/time: a fixed value keeps archives reproducible
  Put32(out_, r.crc);
  Put32(out_, static_cast<uint32_t>(r.size));
  Put32(out_, static_cast<uint32_t>(r.size));
  Put16(out_, static_cast<uint16_t>(r.name.size()));
  Put16(out_, static_cast<uint16_t>(pad));
  out_ += r.name;
  if (pad > 0) {
    Put16(out_, 0x4150);
    Put16(out_, static_cast<uint16_t>(pad - 4));
    out_.append(pad - 4, 'Z');
  }
  out_.append(data.data(), data.size());
  records_.push_back(std::move(r));
}

std::string ZipWriter::Finish() {
  const uint64_t cd_start = out_.size();
  for (const Record& r : records_) {
    Put32(out_, kCentralSig);
    Put16(out_, 20);
    Put16(out_, 20);
    Put16(out_, 0);
    Put16(out_, 0);
    Put16(out_, 0);
    Put16(out_, 0x21);
    Put32(out_, r.crc);
    Put32(out_, static_cast<uint32_t>(r.size));
    Put32(out_, static_cast<uint32_t>(r.size));
    Put16(out_, static_cast<uint16_t>(r.name.size()));
    Put16(out_, 0);
    Put16(out_, 0);
    Put16(out_, 0);
    Put16(out_, 0);
    Put32(out_, 0);
    Put32(out_, static_cast<uint32_t>(r.offset));
    out_ += r.name;
  }
  const uint64_t cd_size = out_.size() - cd_start;
  Put32(out_, kEocdSig);
  Put16(out_, 0);
  Put16(out_, 0);
  Put16(out_, static_cast<uint16_t>(records_.size()));
  Put16(out_, static_cast<uint16_t>(records_.size()));
  Put32(out_, static_cast<uint32_t>(cd_size));
  Put32(out_, static_cast<uint32_t>(cd_start));
  Put16(out_, 0);
  return std::move(out_);
}

}  // namespace ganserve::core
