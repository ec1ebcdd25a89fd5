// StyleCLIP global-direction statistics on the server: the PrepareGlobalDirections job
// and the cache Edit reads them from. Statistics live in the model repository next to
// the generator they measure: <repository>/<model>/global_directions/<clip>.safetensors,
// so replacing or deleting the model drops them too.
#ifndef GANSERVE_SERVER_EDIT_STATS_JOB_H_
#define GANSERVE_SERVER_EDIT_STATS_JOB_H_

#include <map>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "core/edit/global_directions.h"
#include "core/jobs/job_engine.h"
#include "core/registry/model_repository.h"
#include "ganserve/v1/ganserve.pb.h"

namespace ganserve::server {

// `requested`, or the first ready CLIP model when empty. NotFound / FailedPrecondition
// saying what to install.
absl::StatusOr<std::string> ResolveClipModel(const core::ModelRepository& repo, const std::string& requested);

std::string GlobalStatsPath(const core::ModelRepository& repo, const std::string& model, const std::string& clip);

// Checks and fills defaults. INVALID_ARGUMENT / NOT_FOUND / FAILED_PRECONDITION, and
// ALREADY_EXISTS when the statistics exist and `recompute` is not set.
absl::StatusOr<v1::PrepareGlobalDirectionsRequest> ValidatePrepareGlobalDirections(
    const v1::PrepareGlobalDirectionsRequest& req, const core::ModelRepository& repo);

// The job's step count for a validated request (0 if the model is gone).
int64_t PrepareGlobalDirectionsSteps(const v1::PrepareGlobalDirectionsRequest& req, const core::ModelRepository& repo);

// The RunnerFactory for JOB_KIND_EDIT_STATS jobs.
core::RunnerFactory EditStatsRunnerFactory(core::ModelRepository* repo);

// Loaded statistics by file, reloaded when the file changes. Thread-safe.
class GlobalStatsCache {
 public:
  // FailedPrecondition naming the job to run when there are none.
  absl::StatusOr<std::shared_ptr<const core::edit::GlobalStats>> Get(const core::ModelRepository& repo,
                                                                     const std::string& model,
                                                                     const std::string& clip);

 private:
  struct Entry {
    std::string stamp;  // size and mtime of the file it came from
    std::shared_ptr<const core::edit::GlobalStats> stats;
  };
  absl::Mutex mu_;
  std::map<std::string, Entry> entries_ ABSL_GUARDED_BY(mu_);
};

}  // namespace ganserve::server

#endif  // GANSERVE_SERVER_EDIT_STATS_JOB_H_
