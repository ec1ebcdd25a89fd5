// SHA-256 digests (OpenSSL's libcrypto), as lowercase hex.
#ifndef GANSERVE_CORE_UTIL_SHA256_H_
#define GANSERVE_CORE_UTIL_SHA256_H_

#include <string>

#include "absl/strings/string_view.h"

namespace ganserve::core {

std::string Sha256Hex(absl::string_view data);

}  // namespace ganserve::core

#endif  // GANSERVE_CORE_UTIL_SHA256_H_
