// An S3 API client over libcurl with SigV4 signing (sigv4.h): path-style requests to
// any S3-compatible endpoint (AWS, MinIO, Ceph RGW, GCS interop, s3rver), every body
// signed by its SHA-256 (x-amz-content-sha256), multipart uploads for large files,
// retries with doubling delays on 5xx, 429 and network errors. Thread-safe.
#ifndef GANSERVE_CORE_STORAGE_S3_CLIENT_H_
#define GANSERVE_CORE_STORAGE_S3_CLIENT_H_

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "core/storage/artifact_store.h"
#include "core/storage/sigv4.h"

namespace ganserve::core::storage {

struct S3Options {
  std::string endpoint;  // scheme://host[:port], no path
  std::string bucket;
  std::string prefix;  // prepended to every key ("" or ending in "/")
  std::string region = "us-east-1";
  SigV4Credentials credentials;
  int max_attempts = 4;
  absl::Duration first_backoff = absl::Milliseconds(200);
  absl::Duration timeout = absl::Seconds(120);  // per request
  int64_t part_bytes = int64_t{16} << 20;       // multipart part size (S3's minimum is 5 MiB)
};

// s3://bucket[/prefix] plus AWS_ENDPOINT_URL (default https://s3.REGION.amazonaws.com),
// AWS_REGION or AWS_DEFAULT_REGION (default us-east-1), AWS_ACCESS_KEY_ID,
// AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN; GANSERVE_S3_PART_MB sets the multipart
// part size (default 16).
absl::StatusOr<S3Options> S3OptionsFromUrl(const std::string& url);

struct S3Response {
  int status = 0;
  std::string body;
  std::map<std::string, std::string> headers;  // names lowercase
};

class S3Client {
 public:
  explicit S3Client(S3Options options);
  const S3Options& options() const { return options_; }

  absl::Status Put(const std::string& key, const std::string& bytes);
  absl::Status PutFile(const std::string& key, const std::string& path);
  absl::StatusOr<std::string> Get(const std::string& key);
  absl::StatusOr<int64_t> Size(const std::string& key);
  // Size and Last-Modified (HEAD).
  absl::StatusOr<ArtifactEntry> Stat(const std::string& key);
  absl::Status Delete(const std::string& key);
  absl::StatusOr<std::vector<std::string>> List(const std::string& prefix);
  // Keys (relative to the prefix) with Size and LastModified, sorted by key.
  absl::StatusOr<std::vector<ArtifactEntry>> ListEntries(const std::string& prefix);
  // Creates the bucket (OK when it exists and is ours).
  absl::Status CreateBucket();

  // One signed request, retried; `key` relative to the prefix ("" = the bucket).
  absl::StatusOr<S3Response> Send(const std::string& method, const std::string& key,
                                  const std::vector<std::pair<std::string, std::string>>& query,
                                  const std::string& body,
                                  const std::vector<std::pair<std::string, std::string>>& headers = {});

 private:
  absl::StatusOr<S3Response> SendOnce(const std::string& method, const std::string& path,
                                      const std::vector<std::pair<std::string, std::string>>& query,
                                      const std::string& body,
                                      const std::vector<std::pair<std::string, std::string>>& headers);
  absl::Status PutMultipart(const std::string& key, const std::string& path, int64_t size);

  const S3Options options_;
};

}  // namespace ganserve::core::storage

#endif  // GANSERVE_CORE_STORAGE_S3_CLIENT_H_
