// One contract, two artifact stores: the local folder always, and S3 when
// GANSERVE_TEST_S3_URL (s3://bucket/prefix) and the AWS_* variables name a server
// (tests/storage/s3_test.sh starts s3rver on loopback).
#include "core/storage/artifact_store.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <random>

#include "core/storage/s3_client.h"
#include "core/util/file_util.h"
#include "core/util/sha256.h"

namespace ganserve::core::storage {
namespace {

namespace fs = std::filesystem;

class ArtifactStoreContract : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    dir_ =
        (fs::path(::testing::TempDir()) / ("artifact_store_" + std::to_string(::getpid()) + "_" + GetParam())).string();
    fs::create_directories(dir_);
    if (GetParam() == "local") {
      store_ = NewLocalArtifactStore(dir_ + "/store");
      return;
    }
    const char* url = std::getenv("GANSERVE_TEST_S3_URL");
    if (url == nullptr) GTEST_SKIP() << "GANSERVE_TEST_S3_URL not set (tests/storage/s3_test.sh sets it)";
    auto options = S3OptionsFromUrl(url);
    ASSERT_TRUE(options.ok()) << options.status();
    const absl::Status created = S3Client(*options).CreateBucket();
    ASSERT_TRUE(created.ok()) << created;
    auto store = OpenArtifactStore(url);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
    // A unique prefix per run: the bucket may hold an earlier run's keys.
    run_ = "run-" + std::to_string(::getpid()) + "/";
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string Key(const std::string& k) const { return run_ + k; }

  std::string dir_, run_;
  std::unique_ptr<ArtifactStore> store_;
};

TEST_P(ArtifactStoreContract, PutGetSizeOverwriteDelete) {
  ASSERT_TRUE(store_->Put(Key("models/a/delta.safetensors"), "first").ok());
  EXPECT_EQ(*store_->Get(Key("models/a/delta.safetensors")), "first");
  ASSERT_TRUE(store_->Put(Key("models/a/delta.safetensors"), std::string("sec\0nd", 6)).ok());
  EXPECT_EQ(*store_->Get(Key("models/a/delta.safetensors")), std::string("sec\0nd", 6));
  EXPECT_EQ(*store_->Size(Key("models/a/delta.safetensors")), 6);
  ASSERT_TRUE(store_->Put(Key("empty"), "").ok());
  EXPECT_EQ(*store_->Get(Key("empty")), "");
  EXPECT_TRUE(store_->Delete(Key("models/a/delta.safetensors")).ok());
  EXPECT_EQ(store_->Get(Key("models/a/delta.safetensors")).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->Size(Key("models/a/delta.safetensors")).status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(store_->Delete(Key("models/a/delta.safetensors")).ok()) << "deleting twice is fine";
  EXPECT_TRUE(store_->Delete(Key("empty")).ok());
}

TEST_P(ArtifactStoreContract, ListsByKeyPrefixSorted) {
  for (const char* k : {"jobs/j2/step-4", "jobs/j1/step-8", "jobs/j1/step-16", "models/x"}) {
    ASSERT_TRUE(store_->Put(Key(k), k).ok());
  }
  auto jobs = store_->List(Key("jobs/"));
  ASSERT_TRUE(jobs.ok()) << jobs.status();
  EXPECT_EQ(*jobs, (std::vector<std::string>{Key("jobs/j1/step-16"), Key("jobs/j1/step-8"), Key("jobs/j2/step-4")}));
  // Entries carry the size and when they were written (the server's clock: within a
  // few minutes of ours).
  auto entries = store_->ListEntries(Key("jobs/"));
  ASSERT_TRUE(entries.ok()) << entries.status();
  ASSERT_EQ(entries->size(), 3u);
  EXPECT_EQ((*entries)[0].key, Key("jobs/j1/step-16"));
  EXPECT_EQ((*entries)[0].size, 15);
  EXPECT_LT(absl::AbsDuration((*entries)[0].modified - absl::Now()), absl::Minutes(5));
  auto stat = store_->Stat(Key("jobs/j2/step-4"));
  ASSERT_TRUE(stat.ok()) << stat.status();
  EXPECT_EQ(stat->size, 14);
  EXPECT_LT(absl::AbsDuration(stat->modified - absl::Now()), absl::Minutes(5));
  EXPECT_LT(absl::AbsDuration(stat->modified - (*entries)[2].modified), absl::Seconds(2));
  auto j1 = store_->List(Key("jobs/j1/step-1"));
  ASSERT_TRUE(j1.ok());
  EXPECT_EQ(*j1, (std::vector<std::string>{Key("jobs/j1/step-16")}));
  auto all = store_->List(Key(""));
  ASSERT_TRUE(all.ok());
  for (const auto& k : *all) EXPECT_TRUE(store_->Delete(k).ok());
  auto none = store_->List(Key(""));
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
}

TEST_P(ArtifactStoreContract, LargeFilesRoundTripByteForByte) {
  // 11 MiB: three multipart parts at GANSERVE_S3_PART_MB=5.
  std::string bytes(11u << 20, '\0');
  std::mt19937 rng(3);
  for (char& c : bytes) c = static_cast<char>(rng());
  const std::string src = dir_ + "/big.bin", dst = dir_ + "/back.bin";
  ASSERT_TRUE(WriteFileAtomic(src, bytes).ok());
  ASSERT_TRUE(store_->PutFile(Key("base/big.bin"), src).ok());
  EXPECT_EQ(*store_->Size(Key("base/big.bin")), static_cast<int64_t>(bytes.size()));
  ASSERT_TRUE(store_->GetFile(Key("base/big.bin"), dst).ok());
  EXPECT_EQ(Sha256Hex(*ReadFile(dst)), Sha256Hex(bytes));
  EXPECT_TRUE(store_->Delete(Key("base/big.bin")).ok());
}

TEST_P(ArtifactStoreContract, RefusesKeysThatEscapeOrAreNotPlain) {
  for (const std::string& bad :
       {std::string(""), std::string("/abs"), std::string("a/../b"), std::string("a//b"), std::string("./a"),
        std::string("sp ace"), std::string("a?b"), std::string(1025, 'k')}) {
    SCOPED_TRACE(bad);
    EXPECT_EQ(store_->Put(bad, "x").code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(store_->Get(bad).status().code(), absl::StatusCode::kInvalidArgument);
  }
}

INSTANTIATE_TEST_SUITE_P(Stores, ArtifactStoreContract, ::testing::Values("local", "s3"),
                         [](const ::testing::TestParamInfo<std::string>& p) { return p.param; });

// s3rver checks the access key id (and the request's shape) but not SigV4 signatures
// themselves; the signer is checked against AWS's suite in sigv4_test.cc.
TEST(S3ClientTest, AnUnknownAccessKeyIsRefusedByTheServer) {
  const char* url = std::getenv("GANSERVE_TEST_S3_URL");
  if (url == nullptr) GTEST_SKIP() << "GANSERVE_TEST_S3_URL not set";
  auto options = S3OptionsFromUrl(url);
  ASSERT_TRUE(options.ok());
  ASSERT_TRUE(S3Client(*options).CreateBucket().ok());
  options->credentials.access_key_id = "NOT-A-KEY";
  options->max_attempts = 1;
  const absl::Status denied = S3Client(*options).Put("denied", "x");
  EXPECT_EQ(denied.code(), absl::StatusCode::kPermissionDenied) << denied;
}

// Sets environment variables for its lifetime, then puts back what was there.
class ScopedEnv {
 public:
  ScopedEnv(std::initializer_list<std::pair<const char*, const char*>> vars) {
    for (const auto& [name, value] : vars) {
      const char* old = std::getenv(name);
      saved_.emplace_back(name, old == nullptr ? std::nullopt : std::optional<std::string>(old));
      value == nullptr ? ::unsetenv(name) : ::setenv(name, value, 1);
    }
  }
  ~ScopedEnv() {
    for (const auto& [name, old] : saved_) old ? ::setenv(name.c_str(), old->c_str(), 1) : ::unsetenv(name.c_str());
  }

 private:
  std::vector<std::pair<std::string, std::optional<std::string>>> saved_;
};

TEST(S3ClientTest, OptionsComeFromTheUrlAndTheEnvironment) {
  ScopedEnv env({{"AWS_ACCESS_KEY_ID", "AKID"},
                 {"AWS_SECRET_ACCESS_KEY", "SECRET"},
                 {"AWS_REGION", "eu-west-1"},
                 {"AWS_ENDPOINT_URL", nullptr},
                 {"GANSERVE_S3_PART_MB", nullptr}});
  auto o = S3OptionsFromUrl("s3://bucket/some/prefix/");
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->bucket, "bucket");
  EXPECT_EQ(o->prefix, "some/prefix/");
  EXPECT_EQ(o->region, "eu-west-1");
  EXPECT_EQ(o->endpoint, "https://s3.eu-west-1.amazonaws.com");
  EXPECT_EQ(o->part_bytes, int64_t{16} << 20);
  EXPECT_EQ(S3OptionsFromUrl("s3:///x").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(S3OptionsFromUrl("http://bucket").status().code(), absl::StatusCode::kInvalidArgument);
  {
    ScopedEnv part({{"GANSERVE_S3_PART_MB", "4"}});
    EXPECT_EQ(S3OptionsFromUrl("s3://bucket").status().code(), absl::StatusCode::kInvalidArgument);
  }
  ScopedEnv no_key({{"AWS_ACCESS_KEY_ID", nullptr}});
  EXPECT_EQ(S3OptionsFromUrl("s3://bucket").status().code(), absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace ganserve::core::storage
