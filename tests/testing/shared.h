// Locates ../shared (reference fixtures, CLIP vocabulary) for tests.
#ifndef GANSERVE_TESTS_TESTING_SHARED_H_
#define GANSERVE_TESTS_TESTING_SHARED_H_

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <string>

namespace ganserve::testing {

// The shared/ folder: $GANSERVE_SHARED_DIR, else ../shared next to the repository
// root. Empty when absent.
inline std::string SharedDir() {
  if (const char* env = std::getenv("GANSERVE_SHARED_DIR"); env != nullptr && *env != '\0') return env;
  std::filesystem::path p = std::filesystem::path(GANSERVE_SOURCE_DIR).parent_path() / "shared";
  return std::filesystem::is_directory(p) ? p.string() : std::string();
}

// Skips the test with a printed reason when shared/ is absent.
#define GANSERVE_REQUIRE_SHARED(dir)                                                           \
  const std::string dir = ::ganserve::testing::SharedDir();                                    \
  if (dir.empty()) {                                                                           \
    GTEST_SKIP() << "shared/ fixtures not found (set GANSERVE_SHARED_DIR or place ../shared)"; \
  }

}  // namespace ganserve::testing

#endif  // GANSERVE_TESTS_TESTING_SHARED_H_
