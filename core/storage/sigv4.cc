#include "core/storage/sigv4.h"

#include <algorithm>
#include <map>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "core/util/sha256.h"

namespace ganserve::core::storage {
namespace {

// Trims and collapses runs of spaces (and folded lines) to one space.
std::string CanonicalValue(const std::string& v) {
  std::string out;
  bool space = false;
  for (char c : std::string(absl::StripAsciiWhitespace(v))) {
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
      space = true;
      continue;
    }
    if (space && !out.empty()) out += ' ';
    space = false;
    out += c;
  }
  return out;
}

std::string NormalizePath(const std::string& path) {
  std::vector<std::string> parts;
  for (absl::string_view seg : absl::StrSplit(path, '/')) {
    if (seg.empty() || seg == ".") continue;
    if (seg == "..") {
      if (!parts.empty()) parts.pop_back();
      continue;
    }
    parts.emplace_back(seg);
  }
  std::string out = "/" + absl::StrJoin(parts, "/");
  if (path.size() > 1 && path.back() == '/' && out.size() > 1) out += '/';
  return out;
}

}  // namespace

std::string UriEncode(const std::string& s, bool keep_slash) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size() * 3);
  for (unsigned char c : s) {
    if (absl::ascii_isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~' || (keep_slash && c == '/')) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 0xf];
    }
  }
  return out;
}

SigV4Signature SignV4(const SigV4Request& request, const SigV4Credentials& credentials, const SigV4Scope& scope) {
  SigV4Signature sig;
  const std::string path = request.path.empty() ? "/" : request.path;
  const std::string uri = UriEncode(scope.normalize_path ? NormalizePath(path) : path, /*keep_slash=*/true);

  std::vector<std::pair<std::string, std::string>> query;
  query.reserve(request.query.size());
  for (const auto& [k, v] : request.query) query.emplace_back(UriEncode(k, false), UriEncode(v, false));
  std::sort(query.begin(), query.end());
  std::vector<std::string> query_parts;
  query_parts.reserve(query.size());
  for (const auto& [k, v] : query) query_parts.push_back(absl::StrCat(k, "=", v));

  // Lowercase names, sorted; repeated names join their values with commas in order.
  std::map<std::string, std::string> headers;
  for (const auto& [name, value] : request.headers) {
    std::string& slot = headers[absl::AsciiStrToLower(name)];
    slot += slot.empty() ? CanonicalValue(value) : "," + CanonicalValue(value);
  }
  std::string canonical_headers;
  std::vector<std::string> names;
  names.reserve(headers.size());
  for (const auto& [name, value] : headers) {
    absl::StrAppend(&canonical_headers, name, ":", value, "\n");
    names.push_back(name);
  }
  sig.signed_headers = absl::StrJoin(names, ";");
  sig.canonical_request = absl::StrCat(request.method, "\n", uri, "\n", absl::StrJoin(query_parts, "&"), "\n",
                                       canonical_headers, "\n", sig.signed_headers, "\n", request.payload_sha256);

  const std::string date = scope.amz_date.substr(0, 8);
  const std::string credential_scope = absl::StrCat(date, "/", scope.region, "/", scope.service, "/aws4_request");
  sig.string_to_sign = absl::StrCat("AWS4-HMAC-SHA256\n", scope.amz_date, "\n", credential_scope, "\n",
                                    Sha256Hex(sig.canonical_request));
  const std::string k_date = HmacSha256("AWS4" + credentials.secret_access_key, date);
  const std::string k_region = HmacSha256(k_date, scope.region);
  const std::string k_service = HmacSha256(k_region, scope.service);
  const std::string k_signing = HmacSha256(k_service, "aws4_request");
  sig.signature = HmacSha256Hex(k_signing, sig.string_to_sign);
  sig.authorization = absl::StrCat("AWS4-HMAC-SHA256 Credential=", credentials.access_key_id, "/", credential_scope,
                                   ", SignedHeaders=", sig.signed_headers, ", Signature=", sig.signature);
  return sig;
}

}  // namespace ganserve::core::storage
