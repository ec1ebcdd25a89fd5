#include "core/jobs/retention.h"

#include <spdlog/spdlog.h>

#include <filesystem>
#include <set>
#include <system_error>
#include <utility>

#include "absl/strings/match.h"
#include "absl/time/time.h"
#include "core/util/status_macros.h"

namespace ganserve::core {

absl::StatusOr<RetentionStats> RunRetentionPass(JobStore& store, const std::string& checkpoint_dir, int64_t now_ms,
                                                const RetentionOptions& options,
                                                const std::vector<JobArtifacts*>& artifacts, SharedFiles* shared) {
  RetentionStats out;
  if (options.job_retention_hours > 0) {
    ASSIGN_OR_RETURN(out.events, store.PruneEvents(now_ms - options.job_retention_hours * 3600 * 1000));
  }
  constexpr absl::string_view kSuffix = ".ckpt.safetensors";
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(checkpoint_dir, ec)) {
    const std::string file = entry.path().filename().string();
    if (!absl::EndsWith(file, kSuffix) || !entry.is_regular_file(ec)) continue;
    const std::string id = file.substr(0, file.size() - kSuffix.size());
    auto job = store.GetJob(id);
    if (job.ok() && (job->state == JobState::kQueued || job->state == JobState::kRunning)) continue;
    if (!job.ok() && job.status().code() != absl::StatusCode::kNotFound) return job.status();
    const auto bytes = entry.file_size(ec);
    if (std::filesystem::remove(entry.path(), ec)) {
      out.checkpoint_files += 1;
      out.checkpoint_bytes += ec ? 0 : static_cast<int64_t>(bytes);
    }
  }
  const int64_t cutoff_ms = now_ms - options.job_retention_hours * 3600 * 1000;
  for (JobArtifacts* kind : artifacts) {
    if (options.job_retention_hours <= 0) break;
    RetentionStats::Artifacts& stats = out.artifacts[kind->what()];
    for (const std::string& id : kind->JobsWithArtifacts()) {
      auto job = store.GetJob(id);
      if (!job.ok() && job.status().code() != absl::StatusCode::kNotFound) return job.status();
      const bool expired = !job.ok() || (job->state != JobState::kQueued && job->state != JobState::kRunning &&
                                         job->end_time_ms > 0 && job->end_time_ms < cutoff_ms);
      if (!expired) continue;
      stats.jobs += 1;
      stats.bytes += kind->ExpireArtifacts(id);
    }
  }
  if (shared != nullptr) {
    ASSIGN_OR_RETURN(std::vector<JobRecord> open, store.ListUnfinished());
    std::set<std::string> in_use;
    for (const JobRecord& j : open) {
      if (!j.checkpoint.empty()) in_use.insert(j.checkpoint);
    }
    absl::StatusOr<SharedFiles::Collected> got = shared->CollectUnreferenced(in_use);
    if (got.ok()) {
      out.shared_blobs = *got;
    } else {
      spdlog::warn("collecting unreferenced blobs in {} failed: {}", shared->url(), got.status().ToString());
    }
  }
  return out;
}

RetentionLoop::RetentionLoop(JobStore* store, std::string checkpoint_dir, RetentionOptions options,
                             RetentionObserver* observer, std::vector<JobArtifacts*> artifacts, SharedFiles* shared)
    : store_(store),
      checkpoint_dir_(std::move(checkpoint_dir)),
      options_(options),
      observer_(observer),
      artifacts_(std::move(artifacts)),
      shared_(shared) {}

RetentionLoop::~RetentionLoop() { Stop(); }

void RetentionLoop::Start() {
  thread_ = std::thread([this] { Run(); });
}

void RetentionLoop::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

void RetentionLoop::Run() {
  while (true) {
    const int64_t now_ms = absl::ToUnixMillis(absl::Now());
    auto stats = RunRetentionPass(*store_, checkpoint_dir_, now_ms, options_, artifacts_, shared_);
    if (!stats.ok()) {
      spdlog::warn("retention pass failed: {}", stats.status().ToString());
    } else {
      if (stats->events.events > 0 || stats->checkpoint_files > 0) {
        spdlog::info("retention: deleted {} events ({} bytes) of {} finished jobs and {} checkpoints ({} bytes)",
                     stats->events.events, stats->events.bytes, stats->events.jobs, stats->checkpoint_files,
                     stats->checkpoint_bytes);
      }
      for (const auto& [what, a] : stats->artifacts) {
        if (a.jobs > 0) spdlog::info("retention: deleted the {} of {} jobs ({} bytes)", what, a.jobs, a.bytes);
      }
      if (stats->shared_blobs.blobs > 0) {
        spdlog::info("retention: collected {} unreferenced shared blobs ({} bytes)", stats->shared_blobs.blobs,
                     stats->shared_blobs.bytes);
      }
      if (observer_ != nullptr) observer_->OnRetentionPass(*stats);
    }
    absl::MutexLock lock(&mu_);
    if (mu_.AwaitWithTimeout(absl::Condition(&stop_), absl::Seconds(options_.interval_seconds))) return;
  }
}

}  // namespace ganserve::core
