// The checkpoint variants tests/fixtures/make_checkpoints.py writes into the build
// (ctest fixture make_checkpoint_fixtures), for the loaders' tests.
#ifndef GANSERVE_TESTS_TESTING_CHECKPOINT_FIXTURES_H_
#define GANSERVE_TESTS_TESTING_CHECKPOINT_FIXTURES_H_

#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "tests/testing/shared.h"

namespace ganserve::testing {

inline std::string CheckpointFixtureDir() { return std::string(GANSERVE_BINARY_DIR) + "/test_fixtures/checkpoints"; }

// Skips, saying why, when shared/ or the generated checkpoints are absent.
class CheckpointFixtureTest : public ::testing::Test {
 protected:
  void SetUp() override {
    shared_ = SharedDir();
    if (shared_.empty()) GTEST_SKIP() << "shared/ fixtures not found (set GANSERVE_SHARED_DIR)";
    if (!std::filesystem::exists(CheckpointFixtureDir() + "/legacy_full.pt")) {
      GTEST_SKIP() << "checkpoint fixtures not built: run ctest (fixture make_checkpoint_fixtures)";
    }
  }
  std::string shared_;
};

}  // namespace ganserve::testing

#endif  // GANSERVE_TESTS_TESTING_CHECKPOINT_FIXTURES_H_
