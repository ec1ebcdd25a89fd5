// Helpers shared by ganctl's commands: argument parsing, output, progress.
#ifndef GANSERVE_CLIENT_UTIL_H_
#define GANSERVE_CLIENT_UTIL_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace ganserve::client {

// "1-4,7,10-11" -> {1,2,3,4,7,10,11}. InvalidArgument for malformed text, descending
// ranges, negative numbers or more than `max_count` seeds.
absl::StatusOr<std::vector<int64_t>> ParseSeeds(const std::string& text, size_t max_count = 100000);
// "-4,0,4.5" -> floats.
absl::StatusOr<std::vector<float>> ParseFloats(const std::string& text);

// A one-line progress bar on stderr (only when stderr is a terminal, else plain lines
// every 10%).
class ProgressBar {
 public:
  explicit ProgressBar(std::string label) : label_(std::move(label)) {}
  void Update(int64_t done, int64_t total, const std::string& extra = "");
  void Finish();

 private:
  std::string label_;
  int last_decile_ = -1;
  bool drawn_ = false;
};

// Writes bytes to a file, creating parent directories. Internal error on failure.
absl::Status WriteBinary(const std::string& path, const std::string& data);

}  // namespace ganserve::client

#endif  // GANSERVE_CLIENT_UTIL_H_
