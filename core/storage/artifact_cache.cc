#include "core/storage/artifact_cache.h"

#include <algorithm>
#include <filesystem>
#include <random>
#include <system_error>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "core/util/sha256.h"

namespace ganserve::core::storage {
namespace {

namespace fs = std::filesystem;

bool IsSha256(const std::string& s) {
  return s.size() == 64 && std::all_of(s.begin(), s.end(), [](char c) {
           return absl::ascii_isdigit(static_cast<unsigned char>(c)) || (c >= 'a' && c <= 'f');
         });
}

}  // namespace

ArtifactCache::ArtifactCache(ArtifactStore* store, std::string dir, int64_t max_bytes)
    : store_(store), dir_(std::move(dir)), max_bytes_(max_bytes) {
  std::error_code ec;
  fs::create_directories(dir_, ec);
  // Adopt what an earlier run left, oldest first; leftovers of interrupted downloads go.
  std::vector<std::pair<fs::file_time_type, fs::path>> found;
  for (const auto& e : fs::directory_iterator(dir_, ec)) {
    if (!e.is_regular_file()) continue;
    if (IsSha256(e.path().filename().string())) {
      found.emplace_back(e.last_write_time(), e.path());
    } else {
      fs::remove(e.path(), ec);
    }
  }
  std::sort(found.begin(), found.end());
  absl::MutexLock lock(&mu_);
  for (const auto& [time, path] : found) {
    Touch(path.filename().string(), static_cast<int64_t>(fs::file_size(path, ec)));
  }
  Evict("");
}

void ArtifactCache::Touch(const std::string& sha256, int64_t size) {
  auto it = entries_.find(sha256);
  if (it != entries_.end()) {
    lru_.erase(it->second.pos);
    bytes_ -= it->second.size;
  }
  lru_.push_front(sha256);
  entries_[sha256] = {lru_.begin(), size};
  bytes_ += size;
}

void ArtifactCache::Evict(const std::string& keep) {
  std::error_code ec;
  while (max_bytes_ > 0 && bytes_ > max_bytes_ && !lru_.empty() && lru_.back() != keep) {
    const std::string victim = lru_.back();
    lru_.pop_back();
    bytes_ -= entries_[victim].size;
    entries_.erase(victim);
    fs::remove(fs::path(dir_) / victim, ec);
  }
}

absl::StatusOr<std::string> ArtifactCache::Fetch(const std::string& key, const std::string& sha256) {
  if (!IsSha256(sha256)) {
    return absl::InvalidArgumentError(absl::StrCat("'", sha256, "' is not a SHA-256 in lowercase hex"));
  }
  const std::string path = (fs::path(dir_) / sha256).string();
  {
    absl::MutexLock lock(&mu_);
    auto it = entries_.find(sha256);
    if (it != entries_.end() && fs::exists(path)) {
      Touch(sha256, it->second.size);
      return path;
    }
  }
  thread_local std::mt19937_64 rng{std::random_device{}()};
  const std::string tmp = absl::StrCat(path, ".part-", absl::Hex(rng()));
  std::error_code ec;
  if (absl::Status st = store_->GetFile(key, tmp); !st.ok()) {
    fs::remove(tmp, ec);
    return st;
  }
  absl::StatusOr<std::string> got = FileSha256Hex(tmp);
  if (!got.ok() || *got != sha256) {
    fs::remove(tmp, ec);
    return absl::DataLossError(
        absl::StrCat("artifact ", key, " hashes to ", got.ok() ? *got : "?", ", not ", sha256, "; nothing was kept"));
  }
  const auto size = static_cast<int64_t>(fs::file_size(tmp, ec));
  fs::rename(tmp, path, ec);
  if (ec) {
    fs::remove(tmp, ec);
    return absl::UnavailableError(absl::StrCat("cannot place ", key, " in the cache ", dir_));
  }
  absl::MutexLock lock(&mu_);
  ++downloads_;
  Touch(sha256, size);
  Evict(sha256);
  return path;
}

int64_t ArtifactCache::bytes() const {
  absl::MutexLock lock(&mu_);
  return bytes_;
}

int64_t ArtifactCache::downloads() const {
  absl::MutexLock lock(&mu_);
  return downloads_;
}

}  // namespace ganserve::core::storage
