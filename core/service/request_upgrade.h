// Upgrading job stores written by older versions, whose records hold requests in
// another encoding (the v1 API's protobuf bytes). Core does not read the wire format:
// the edge that owns it supplies the decoder.
#ifndef GANSERVE_CORE_SERVICE_REQUEST_UPGRADE_H_
#define GANSERVE_CORE_SERVICE_REQUEST_UPGRADE_H_

#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "core/jobs/job_store.h"

namespace ganserve::core::service {

// Turns a stored request (`encoding`, `bytes`) of a job of `kind` into its spec's JSON.
using LegacyRequestDecoder =
    std::function<absl::StatusOr<std::string>(JobKind kind, const std::string& encoding, const std::string& bytes)>;

struct UpgradeReport {
  int converted = 0;
  int failed = 0;  // left as they were; running them fails with DATA_LOSS saying why
};

// Rewrites every job record whose request is not spec JSON. Call at start-up, before
// the job engine runs anything; with nothing to convert it costs one indexed query.
// Errors only when the store cannot be read or written.
absl::StatusOr<UpgradeReport> UpgradeStoredRequests(JobStore* store, const LegacyRequestDecoder& decode);

}  // namespace ganserve::core::service

#endif  // GANSERVE_CORE_SERVICE_REQUEST_UPGRADE_H_
