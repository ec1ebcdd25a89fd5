#include "core/storage/s3_client.h"

#include <curl/curl.h>

#include <algorithm>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <memory>
#include <mutex>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "core/util/sha256.h"

namespace ganserve::core::storage {
namespace {

std::string Env(const char* name, const std::string& fallback = "") {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? std::string(v) : fallback;
}

std::string AmzDate() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y%m%dT%H%M%SZ", &tm);
  return buf;
}

size_t WriteBody(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

size_t WriteHeader(char* data, size_t size, size_t n, void* out) {
  absl::string_view line(data, size * n);
  const size_t colon = line.find(':');
  if (colon != absl::string_view::npos) {
    (*static_cast<std::map<std::string, std::string>*>(out))[absl::AsciiStrToLower(line.substr(0, colon))] =
        std::string(absl::StripAsciiWhitespace(line.substr(colon + 1)));
  }
  return size * n;
}

struct Upload {
  const std::string* body;
  size_t at = 0;
};

size_t ReadBody(char* dest, size_t size, size_t n, void* in) {
  auto* u = static_cast<Upload*>(in);
  const size_t take = std::min(size * n, u->body->size() - u->at);
  std::copy_n(u->body->data() + u->at, take, dest);
  u->at += take;
  return take;
}

// The text of the first <tag>...</tag> in an XML answer.
std::string XmlValue(const std::string& xml, const std::string& tag) {
  const std::string open = "<" + tag + ">", close = "</" + tag + ">";
  const size_t a = xml.find(open);
  if (a == std::string::npos) return "";
  const size_t b = xml.find(close, a);
  return b == std::string::npos ? "" : xml.substr(a + open.size(), b - a - open.size());
}

absl::Status StatusOf(const S3Response& r, const std::string& what) {
  if (r.status >= 200 && r.status < 300) return absl::OkStatus();
  const std::string code = XmlValue(r.body, "Code"), message = XmlValue(r.body, "Message");
  const std::string text = absl::StrCat(what, ": HTTP ", r.status, code.empty() ? "" : " " + code,
                                        message.empty() ? "" : " (" + message + ")");
  switch (r.status) {
    case 404: return absl::NotFoundError(text);
    case 403:
    case 401: return absl::PermissionDeniedError(text);
    case 400: return absl::InvalidArgumentError(text);
    case 409: return absl::AbortedError(text);
    default: return absl::UnavailableError(text);
  }
}

}  // namespace

absl::StatusOr<S3Options> S3OptionsFromUrl(const std::string& url) {
  if (!absl::StartsWith(url, "s3://")) return absl::InvalidArgumentError(absl::StrCat("not an s3:// URL: ", url));
  const std::string rest = url.substr(5);
  const size_t slash = rest.find('/');
  S3Options o;
  o.bucket = rest.substr(0, slash);
  if (o.bucket.empty()) return absl::InvalidArgumentError(absl::StrCat("no bucket in ", url));
  if (slash != std::string::npos) {
    o.prefix = std::string(absl::StripSuffix(rest.substr(slash + 1), "/"));
    if (!o.prefix.empty()) o.prefix += "/";
  }
  o.region = Env("AWS_REGION", Env("AWS_DEFAULT_REGION", "us-east-1"));
  o.endpoint =
      std::string(absl::StripSuffix(Env("AWS_ENDPOINT_URL", "https://s3." + o.region + ".amazonaws.com"), "/"));
  o.credentials.access_key_id = Env("AWS_ACCESS_KEY_ID");
  o.credentials.secret_access_key = Env("AWS_SECRET_ACCESS_KEY");
  o.credentials.session_token = Env("AWS_SESSION_TOKEN");
  if (const std::string part = Env("GANSERVE_S3_PART_MB"); !part.empty()) {
    int mb = 0;
    if (!absl::SimpleAtoi(part, &mb) || mb < 5 || mb > 5120) {
      return absl::InvalidArgumentError("GANSERVE_S3_PART_MB must be in [5, 5120] (S3's part size limits)");
    }
    o.part_bytes = int64_t{mb} << 20;
  }
  if (o.credentials.access_key_id.empty() || o.credentials.secret_access_key.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat(url, ": set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_ENDPOINT_URL for a store ",
                     "other than AWS)"));
  }
  return o;
}

S3Client::S3Client(S3Options options) : options_(std::move(options)) {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

absl::StatusOr<S3Response> S3Client::SendOnce(const std::string& method, const std::string& path,
                                              const std::vector<std::pair<std::string, std::string>>& query,
                                              const std::string& body,
                                              const std::vector<std::pair<std::string, std::string>>& headers) {
  const size_t scheme_end = options_.endpoint.find("://");
  const std::string host =
      scheme_end == std::string::npos ? options_.endpoint : options_.endpoint.substr(scheme_end + 3);
  SigV4Request req;
  req.method = method;
  req.path = path;
  req.query = query;
  req.payload_sha256 = Sha256Hex(body);
  const std::string date = AmzDate();
  req.headers = {{"Host", host}, {"X-Amz-Date", date}, {"X-Amz-Content-Sha256", req.payload_sha256}};
  if (!options_.credentials.session_token.empty()) {
    req.headers.emplace_back("X-Amz-Security-Token", options_.credentials.session_token);
  }
  req.headers.insert(req.headers.end(), headers.begin(), headers.end());
  const SigV4Signature sig = SignV4(req, options_.credentials, {date, options_.region, "s3", false});

  std::string url = options_.endpoint + UriEncode(path, /*keep_slash=*/true);
  for (size_t i = 0; i < query.size(); ++i) {
    absl::StrAppend(&url, i == 0 ? "?" : "&", UriEncode(query[i].first, false));
    if (!query[i].second.empty() || query[i].first != "uploads") {
      absl::StrAppend(&url, "=", UriEncode(query[i].second, false));
    }
  }
  std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> curl(curl_easy_init(), &curl_easy_cleanup);
  if (curl == nullptr) return absl::InternalError("curl_easy_init failed");
  struct curl_slist* list = nullptr;
  for (const auto& [name, value] : req.headers) {
    if (absl::EqualsIgnoreCase(name, "Host")) continue;
    list = curl_slist_append(list, absl::StrCat(name, ": ", value).c_str());
  }
  list = curl_slist_append(list, ("Authorization: " + sig.authorization).c_str());
  list = curl_slist_append(list, "Expect:");  // no 100-continue round trip
  std::unique_ptr<curl_slist, decltype(&curl_slist_free_all)> header_list(list, &curl_slist_free_all);
  S3Response res;
  Upload upload{&body};
  CURL* c = curl.get();
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, header_list.get());
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, &WriteBody);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &res.body);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, &WriteHeader);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &res.headers);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(absl::ToInt64Milliseconds(options_.timeout)));
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
  if (method == "HEAD") {
    curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
  } else if (method == "PUT") {
    curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(c, CURLOPT_READFUNCTION, &ReadBody);
    curl_easy_setopt(c, CURLOPT_READDATA, &upload);
    curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(body.size()));
  } else if (method == "POST") {
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.data());
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
  } else if (method != "GET") {
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method.c_str());
  }
  const CURLcode rc = curl_easy_perform(c);
  if (rc != CURLE_OK) {
    return absl::UnavailableError(absl::StrCat(method, " ", options_.endpoint, path, ": ", curl_easy_strerror(rc)));
  }
  long status = 0;  // NOLINT(google-runtime-int): curl's type
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  res.status = static_cast<int>(status);
  return res;
}

absl::StatusOr<S3Response> S3Client::Send(const std::string& method, const std::string& key,
                                          const std::vector<std::pair<std::string, std::string>>& query,
                                          const std::string& body,
                                          const std::vector<std::pair<std::string, std::string>>& headers) {
  const std::string path = absl::StrCat("/", options_.bucket, key.empty() ? "" : "/" + options_.prefix + key);
  absl::Duration delay = options_.first_backoff;
  for (int attempt = 1;; ++attempt) {
    absl::StatusOr<S3Response> r = SendOnce(method, path, query, body, headers);
    const bool transient = !r.ok() || r->status >= 500 || r->status == 429;
    if (!transient || attempt >= options_.max_attempts) return r;
    std::this_thread::sleep_for(absl::ToChronoMilliseconds(delay));
    delay *= 2;
  }
}

absl::Status S3Client::CreateBucket() {
  auto r = Send("PUT", "", {}, "");
  if (!r.ok()) return r.status();
  if (r->status == 409) {
    // It exists: fine when these credentials can reach it (some servers answer
    // BucketAlreadyExists for the caller's own bucket).
    auto head = Send("HEAD", "", {}, "");
    if (head.ok() && head->status == 200) return absl::OkStatus();
  }
  return StatusOf(*r, "create bucket " + options_.bucket);
}

absl::Status S3Client::Put(const std::string& key, const std::string& bytes) {
  auto r = Send("PUT", key, {}, bytes);
  return r.ok() ? StatusOf(*r, "put " + key) : r.status();
}

absl::Status S3Client::PutFile(const std::string& key, const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  const int64_t size = in.tellg();
  if (size > options_.part_bytes) return PutMultipart(key, path, size);
  std::string bytes(static_cast<size_t>(size), '\0');
  in.seekg(0);
  in.read(bytes.data(), size);
  return Put(key, bytes);
}

absl::Status S3Client::PutMultipart(const std::string& key, const std::string& path, int64_t size) {
  auto init = Send("POST", key, {{"uploads", ""}}, "");
  if (!init.ok()) return init.status();
  if (absl::Status st = StatusOf(*init, "start multipart upload of " + key); !st.ok()) return st;
  const std::string upload_id = XmlValue(init->body, "UploadId");
  if (upload_id.empty()) return absl::UnavailableError("start multipart upload: no UploadId in the answer");
  auto abort = [&](const absl::Status& why) {
    (void)Send("DELETE", key, {{"uploadId", upload_id}}, "");
    return why;
  };
  std::ifstream in(path, std::ios::binary);
  std::string complete = "<CompleteMultipartUpload>";
  std::string part;
  int number = 0;
  for (int64_t at = 0; at < size; at += options_.part_bytes) {
    ++number;
    part.resize(static_cast<size_t>(std::min(options_.part_bytes, size - at)));
    if (!in.read(part.data(), static_cast<std::streamsize>(part.size()))) {
      return abort(absl::DataLossError(absl::StrCat("read of ", path, " failed at byte ", at)));
    }
    auto r = Send("PUT", key, {{"partNumber", std::to_string(number)}, {"uploadId", upload_id}}, part);
    if (!r.ok()) return abort(r.status());
    if (absl::Status st = StatusOf(*r, absl::StrCat("upload part ", number, " of ", key)); !st.ok()) return abort(st);
    absl::StrAppend(&complete, "<Part><PartNumber>", number, "</PartNumber><ETag>", r->headers["etag"],
                    "</ETag></Part>");
  }
  complete += "</CompleteMultipartUpload>";
  auto done = Send("POST", key, {{"uploadId", upload_id}}, complete);
  if (!done.ok()) return abort(done.status());
  // S3 may answer 200 with an <Error> body to a completion that failed.
  if (absl::Status st = StatusOf(*done, "complete multipart upload of " + key); !st.ok()) return abort(st);
  if (absl::StrContains(done->body, "<Error>")) {
    return abort(absl::UnavailableError(absl::StrCat("complete multipart upload of ", key, ": ", done->body)));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> S3Client::Get(const std::string& key) {
  auto r = Send("GET", key, {}, "");
  if (!r.ok()) return r.status();
  if (absl::Status st = StatusOf(*r, "get " + key); !st.ok()) return st;
  return std::move(r->body);
}

absl::StatusOr<int64_t> S3Client::Size(const std::string& key) {
  absl::StatusOr<ArtifactEntry> e = Stat(key);
  if (!e.ok()) return e.status();
  return e->size;
}

absl::StatusOr<ArtifactEntry> S3Client::Stat(const std::string& key) {
  auto r = Send("HEAD", key, {}, "");
  if (!r.ok()) return r.status();
  if (absl::Status st = StatusOf(*r, "head " + key); !st.ok()) return st;
  ArtifactEntry e;
  e.key = key;
  if (!absl::SimpleAtoi(r->headers["content-length"], &e.size)) {
    return absl::UnavailableError("HEAD: no Content-Length");
  }
  // An HTTP date (RFC 9110): "Wed, 02 Dec 2026 00:39:49 GMT".
  std::string err;
  if (!absl::ParseTime("%a, %d %b %Y %H:%M:%S GMT", r->headers["last-modified"], absl::UTCTimeZone(), &e.modified,
                       &err)) {
    return absl::UnavailableError(
        absl::StrCat("HEAD ", key, ": unreadable Last-Modified '", r->headers["last-modified"], "'"));
  }
  return e;
}

absl::Status S3Client::Delete(const std::string& key) {
  auto r = Send("DELETE", key, {}, "");
  if (!r.ok()) return r.status();
  if (r->status == 404) return absl::OkStatus();
  return StatusOf(*r, "delete " + key);
}

absl::StatusOr<std::vector<std::string>> S3Client::List(const std::string& prefix) {
  absl::StatusOr<std::vector<ArtifactEntry>> entries = ListEntries(prefix);
  if (!entries.ok()) return entries.status();
  std::vector<std::string> keys;
  for (ArtifactEntry& e : *entries) keys.push_back(std::move(e.key));
  return keys;
}

absl::StatusOr<std::vector<ArtifactEntry>> S3Client::ListEntries(const std::string& prefix) {
  std::vector<ArtifactEntry> entries;
  std::string token;
  for (;;) {
    std::vector<std::pair<std::string, std::string>> q = {{"list-type", "2"}, {"prefix", options_.prefix + prefix}};
    if (!token.empty()) q.emplace_back("continuation-token", token);
    auto r = Send("GET", "", q, "");
    if (!r.ok()) return r.status();
    if (absl::Status st = StatusOf(*r, "list " + prefix); !st.ok()) return st;
    bool first = true;
    for (absl::string_view chunk : absl::StrSplit(r->body, "<Contents>")) {
      if (first) {  // what precedes the first entry
        first = false;
        continue;
      }
      const std::string entry(chunk.substr(0, chunk.find("</Contents>")));
      std::string key = XmlValue(entry, "Key");
      if (!absl::StartsWith(key, options_.prefix)) continue;
      ArtifactEntry e;
      e.key = key.substr(options_.prefix.size());
      std::string err;
      if (!absl::SimpleAtoi(XmlValue(entry, "Size"), &e.size) ||
          !absl::ParseTime("%Y-%m-%dT%H:%M:%E*SZ", XmlValue(entry, "LastModified"), absl::UTCTimeZone(), &e.modified,
                           &err)) {
        return absl::UnavailableError(absl::StrCat("list ", prefix, ": unreadable entry for ", e.key));
      }
      entries.push_back(std::move(e));
    }
    token = XmlValue(r->body, "NextContinuationToken");
    if (XmlValue(r->body, "IsTruncated") != "true" || token.empty()) break;
  }
  std::sort(entries.begin(), entries.end(),
            [](const ArtifactEntry& a, const ArtifactEntry& b) { return a.key < b.key; });
  return entries;
}

}  // namespace ganserve::core::storage
