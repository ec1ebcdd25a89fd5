// The local artifact cache over a local-folder store: one download per content, hashes
// checked, least recently fetched files evicted past the bound, files adopted at start.
#include "core/storage/artifact_cache.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "core/util/file_util.h"
#include "core/util/sha256.h"

namespace ganserve::core::storage {
namespace {

namespace fs = std::filesystem;

class ArtifactCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = (fs::path(::testing::TempDir()) / ("artifact_cache_" + std::to_string(::getpid()) + "_" +
                                               ::testing::UnitTest::GetInstance()->current_test_info()->name()))
                .string();
    fs::remove_all(root_);
    store_ = NewLocalArtifactStore(root_ + "/store");
  }
  void TearDown() override { fs::remove_all(root_); }
  // Stores `bytes` under `key`; returns their SHA-256.
  std::string Put(const std::string& key, const std::string& bytes) {
    EXPECT_TRUE(store_->Put(key, bytes).ok());
    return Sha256Hex(bytes);
  }
  std::string root_;
  std::unique_ptr<ArtifactStore> store_;
};

TEST_F(ArtifactCacheTest, DownloadsOnceAndServesFromDisk) {
  const std::string sha = Put("models/a/delta.safetensors", "delta bytes");
  ArtifactCache cache(store_.get(), root_ + "/cache", 0);
  auto path = cache.Fetch("models/a/delta.safetensors", sha);
  ASSERT_TRUE(path.ok()) << path.status();
  EXPECT_EQ(*ReadFile(*path), "delta bytes");
  EXPECT_EQ(fs::path(*path).filename(), sha);
  ASSERT_TRUE(cache.Fetch("models/a/delta.safetensors", sha).ok());
  EXPECT_EQ(cache.downloads(), 1);
  EXPECT_EQ(cache.bytes(), 11);
}

TEST_F(ArtifactCacheTest, AHashMismatchKeepsNothing) {
  Put("k", "the real content");
  ArtifactCache cache(store_.get(), root_ + "/cache", 0);
  const std::string wrong = Sha256Hex("something else");
  auto path = cache.Fetch("k", wrong);
  EXPECT_EQ(path.status().code(), absl::StatusCode::kDataLoss) << path.status();
  EXPECT_TRUE(fs::is_empty(root_ + "/cache"));
  EXPECT_EQ(cache.Fetch("absent", wrong).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(cache.Fetch("k", "not-a-hash").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(ArtifactCacheTest, EvictsTheLeastRecentlyFetchedPastTheBound) {
  const std::string a = Put("a", std::string(100, 'a')), b = Put("b", std::string(100, 'b')),
                    c = Put("c", std::string(100, 'c'));
  ArtifactCache cache(store_.get(), root_ + "/cache", 250);
  ASSERT_TRUE(cache.Fetch("a", a).ok());
  ASSERT_TRUE(cache.Fetch("b", b).ok());
  ASSERT_TRUE(cache.Fetch("a", a).ok());  // a is now the most recent
  ASSERT_TRUE(cache.Fetch("c", c).ok());  // 300 > 250: b goes
  EXPECT_EQ(cache.bytes(), 200);
  EXPECT_TRUE(fs::exists(root_ + "/cache/" + a));
  EXPECT_FALSE(fs::exists(root_ + "/cache/" + b));
  EXPECT_TRUE(fs::exists(root_ + "/cache/" + c));
  // A file larger than the bound is still served (it is the one just fetched).
  const std::string big = Put("big", std::string(400, 'x'));
  auto path = cache.Fetch("big", big);
  ASSERT_TRUE(path.ok());
  EXPECT_TRUE(fs::exists(*path));
}

TEST_F(ArtifactCacheTest, AdoptsFilesAtStartAndDropsPartialDownloads) {
  const std::string sha = Put("a", "kept across restarts");
  {
    ArtifactCache first(store_.get(), root_ + "/cache", 0);
    ASSERT_TRUE(first.Fetch("a", sha).ok());
  }
  ASSERT_TRUE(WriteFileAtomic(root_ + "/cache/" + sha + ".part-1234", "half").ok());
  ArtifactCache second(store_.get(), root_ + "/cache", 0);
  EXPECT_EQ(second.bytes(), 20);
  ASSERT_TRUE(second.Fetch("a", sha).ok());
  EXPECT_EQ(second.downloads(), 0);
  EXPECT_FALSE(fs::exists(root_ + "/cache/" + sha + ".part-1234"));
}

}  // namespace
}  // namespace ganserve::core::storage
