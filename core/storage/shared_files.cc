#include "core/storage/shared_files.h"

#include <algorithm>
#include <filesystem>
#include <random>
#include <system_error>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/util/file_util.h"
#include "core/util/sha256.h"
#include "core/util/status_macros.h"
#include "nlohmann/json.hpp"

namespace ganserve::core::storage {
namespace {

namespace fs = std::filesystem;

constexpr int64_t kMaxPointerBytes = 1 << 20;

// Copies `from` to `to` through a temporary sibling renamed into place.
absl::Status CopyAtomic(const std::string& from, const std::string& to) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  const std::string tmp = absl::StrCat(to, ".tmp-", absl::Hex(rng()));
  std::error_code ec;
  fs::create_directories(fs::path(to).parent_path(), ec);
  fs::copy_file(from, tmp, fs::copy_options::overwrite_existing, ec);
  if (!ec) fs::rename(tmp, to, ec);
  if (ec) {
    fs::remove(tmp, ec);
    return absl::UnavailableError(absl::StrCat("cannot write ", to, ": ", ec.message()));
  }
  return absl::OkStatus();
}

// A set member's relative path: plain segments only.
bool IsSafeRelative(const std::string& rel) {
  if (rel.empty() || rel.front() == '/' || absl::StrContains(rel, '\\')) return false;
  for (const auto& part : fs::path(rel)) {
    if (part == ".." || part == "." || part.empty()) return false;
  }
  return true;
}

class StoreFiles : public SharedFiles {
 public:
  StoreFiles(ArtifactStore* store, ArtifactCache* cache, SharedFilesOptions options)
      : store_(store), cache_(cache), options_(options) {}

  std::string url() const override { return store_->url(); }

  absl::StatusOr<std::string> PutBlob(const std::string& path) override {
    absl::StatusOr<std::string> sha = FileSha256Hex(path);
    if (!sha.ok()) return sha.status();
    std::error_code ec;
    const auto size = static_cast<int64_t>(fs::file_size(path, ec));
    if (ec) return absl::NotFoundError(absl::StrCat("cannot read ", path));
    const std::string key = BlobKey(*sha);
    absl::StatusOr<ArtifactEntry> stored = store_->Stat(key);
    if (stored.ok() && stored->size == size && absl::Now() - stored->modified < options_.collect_after / 2) {
      return sha;  // content-addressed: already there, and far from collection
    }
    if (!stored.ok() && !absl::IsNotFound(stored.status())) return stored.status();
    if (absl::Status st = store_->PutFile(key, path); !st.ok()) return st;
    return sha;
  }

  absl::Status GetBlob(const std::string& sha256, const std::string& path) override {
    std::error_code ec;
    if (fs::is_regular_file(path, ec)) {
      absl::StatusOr<std::string> have = FileSha256Hex(path);
      if (have.ok() && *have == sha256) return absl::OkStatus();
    }
    absl::StatusOr<std::string> cached = cache_->Fetch(BlobKey(sha256), sha256);
    if (!cached.ok()) return cached.status();
    return CopyAtomic(*cached, path);
  }

  absl::Status DeleteBlob(const std::string& sha256) override { return store_->Delete(BlobKey(sha256)); }

  absl::Status PutSet(const std::string& name, const std::string& dir, const std::vector<std::string>& files) override {
    if (absl::Status st = ValidateArtifactKey(SetKey(name)); !st.ok()) return st;
    std::vector<std::string> rels = files;
    std::error_code ec;
    for (auto it = fs::recursive_directory_iterator(dir, ec);
         files.empty() && !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
      if (it->is_regular_file()) rels.push_back(fs::relative(it->path(), dir).generic_string());
    }
    if (ec) return absl::NotFoundError(absl::StrCat("cannot list ", dir, ": ", ec.message()));
    std::sort(rels.begin(), rels.end());
    nlohmann::json entries = nlohmann::json::object();
    for (const std::string& rel : rels) {
      if (!IsSafeRelative(rel)) return absl::InvalidArgumentError(absl::StrCat("'", rel, "' is not inside ", dir));
      const std::string path = (fs::path(dir) / rel).string();
      absl::StatusOr<std::string> sha = PutBlob(path);
      if (!sha.ok()) return sha.status();
      entries[rel] = {{"sha256", *sha}, {"size", static_cast<int64_t>(fs::file_size(path, ec))}};
    }
    // The pointer goes last: whoever reads it finds every file it names.
    return store_->Put(SetKey(name), nlohmann::json{{"files", entries}}.dump(1) + "\n");
  }

  absl::Status GetSet(const std::string& name, const std::string& dir) override {
    if (absl::Status st = ValidateArtifactKey(SetKey(name)); !st.ok()) return st;
    absl::StatusOr<std::string> text = store_->Get(SetKey(name));
    if (absl::IsNotFound(text.status())) return absl::NotFoundError(absl::StrCat("nothing named ", name));
    if (!text.ok()) return text.status();
    if (static_cast<int64_t>(text->size()) > kMaxPointerBytes) {
      return absl::DataLossError(absl::StrCat("the pointer of ", name, " is larger than 1 MiB"));
    }
    const nlohmann::json doc = nlohmann::json::parse(*text, nullptr, false);
    if (!doc.is_object() || !doc.contains("files") || !doc["files"].is_object()) {
      return absl::DataLossError(absl::StrCat("the pointer of ", name, " is not a file set"));
    }
    for (const auto& [rel, entry] : doc["files"].items()) {
      if (!IsSafeRelative(rel) || !entry.is_object() || !entry.contains("sha256") || !entry["sha256"].is_string()) {
        return absl::DataLossError(absl::StrCat("the pointer of ", name, " names '", rel, "' badly"));
      }
      const std::string sha = entry["sha256"].get<std::string>();
      const std::string path = (fs::path(dir) / rel).string();
      if (absl::Status st = GetBlob(sha, path); !st.ok()) return st;
    }
    return absl::OkStatus();
  }

  absl::StatusOr<bool> HasSet(const std::string& name) override {
    if (absl::Status st = ValidateArtifactKey(SetKey(name)); !st.ok()) return st;
    absl::StatusOr<int64_t> size = store_->Size(SetKey(name));
    if (size.ok()) return true;
    if (absl::IsNotFound(size.status())) return false;
    return size.status();
  }

  absl::StatusOr<std::vector<std::string>> ListSets(const std::string& prefix) override {
    constexpr absl::string_view kDir = "sets/", kExt = ".json";  // as SetKey writes them
    absl::StatusOr<std::vector<std::string>> keys = store_->List(absl::StrCat(kDir, prefix));
    if (!keys.ok()) return keys.status();
    std::vector<std::string> names;
    for (const std::string& key : *keys) {
      if (!absl::EndsWith(key, kExt)) continue;
      names.push_back(key.substr(kDir.size(), key.size() - kDir.size() - kExt.size()));
    }
    return names;
  }

  absl::Status DeleteSet(const std::string& name) override {
    if (absl::Status st = ValidateArtifactKey(SetKey(name)); !st.ok()) return st;
    return store_->Delete(SetKey(name));
  }

  absl::StatusOr<Collected> CollectUnreferenced(const std::set<std::string>& in_use) override {
    std::set<std::string> named = in_use;
    absl::StatusOr<std::vector<ArtifactEntry>> sets = store_->ListEntries("sets/");
    if (!sets.ok()) return sets.status();
    for (const ArtifactEntry& set : *sets) {
      if (!absl::EndsWith(set.key, ".json")) continue;
      absl::StatusOr<std::string> text = store_->Get(set.key);
      if (absl::IsNotFound(text.status())) continue;  // deleted meanwhile
      if (!text.ok()) return text.status();
      const nlohmann::json doc = nlohmann::json::parse(*text, nullptr, false);
      if (!doc.is_object() || !doc.contains("files") || !doc["files"].is_object()) {
        return absl::DataLossError(absl::StrCat(set.key, " is not a file set; nothing was collected"));
      }
      for (const auto& [rel, entry] : doc["files"].items()) {
        if (entry.is_object() && entry.contains("sha256") && entry["sha256"].is_string()) {
          named.insert(entry["sha256"].get<std::string>());
        }
      }
    }
    absl::StatusOr<std::vector<ArtifactEntry>> blobs = store_->ListEntries(BlobKey(""));
    if (!blobs.ok()) return blobs.status();
    Collected out;
    const absl::Time cutoff = absl::Now() - options_.collect_after;
    for (const ArtifactEntry& blob : *blobs) {
      const std::string sha = blob.key.substr(BlobKey("").size());
      if (named.count(sha) > 0 || blob.modified > cutoff) continue;
      // Written again since the listing (a PutBlob refreshing it): keep.
      absl::StatusOr<ArtifactEntry> now = store_->Stat(blob.key);
      if (!now.ok() || now->modified > cutoff) continue;
      RETURN_IF_ERROR(store_->Delete(blob.key));
      ++out.blobs;
      out.bytes += blob.size;
    }
    return out;
  }

  absl::Status Check() override {
    absl::StatusOr<int64_t> probe = store_->Size("sets/.readiness-probe");
    if (probe.ok() || absl::IsNotFound(probe.status())) return absl::OkStatus();
    return probe.status();
  }

 private:
  ArtifactStore* const store_;
  ArtifactCache* const cache_;
  const SharedFilesOptions options_;
};

}  // namespace

std::string BlobKey(const std::string& sha256) { return absl::StrCat("blobs/sha256/", sha256); }
std::string SetKey(const std::string& name) { return absl::StrCat("sets/", name, ".json"); }

std::unique_ptr<SharedFiles> NewSharedFiles(ArtifactStore* store, ArtifactCache* cache, SharedFilesOptions options) {
  return std::make_unique<StoreFiles>(store, cache, options);
}

}  // namespace ganserve::core::storage
