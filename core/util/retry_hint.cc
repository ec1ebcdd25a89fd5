#include "core/util/retry_hint.h"

#include <algorithm>
#include <string>

#include "absl/strings/cord.h"
#include "absl/strings/numbers.h"

namespace ganserve::core {
namespace {

constexpr char kRetryAfterUrl[] = "type.ganserve.dev/retry-after-ms";

}  // namespace

absl::Status WithRetryAfter(absl::Status status, absl::Duration delay) {
  if (status.ok()) return status;
  const int64_t ms = std::max<int64_t>(1, absl::ToInt64Milliseconds(absl::Ceil(delay, absl::Milliseconds(1))));
  status.SetPayload(kRetryAfterUrl, absl::Cord(std::to_string(ms)));
  return status;
}

std::optional<absl::Duration> RetryAfter(const absl::Status& status) {
  const auto p = status.GetPayload(kRetryAfterUrl);
  int64_t ms = 0;
  if (!p.has_value() || !absl::SimpleAtoi(std::string(*p), &ms) || ms <= 0) return std::nullopt;
  return absl::Milliseconds(ms);
}

}  // namespace ganserve::core
