// SHA-256 digests and HMAC-SHA256 (OpenSSL's libcrypto), as lowercase hex.
#ifndef GANSERVE_CORE_UTIL_SHA256_H_
#define GANSERVE_CORE_UTIL_SHA256_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace ganserve::core {

std::string Sha256Hex(absl::string_view data);
// Of a file, read in 1 MiB pieces; NotFound when it cannot be read.
absl::StatusOr<std::string> FileSha256Hex(const std::string& path);
// HMAC-SHA256 (RFC 2104) of `data` under `key`: the 32 raw bytes, or as lowercase hex.
std::string HmacSha256(absl::string_view key, absl::string_view data);
std::string HmacSha256Hex(absl::string_view key, absl::string_view data);

// Incremental form, for data that arrives in pieces.
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void Update(absl::string_view data);
  // The digest of everything so far, as lowercase hex; the object is spent after it.
  std::string FinalHex();

 private:
  void* ctx_;  // EVP_MD_CTX
};

}  // namespace ganserve::core

#endif  // GANSERVE_CORE_UTIL_SHA256_H_
