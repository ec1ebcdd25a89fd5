#include "core/service/request_upgrade.h"

#include <spdlog/spdlog.h>

#include "core/service/job_runners.h"
#include "core/util/status_macros.h"

namespace ganserve::core::service {

absl::StatusOr<UpgradeReport> UpgradeStoredRequests(JobStore* store, const LegacyRequestDecoder& decode) {
  UpgradeReport report;
  ASSIGN_OR_RETURN(std::vector<JobRecord> old, store->ListRequestsNotEncodedAs(kSpecJsonEncoding));
  for (const JobRecord& job : old) {
    auto json = decode(job.kind, job.request_encoding, job.request);
    if (!json.ok()) {
      ++report.failed;
      spdlog::error("job {}: its stored request ({}) cannot be upgraded: {}", job.id, job.request_encoding,
                    json.status().ToString());
      continue;
    }
    RETURN_IF_ERROR(store->RewriteRequest(job.id, *json, kSpecJsonEncoding));
    ++report.converted;
  }
  return report;
}

}  // namespace ganserve::core::service
