// AWS Signature Version 4 (the request signing of S3 and every AWS-compatible object
// store): canonical request, string to sign, signing key and Authorization header, as
// the AWS SigV4 reference specifies. Checked against AWS's published test suite.
#ifndef GANSERVE_CORE_STORAGE_SIGV4_H_
#define GANSERVE_CORE_STORAGE_SIGV4_H_

#include <string>
#include <utility>
#include <vector>

namespace ganserve::core::storage {

struct SigV4Credentials {
  std::string access_key_id;
  std::string secret_access_key;
  std::string session_token;  // temporary credentials: sent and signed as X-Amz-Security-Token
};

struct SigV4Request {
  std::string method;  // GET, PUT, ...
  // The path as sent, not percent-encoded ("/bucket/my key"); each segment is encoded once.
  std::string path;
  // Decoded query parameters, in any order ({"uploadId", "abc"}; a key alone has "").
  std::vector<std::pair<std::string, std::string>> query;
  // Headers to sign (Host and X-Amz-Date at least), names in any case, repeats allowed.
  std::vector<std::pair<std::string, std::string>> headers;
  // Lowercase hex SHA-256 of the body, or "UNSIGNED-PAYLOAD" (S3).
  std::string payload_sha256;
};

struct SigV4Signature {
  std::string canonical_request;
  std::string string_to_sign;
  std::string signed_headers;  // "host;x-amz-date"
  std::string signature;       // lowercase hex
  std::string authorization;   // the Authorization header's value
};

struct SigV4Scope {
  std::string amz_date;  // YYYYMMDD'T'HHMMSS'Z' (the X-Amz-Date header)
  std::string region;    // e.g. us-east-1
  std::string service;   // s3
  // Generic AWS services remove "." and ".." segments and repeated slashes before
  // encoding; S3 signs the path exactly as sent.
  bool normalize_path = false;
};

// Percent-encodes everything but A-Z a-z 0-9 - . _ ~ (and "/" when keep_slash).
std::string UriEncode(const std::string& s, bool keep_slash);

SigV4Signature SignV4(const SigV4Request& request, const SigV4Credentials& credentials, const SigV4Scope& scope);

}  // namespace ganserve::core::storage

#endif  // GANSERVE_CORE_STORAGE_SIGV4_H_
