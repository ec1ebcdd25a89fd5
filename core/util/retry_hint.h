// A machine-readable "retry after" on an absl::Status (back-pressure: a full queue).
// The core attaches it; the gRPC edge turns it into google.rpc.RetryInfo.
#ifndef GANSERVE_CORE_UTIL_RETRY_HINT_H_
#define GANSERVE_CORE_UTIL_RETRY_HINT_H_

#include <optional>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace ganserve::core {

// Returns `status` with the delay attached (a non-OK status only; whole milliseconds,
// at least 1).
absl::Status WithRetryAfter(absl::Status status, absl::Duration delay);
// The attached delay, if any.
std::optional<absl::Duration> RetryAfter(const absl::Status& status);

}  // namespace ganserve::core

#endif  // GANSERVE_CORE_UTIL_RETRY_HINT_H_
