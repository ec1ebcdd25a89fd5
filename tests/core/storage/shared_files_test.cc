// Shared files in an artifact store (a local folder here; tests/jobs/postgres_test.sh
// runs them on s3rver): blobs by content, uploaded once; named sets whose pointer is
// written after every file, so a failed upload leaves no set that names a missing file;
// downloads verified by their digest.
#include "core/storage/shared_files.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>

#include "core/util/file_util.h"
#include "core/util/sha256.h"

namespace ganserve::core::storage {
namespace {

namespace fs = std::filesystem;

// A store that counts uploads and can refuse them after a number of successes.
class FlakyStore : public ArtifactStore {
 public:
  explicit FlakyStore(std::unique_ptr<ArtifactStore> inner) : inner_(std::move(inner)) {}
  std::atomic<int> uploads{0};
  std::atomic<int> uploads_left{1 << 30};
  std::atomic<bool> reachable{true};

  std::string url() const override { return inner_->url(); }
  absl::Status Put(const std::string& key, const std::string& bytes) override {
    if (!Take()) return absl::UnavailableError("the store went away");
    return inner_->Put(key, bytes);
  }
  absl::Status PutFile(const std::string& key, const std::string& path) override {
    if (!Take()) return absl::UnavailableError("the store went away");
    return inner_->PutFile(key, path);
  }
  absl::StatusOr<std::string> Get(const std::string& key) override { return inner_->Get(key); }
  absl::Status GetFile(const std::string& key, const std::string& path) override { return inner_->GetFile(key, path); }
  absl::StatusOr<ArtifactEntry> Stat(const std::string& key) override {
    if (!reachable) return absl::UnavailableError("connection refused");
    return inner_->Stat(key);
  }
  absl::Status Delete(const std::string& key) override { return inner_->Delete(key); }
  absl::StatusOr<std::vector<ArtifactEntry>> ListEntries(const std::string& prefix) override {
    return inner_->ListEntries(prefix);
  }

 private:
  bool Take() {
    if (uploads_left.fetch_sub(1) <= 0) return false;
    ++uploads;
    return true;
  }
  std::unique_ptr<ArtifactStore> inner_;
};

class SharedFilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = (fs::path(::testing::TempDir()) / ("shared_files_" + std::to_string(::getpid()) + "_" +
                                               ::testing::UnitTest::GetInstance()->current_test_info()->name()))
                .string();
    fs::remove_all(root_);
    fs::create_directories(root_);
    store_ = std::make_unique<FlakyStore>(NewLocalArtifactStore(root_ + "/store"));
    cache_ = std::make_unique<ArtifactCache>(store_.get(), root_ + "/cache", 0);
    files_ = NewSharedFiles(store_.get(), cache_.get());
  }
  void TearDown() override { fs::remove_all(root_); }
  std::string Write(const std::string& rel, const std::string& bytes) {
    const std::string path = root_ + "/" + rel;
    fs::create_directories(fs::path(path).parent_path());
    EXPECT_TRUE(WriteFileAtomic(path, bytes).ok());
    return path;
  }
  std::string root_;
  std::unique_ptr<FlakyStore> store_;
  std::unique_ptr<ArtifactCache> cache_;
  std::unique_ptr<SharedFiles> files_;
};

TEST_F(SharedFilesTest, BlobsGoByContentOnce) {
  const std::string a = Write("a/ckpt", "checkpoint at step 50");
  const std::string b = Write("b/ckpt", "checkpoint at step 50");
  auto sha = files_->PutBlob(a);
  ASSERT_TRUE(sha.ok()) << sha.status();
  EXPECT_EQ(*sha, Sha256Hex("checkpoint at step 50"));
  EXPECT_TRUE(fs::exists(root_ + "/store/" + BlobKey(*sha)));
  ASSERT_EQ(*files_->PutBlob(b), *sha);
  EXPECT_EQ(store_->uploads.load(), 1) << "the same content is uploaded once";

  const std::string out = root_ + "/elsewhere/ckpt";
  ASSERT_TRUE(files_->GetBlob(*sha, out).ok());
  EXPECT_EQ(*ReadFile(out), "checkpoint at step 50");
  // Already there with that content: kept, nothing downloaded again.
  ASSERT_TRUE(files_->GetBlob(*sha, out).ok());
  EXPECT_EQ(cache_->downloads(), 1);
  // A stale file there is replaced.
  ASSERT_TRUE(WriteFileAtomic(out, "checkpoint at step 10").ok());
  ASSERT_TRUE(files_->GetBlob(*sha, out).ok());
  EXPECT_EQ(*ReadFile(out), "checkpoint at step 50");

  EXPECT_EQ(files_->GetBlob(Sha256Hex("never stored"), out).code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(files_->DeleteBlob(*sha).ok());
  ASSERT_TRUE(files_->DeleteBlob(*sha).ok()) << "idempotent";
  EXPECT_FALSE(fs::exists(root_ + "/store/" + BlobKey(*sha)));
}

TEST_F(SharedFilesTest, ACorruptBlobIsRefusedNotPlaced) {
  auto sha = files_->PutBlob(Write("x", "the real bytes"));
  ASSERT_TRUE(sha.ok());
  ASSERT_TRUE(WriteFileAtomic(root_ + "/store/" + BlobKey(*sha), "bit rot").ok());
  const std::string out = root_ + "/out/x";
  EXPECT_EQ(files_->GetBlob(*sha, out).code(), absl::StatusCode::kDataLoss);
  EXPECT_FALSE(fs::exists(out));
}

TEST_F(SharedFilesTest, SetsRoundTripWithFolders) {
  Write("model/manifest.json", "{\"kind\": \"adapted_generator\"}");
  Write("model/delta.safetensors", "delta");
  Write("model/global_directions/clip.safetensors", "stats");
  ASSERT_TRUE(files_->PutSet("models/sketch", root_ + "/model", {}).ok());
  EXPECT_TRUE(*files_->HasSet("models/sketch"));
  EXPECT_FALSE(*files_->HasSet("models/other"));
  const std::string got = root_ + "/replica-b/sketch";
  ASSERT_TRUE(files_->GetSet("models/sketch", got).ok());
  EXPECT_EQ(*ReadFile(got + "/manifest.json"), "{\"kind\": \"adapted_generator\"}");
  EXPECT_EQ(*ReadFile(got + "/delta.safetensors"), "delta");
  EXPECT_EQ(*ReadFile(got + "/global_directions/clip.safetensors"), "stats");
  EXPECT_EQ(files_->GetSet("models/other", got).code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(files_->PutSet("models/sketch2", root_ + "/model", {}).ok());
  ASSERT_TRUE(files_->PutSet("modelsx/y", root_ + "/model", {}).ok());
  EXPECT_EQ(*files_->ListSets("models/"), (std::vector<std::string>{"models/sketch", "models/sketch2"}));

  // Only the files named: one inversion out of a folder of many.
  Write("inversions/inv-1.safetensors", "one");
  Write("inversions/inv-2.safetensors", "two");
  ASSERT_TRUE(files_->PutSet("inversions/inv-1", root_ + "/inversions", {"inv-1.safetensors"}).ok());
  ASSERT_TRUE(files_->GetSet("inversions/inv-1", root_ + "/b-inversions").ok());
  EXPECT_TRUE(fs::exists(root_ + "/b-inversions/inv-1.safetensors"));
  EXPECT_FALSE(fs::exists(root_ + "/b-inversions/inv-2.safetensors"));
  EXPECT_EQ(files_->PutSet("inversions/x", root_ + "/inversions", {"../model/delta.safetensors"}).code(),
            absl::StatusCode::kInvalidArgument);

  ASSERT_TRUE(files_->DeleteSet("models/sketch").ok());
  EXPECT_FALSE(*files_->HasSet("models/sketch"));
  EXPECT_EQ(files_->PutSet("../escape", root_ + "/model", {}).code(), absl::StatusCode::kInvalidArgument);
}

// The pointer is the commit: when an upload fails half way, no set names the files.
TEST_F(SharedFilesTest, AFailedUploadLeavesNoSet) {
  Write("model/manifest.json", "{}");
  Write("model/a.safetensors", "a");
  Write("model/b.safetensors", "b");
  store_->uploads_left = 2;  // two of the three files, then the store goes away
  EXPECT_EQ(files_->PutSet("models/half", root_ + "/model", {}).code(), absl::StatusCode::kUnavailable);
  EXPECT_FALSE(*files_->HasSet("models/half"));
  store_->uploads_left = 1 << 30;
  ASSERT_TRUE(files_->PutSet("models/half", root_ + "/model", {}).ok());
  EXPECT_EQ(store_->uploads.load(), 2 + 2) << "the retry uploads what was missing, then the pointer";
  ASSERT_TRUE(files_->GetSet("models/half", root_ + "/b").ok());
  EXPECT_EQ(*ReadFile(root_ + "/b/b.safetensors"), "b");
}

// A pointer that names a path outside the folder is refused, not followed.
TEST_F(SharedFilesTest, APointerLeavingTheFolderIsRefused) {
  const std::string sha = *files_->PutBlob(Write("payload", "x"));
  ASSERT_TRUE(
      store_->Put(SetKey("models/evil"), "{\"files\": {\"../../outside\": {\"sha256\": \"" + sha + "\", \"size\": 1}}}")
          .ok());
  EXPECT_EQ(files_->GetSet("models/evil", root_ + "/b/evil").code(), absl::StatusCode::kDataLoss);
  EXPECT_FALSE(fs::exists(root_ + "/outside"));
  ASSERT_TRUE(store_->Put(SetKey("models/junk"), "not json").ok());
  EXPECT_EQ(files_->GetSet("models/junk", root_ + "/b/junk").code(), absl::StatusCode::kDataLoss);
}

TEST_F(SharedFilesTest, CheckSaysWhetherTheStoreAnswers) {
  EXPECT_TRUE(files_->Check().ok());
  store_->reachable = false;
  EXPECT_EQ(files_->Check().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(files_->HasSet("models/a").status().code(), absl::StatusCode::kUnavailable);
}

// Collection takes old blobs that nothing names, and nothing else: not those a set or
// an unfinished job's checkpoint names, nor young ones (a publication in progress).
TEST_F(SharedFilesTest, CollectsOldUnreferencedBlobsOnly) {
  auto files = NewSharedFiles(store_.get(), cache_.get(), SharedFilesOptions{absl::Hours(1)});
  auto age = [&](const std::string& sha, absl::Duration by) {
    fs::last_write_time(root_ + "/store/" + BlobKey(sha), fs::file_time_type::clock::now() - absl::ToChronoSeconds(by));
  };
  Write("set/named.bin", "named by a set");
  ASSERT_TRUE(files->PutSet("models/m", root_ + "/set", {}).ok());
  const std::string named = Sha256Hex("named by a set");
  const std::string ckpt = *files->PutBlob(Write("ckpt", "an unfinished job's checkpoint"));
  const std::string orphan = *files->PutBlob(Write("orphan", "a finished job's checkpoint"));
  const std::string young = *files->PutBlob(Write("young", "being published right now"));
  for (const std::string& sha : {named, ckpt, orphan}) age(sha, absl::Hours(2));
  auto got = files->CollectUnreferenced({ckpt});
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->blobs, 1);
  EXPECT_EQ(got->bytes, static_cast<int64_t>(std::string("a finished job's checkpoint").size()));
  EXPECT_FALSE(fs::exists(root_ + "/store/" + BlobKey(orphan)));
  for (const std::string& sha : {named, ckpt, young}) EXPECT_TRUE(fs::exists(root_ + "/store/" + BlobKey(sha)));
  // The set gone, its file goes too.
  ASSERT_TRUE(files->DeleteSet("models/m").ok());
  EXPECT_EQ(files->CollectUnreferenced({ckpt})->blobs, 1);
  // Content stored long ago is uploaded again when published anew, so it is young while
  // its new pointer is written.
  const int before = store_->uploads.load();
  age(ckpt, absl::Minutes(45));
  ASSERT_EQ(*files->PutBlob(root_ + "/ckpt"), ckpt);
  EXPECT_EQ(store_->uploads.load(), before + 1);
  ASSERT_EQ(*files->PutBlob(root_ + "/ckpt"), ckpt);
  EXPECT_EQ(store_->uploads.load(), before + 1) << "fresh: not again";
  // An unreadable pointer stops the collection: nothing is taken while unsure.
  age(young, absl::Hours(2));
  ASSERT_TRUE(store_->Put(SetKey("models/junk"), "not json").ok());
  EXPECT_EQ(files->CollectUnreferenced({}).status().code(), absl::StatusCode::kDataLoss);
  EXPECT_TRUE(fs::exists(root_ + "/store/" + BlobKey(young)));
}

}  // namespace
}  // namespace ganserve::core::storage
