// Helpers shared by ganctl's commands: argument parsing, output, progress.
#ifndef GANSERVE_CLIENT_UTIL_H_
#define GANSERVE_CLIENT_UTIL_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace google::protobuf {
class Message;
class EnumDescriptor;
}  // namespace google::protobuf

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

// Applies `--set FIELD=VALUE` overrides to a request: FIELD is a proto field name, dotted
// into nested messages ("latent_optimization.l2_lambda"); VALUE is JSON (a number, true,
// an enum name such as ADAM_STEPS_PER_PARAMETER, a [list]) or else taken as a string.
// Through protobuf's JSON mapping, so every field of every request is reachable.
// InvalidArgument naming the override for unknown fields or wrong types.
absl::Status ApplySets(const std::vector<std::string>& sets, google::protobuf::Message* request);

// A flag's short enum name ("no_fine") as the proto's value (LAYER_PRESET_NO_FINE) of
// `type`; InvalidArgument listing the accepted names.
absl::StatusOr<int> ParseEnumFlag(const std::string& flag, const std::string& name,
                                  const google::protobuf::EnumDescriptor* type);
// The short names of an enum's values without UNSPECIFIED ("default | all | ...").
std::string EnumFlagNames(const google::protobuf::EnumDescriptor* type);
// The short name of one value ("no_fine").
std::string EnumFlagName(const google::protobuf::EnumDescriptor* type, int number);

// Writes bytes to a file, creating parent directories. Internal error on failure.
absl::Status WriteBinary(const std::string& path, const std::string& data);

}  // namespace ganserve::client

#endif  // GANSERVE_CLIENT_UTIL_H_
