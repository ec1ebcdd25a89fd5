// Retention: what finished jobs leave behind does not accumulate forever. A periodic pass
// deletes the events (progress and preview images) of jobs that finished more than the
// retention period ago, keeping each job's row and its terminal event (GetJob and
// WatchJob still answer; WatchJob from an earlier seq says the events were discarded),
// and deletes training checkpoints that no unfinished job needs (failed jobs leave them).
// With shared files, blobs nothing references any more are collected too.
#ifndef GANSERVE_CORE_JOBS_RETENTION_H_
#define GANSERVE_CORE_JOBS_RETENTION_H_

#include <cstdint>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "core/jobs/job_store.h"
#include "core/util/shared_files.h"

namespace ganserve::core {

struct RetentionOptions {
  // Events of jobs that ended longer ago are deleted; 0 keeps them forever.
  int64_t job_retention_hours = 168;
  // Seconds between passes (the first runs at start-up).
  int64_t interval_seconds = 3600;
};

struct RetentionStats {
  PruneStats events;
  int64_t checkpoint_files = 0;
  int64_t checkpoint_bytes = 0;
  // Per-job artifacts removed, by JobArtifacts::what(): jobs whose artifacts went, bytes.
  struct Artifacts {
    int64_t jobs = 0;
    int64_t bytes = 0;
  };
  std::map<std::string, Artifacts> artifacts;
  // Shared files' blobs collected (SharedFiles::CollectUnreferenced).
  SharedFiles::Collected shared_blobs;
};

// Files kept per job that expire with the job's events (training snapshots, inversions).
class JobArtifacts {
 public:
  virtual ~JobArtifacts() = default;
  // What they are, for logs and metrics ("snapshots").
  virtual const char* what() const = 0;
  // Ids of the jobs that have artifacts.
  virtual std::vector<std::string> JobsWithArtifacts() = 0;
  // Removes one job's artifacts; returns the bytes freed.
  virtual int64_t ExpireArtifacts(const std::string& job_id) = 0;
};

// Receives each pass's results (metrics). Thread-safe.
class RetentionObserver {
 public:
  virtual ~RetentionObserver() = default;
  virtual void OnRetentionPass(const RetentionStats& stats) = 0;
};

// One pass at `now_ms`: events of jobs that ended before now - retention, the files
// "<job id>.ckpt.safetensors" in `checkpoint_dir` whose job has finished or is unknown,
// and the `artifacts` of jobs that ended before now - retention or are unknown; with
// `shared`, its blobs that neither a set nor an unfinished job's checkpoint names (a
// failure there is logged; the pass goes on).
absl::StatusOr<RetentionStats> RunRetentionPass(JobStore& store, const std::string& checkpoint_dir, int64_t now_ms,
                                                const RetentionOptions& options,
                                                const std::vector<JobArtifacts*>& artifacts = {},
                                                SharedFiles* shared = nullptr);

// Runs RunRetentionPass on its own thread every interval until Stop (or destruction).
class RetentionLoop {
 public:
  RetentionLoop(JobStore* store, std::string checkpoint_dir, RetentionOptions options, RetentionObserver* observer,
                std::vector<JobArtifacts*> artifacts = {}, SharedFiles* shared = nullptr);
  ~RetentionLoop();
  void Start();
  // Wakes the thread and joins it. Idempotent.
  void Stop();

 private:
  void Run();
  JobStore* const store_;
  const std::string checkpoint_dir_;
  const RetentionOptions options_;
  RetentionObserver* const observer_;
  const std::vector<JobArtifacts*> artifacts_;
  SharedFiles* const shared_;
  absl::Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace ganserve::core

#endif  // GANSERVE_CORE_JOBS_RETENTION_H_
