// The job store on PostgreSQL (libpq), for replicas that share one database
// (--job_store postgresql://...). The same contract as the SQLite store: the same
// records, keyset paging, gapless per-job event seqs taken under the job's row lock,
// retention. The schema is migrated at Open under a transaction-scoped advisory lock, so
// replicas starting together migrate once.
#ifndef GANSERVE_CORE_JOBS_POSTGRES_JOB_STORE_H_
#define GANSERVE_CORE_JOBS_POSTGRES_JOB_STORE_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "core/jobs/job_store.h"

struct pg_conn;

namespace ganserve::core {

// Thread-safe: one connection, serialised by a mutex, re-established after it breaks.
class PostgresJobStore : public JobStore {
 public:
  static constexpr int kSchemaVersion = 5;

  // `conninfo`: a libpq connection string or URI ("postgresql://user@host/db"; "" or
  // "postgresql://" takes everything from the PG* environment variables).
  // Unavailable when the server cannot be reached; FailedPrecondition when its schema
  // is newer than this ganserve understands.
  static absl::StatusOr<std::unique_ptr<PostgresJobStore>> Open(const std::string& conninfo);
  ~PostgresJobStore() override;

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
  // LISTEN on a connection of its own; triggers NOTIFY on job inserts and requeues.
  bool announces_changes() const override { return true; }
  bool AwaitChange(double timeout_seconds) override;

  // A parameter of a statement: text, or bytes sent as bytea.
  struct Param {
    std::string value;
    bool binary = false;
    bool null = false;
  };
  struct Rows;  // a result (defined in the .cc)

 private:
  PostgresJobStore() = default;
  absl::Status Connect() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status Migrate() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Runs one statement; the rows of a SELECT / RETURNING.
  absl::StatusOr<std::unique_ptr<Rows>> Exec(const std::string& sql, const std::vector<Param>& params = {})
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<std::vector<JobRecord>> Query(const std::string& where_sql, const std::vector<Param>& params)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status UpdateLocked(const JobRecord& job) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // After a write that changed no row: LeaseLost when the job exists, else NotFound.
  absl::Status Missing(const std::string& id, int64_t epoch) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  static std::vector<JobRecord> Records(const Rows& rows);

  std::string conninfo_;
  absl::Mutex mu_;
  pg_conn* conn_ ABSL_GUARDED_BY(mu_) = nullptr;
  // AwaitChange's own connection (LISTEN holds it).
  absl::Mutex listen_mu_;
  pg_conn* listen_conn_ ABSL_GUARDED_BY(listen_mu_) = nullptr;
  bool in_transaction_ ABSL_GUARDED_BY(mu_) = false;  // between BEGIN and COMMIT / ROLLBACK
};

}  // namespace ganserve::core

#endif  // GANSERVE_CORE_JOBS_POSTGRES_JOB_STORE_H_
