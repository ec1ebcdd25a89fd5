#include "core/storage/artifact_store.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <random>
#include <system_error>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "core/storage/s3_client.h"
#include "core/util/file_util.h"

namespace ganserve::core::storage {
namespace {

namespace fs = std::filesystem;

// A temporary sibling of `path` for an atomic write.
std::string TempPath(const std::string& path) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return absl::StrCat(path, ".tmp-", absl::Hex(rng()));
}

class LocalStore : public ArtifactStore {
 public:
  explicit LocalStore(std::string root) : root_(std::move(root)) {}
  std::string url() const override { return "file://" + root_; }

  absl::Status Put(const std::string& key, const std::string& bytes) override {
    if (absl::Status st = ValidateArtifactKey(key); !st.ok()) return st;
    const std::string path = Path(key);
    if (absl::Status st = MakeDirs(fs::path(path).parent_path().string()); !st.ok()) return st;
    return WriteFileAtomic(path, bytes);
  }
  absl::Status PutFile(const std::string& key, const std::string& source) override {
    if (absl::Status st = ValidateArtifactKey(key); !st.ok()) return st;
    const std::string path = Path(key), tmp = TempPath(path);
    if (absl::Status st = MakeDirs(fs::path(path).parent_path().string()); !st.ok()) return st;
    std::error_code ec;
    fs::copy_file(source, tmp, fs::copy_options::overwrite_existing, ec);
    if (!ec) fs::rename(tmp, path, ec);
    if (ec) {
      fs::remove(tmp, ec);
      return absl::UnavailableError(absl::StrCat("cannot store ", source, " as ", path));
    }
    return absl::OkStatus();
  }
  absl::StatusOr<std::string> Get(const std::string& key) override {
    if (absl::Status st = ValidateArtifactKey(key); !st.ok()) return st;
    if (!fs::is_regular_file(Path(key))) return absl::NotFoundError(absl::StrCat("no artifact ", key));
    return ReadFile(Path(key));
  }
  absl::Status GetFile(const std::string& key, const std::string& path) override {
    if (absl::Status st = ValidateArtifactKey(key); !st.ok()) return st;
    if (!fs::is_regular_file(Path(key))) return absl::NotFoundError(absl::StrCat("no artifact ", key));
    const std::string tmp = TempPath(path);
    std::error_code ec;
    fs::copy_file(Path(key), tmp, fs::copy_options::overwrite_existing, ec);
    if (!ec) fs::rename(tmp, path, ec);
    if (ec) {
      fs::remove(tmp, ec);
      return absl::UnavailableError(absl::StrCat("cannot copy artifact ", key, " to ", path, ": ", ec.message()));
    }
    return absl::OkStatus();
  }
  absl::StatusOr<ArtifactEntry> Stat(const std::string& key) override {
    if (absl::Status st = ValidateArtifactKey(key); !st.ok()) return st;
    return Entry(key);
  }
  absl::Status Delete(const std::string& key) override {
    if (absl::Status st = ValidateArtifactKey(key); !st.ok()) return st;
    std::error_code ec;
    fs::remove(Path(key), ec);
    return ec ? absl::UnavailableError(absl::StrCat("cannot delete ", key, ": ", ec.message())) : absl::OkStatus();
  }
  absl::StatusOr<std::vector<ArtifactEntry>> ListEntries(const std::string& prefix) override {
    std::vector<ArtifactEntry> entries;
    std::error_code ec;
    if (!fs::is_directory(root_)) return entries;
    for (auto it = fs::recursive_directory_iterator(root_, ec); !ec && it != fs::recursive_directory_iterator();
         it.increment(ec)) {
      if (!it->is_regular_file()) continue;
      std::string key = fs::relative(it->path(), root_).generic_string();
      if (absl::StrContains(key, ".tmp-")) continue;  // a write in progress
      if (!absl::StartsWith(key, prefix)) continue;
      absl::StatusOr<ArtifactEntry> e = Entry(key);
      if (e.ok()) entries.push_back(*std::move(e));  // else deleted meanwhile
    }
    if (ec) return absl::UnavailableError(absl::StrCat("cannot list ", root_, ": ", ec.message()));
    std::sort(entries.begin(), entries.end(),
              [](const ArtifactEntry& a, const ArtifactEntry& b) { return a.key < b.key; });
    return entries;
  }

 private:
  absl::StatusOr<ArtifactEntry> Entry(const std::string& key) const {
    std::error_code ec;
    ArtifactEntry e;
    e.key = key;
    e.size = static_cast<int64_t>(fs::file_size(Path(key), ec));
    if (ec) return absl::NotFoundError(absl::StrCat("no artifact ", key));
    const auto written = fs::last_write_time(Path(key), ec);
    if (ec) return absl::NotFoundError(absl::StrCat("no artifact ", key));
    // C++17 has no file_clock::to_sys: shift by the two clocks' current readings.
    e.modified = absl::Now() + absl::FromChrono(written - fs::file_time_type::clock::now());
    return e;
  }
  std::string Path(const std::string& key) const { return (fs::path(root_) / key).string(); }
  const std::string root_;
};

class S3Store : public ArtifactStore {
 public:
  explicit S3Store(S3Options options) : client_(std::move(options)) {}
  std::string url() const override {
    return absl::StrCat("s3://", client_.options().bucket, "/", client_.options().prefix);
  }
  absl::Status Put(const std::string& key, const std::string& bytes) override {
    if (absl::Status st = ValidateArtifactKey(key); !st.ok()) return st;
    return client_.Put(key, bytes);
  }
  absl::Status PutFile(const std::string& key, const std::string& path) override {
    if (absl::Status st = ValidateArtifactKey(key); !st.ok()) return st;
    return client_.PutFile(key, path);
  }
  absl::StatusOr<std::string> Get(const std::string& key) override {
    if (absl::Status st = ValidateArtifactKey(key); !st.ok()) return st;
    return client_.Get(key);
  }
  absl::Status GetFile(const std::string& key, const std::string& path) override {
    auto bytes = Get(key);
    if (!bytes.ok()) return bytes.status();
    return WriteFileAtomic(path, *bytes);
  }
  absl::StatusOr<ArtifactEntry> Stat(const std::string& key) override {
    if (absl::Status st = ValidateArtifactKey(key); !st.ok()) return st;
    return client_.Stat(key);
  }
  absl::Status Delete(const std::string& key) override {
    if (absl::Status st = ValidateArtifactKey(key); !st.ok()) return st;
    return client_.Delete(key);
  }
  absl::StatusOr<std::vector<ArtifactEntry>> ListEntries(const std::string& prefix) override {
    return client_.ListEntries(prefix);
  }

 private:
  S3Client client_;
};

}  // namespace

absl::StatusOr<int64_t> ArtifactStore::Size(const std::string& key) {
  absl::StatusOr<ArtifactEntry> e = Stat(key);
  if (!e.ok()) return e.status();
  return e->size;
}

absl::StatusOr<std::vector<std::string>> ArtifactStore::List(const std::string& prefix) {
  absl::StatusOr<std::vector<ArtifactEntry>> entries = ListEntries(prefix);
  if (!entries.ok()) return entries.status();
  std::vector<std::string> keys;
  keys.reserve(entries->size());
  for (ArtifactEntry& e : *entries) keys.push_back(std::move(e.key));
  return keys;
}

absl::Status ValidateArtifactKey(const std::string& key) {
  if (key.empty() || key.size() > 1024) return absl::InvalidArgumentError("an artifact key has 1..1024 characters");
  if (key.front() == '/') return absl::InvalidArgumentError(absl::StrCat("artifact key '", key, "' starts with '/'"));
  for (char c : key) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-' && c != '/') {
      return absl::InvalidArgumentError(
          absl::StrCat("artifact key '", key, "' has a character outside [A-Za-z0-9._/-]"));
    }
  }
  for (absl::string_view part : absl::StrSplit(key, '/')) {
    if (part.empty() || part == "." || part == "..") {
      return absl::InvalidArgumentError(absl::StrCat("artifact key '", key, "' has an empty, '.' or '..' segment"));
    }
  }
  return absl::OkStatus();
}

std::unique_ptr<ArtifactStore> NewLocalArtifactStore(const std::string& root) {
  return std::make_unique<LocalStore>(root);
}

absl::StatusOr<std::unique_ptr<ArtifactStore>> OpenArtifactStore(const std::string& url) {
  if (absl::StartsWith(url, "s3://")) {
    auto options = S3OptionsFromUrl(url);
    if (!options.ok()) return options.status();
    return std::unique_ptr<ArtifactStore>(std::make_unique<S3Store>(*std::move(options)));
  }
  std::string root = url;
  if (absl::StartsWith(root, "file://")) root = root.substr(7);
  if (root.empty()) return absl::InvalidArgumentError("an artifact store needs a folder or an s3:// URL");
  return NewLocalArtifactStore(root);
}

}  // namespace ganserve::core::storage
