// The embedded job store: SQLite in WAL mode under the data directory.
#ifndef GANSERVE_CORE_JOBS_SQLITE_JOB_STORE_H_
#define GANSERVE_CORE_JOBS_SQLITE_JOB_STORE_H_

#include <functional>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "core/jobs/job_store.h"

struct sqlite3;

namespace ganserve::core {

// Thread-safe: one connection, serialised by a mutex (SQLite's own locking guards
// against other processes). Schema changes are numbered migrations applied at Open.
class SqliteJobStore : public JobStore {
 public:
  static constexpr int kSchemaVersion = 6;

  // Opens or creates the database at `path` and migrates it to kSchemaVersion.
  // FailedPrecondition if the file was written by a newer ganserve (higher schema).
  static absl::StatusOr<std::unique_ptr<SqliteJobStore>> Open(const std::string& path);
  ~SqliteJobStore() override;

  int schema_version() const { return schema_version_; }

  absl::Status CreateJob(const JobRecord& job) override;
  absl::StatusOr<JobRecord> GetJob(const std::string& id) override;
  absl::StatusOr<std::optional<JobRecord>> FindByRequestId(const std::string& request_id) override;
  absl::Status UpdateJob(const JobRecord& job) override;
  absl::Status RewriteRequest(const std::string& id, const std::string& request, const std::string& encoding) override;
  absl::StatusOr<ListJobsPage> ListJobs(const ListJobsQuery& query) override;
  absl::StatusOr<std::vector<JobRecord>> ListUnfinished() override;
  absl::StatusOr<std::vector<JobRecord>> ListRequestsNotEncodedAs(const std::string& encoding) override;
  absl::StatusOr<int64_t> AppendEvent(JobRecord& job, const std::string& type, const std::string& payload,
                                      int64_t time_ms) override;
  absl::StatusOr<std::vector<JobEventRecord>> ListEvents(const std::string& job_id, int64_t after_seq,
                                                         int limit) override;
  absl::StatusOr<int64_t> FirstSeq(const std::string& job_id) override;
  absl::StatusOr<PruneStats> PruneEvents(int64_t ended_before_ms) override;
  absl::StatusOr<std::optional<JobRecord>> ClaimNext(const std::string& worker, double lease_seconds,
                                                     const std::vector<JobKind>& kinds) override;
  absl::StatusOr<JobRecord> Heartbeat(const std::string& id, int64_t epoch, double lease_seconds) override;
  absl::StatusOr<JobRecord> RequestCancel(const std::string& id) override;
  absl::StatusOr<std::vector<JobRecord>> ReapExpiredLeases(int max_attempts, double backoff_seconds) override;
  absl::StatusOr<int64_t> CountQueued() override;
  absl::StatusOr<int64_t> CountQueuedBefore(const JobRecord& job) override;

  class Stmt;  // a prepared statement (defined in the .cc)

 private:
  explicit SqliteJobStore(sqlite3* db) : db_(db) {}
  absl::Status Migrate() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status Exec(const char* sql) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status UpdateLocked(const JobRecord& job) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<std::vector<JobRecord>> Query(const std::string& where_sql, const std::vector<std::string>& args)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // An UPDATE whose changed rows come back as records; `bind` binds its parameters.
  absl::StatusOr<std::vector<JobRecord>> Returning(const std::string& sql, const std::function<void(Stmt&)>& bind)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // After a write that changed no row: LeaseLost when the job exists, else NotFound.
  absl::Status Missing(const std::string& id, int64_t epoch) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  absl::Mutex mu_;
  sqlite3* const db_ ABSL_GUARDED_BY(mu_);
  int schema_version_ = 0;
};

}  // namespace ganserve::core

#endif  // GANSERVE_CORE_JOBS_SQLITE_JOB_STORE_H_
