// Durable storage of jobs and their event logs, behind an interface so that the
// embedded SQLite store can be swapped for a shared PostgreSQL one when scaling out.
#ifndef GANSERVE_CORE_JOBS_JOB_STORE_H_
#define GANSERVE_CORE_JOBS_JOB_STORE_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace ganserve::core {

// Values match ganserve.v1.JobKind / JobState so the edge can cast.
enum class JobKind { kUnspecified = 0, kAdapt = 1, kInvert = 2, kEditStats = 3, kTrainMapper = 4 };
enum class JobState { kUnspecified = 0, kQueued = 1, kRunning = 2, kSucceeded = 3, kFailed = 4, kCancelled = 5 };

bool IsTerminal(JobState s);
const char* JobKindName(JobKind k);
const char* JobStateName(JobState s);

// One job's durable row.
struct JobRecord {
  std::string id;
  JobKind kind = JobKind::kUnspecified;
  JobState state = JobState::kQueued;
  std::string request_id;    // idempotency key, may be empty
  std::string request_hash;  // digest of the request payload, for idempotency checks
  std::string model;
  std::string request;           // the serialised request, opaque to the store
  std::string request_encoding;  // how `request` is serialised (e.g. "spec-json"); set by the writer
  int64_t step = 0;
  int64_t total_steps = 0;
  std::map<std::string, float> losses;
  float eta_seconds = 0;
  int64_t create_time_ms = 0;
  int64_t start_time_ms = 0;
  int64_t end_time_ms = 0;
  std::string result;
  int error_code = 0;
  std::string error_message;
  bool cancel_requested = false;
  int64_t last_seq = 0;         // seq of the newest event
  int64_t max_run_seconds = 0;  // 0 = the engine's default
  int64_t preview_every = 0;    // steps between previews; 0 = the engine's default
  int queue_position = 0;       // 1-based while queued; computed by the engine, not stored
  // Leases (replicas sharing a store claim jobs: ClaimNext). lease_epoch is the fencing
  // token: it moves on at every claim and every reap, and a write that carries it (> 0)
  // lands only while the job still has it. worker: who holds the lease; until
  // lease_expires_ms (the store's clock); attempt: how many claims the job has had. A
  // write at epoch 0 (a job's submitter, or a server that runs every job itself) lands
  // only while the job was never claimed.
  int64_t lease_epoch = 0;
  std::string worker;
  int64_t lease_expires_ms = 0;
  int attempt = 0;
  // SHA-256 of the job's newest checkpoint in the shared files (SharedFiles blob), when
  // the engine keeps them there; written by UpdateJob under the same fence.
  std::string checkpoint;
  // Claim order among queued jobs: higher first, then oldest first.
  int priority = 0;
};

// Aborted: the write of `job_id` at `epoch` came after its lease moved on (its holder
// must stop the job and publish nothing).
absl::Status LeaseLost(const std::string& job_id, int64_t epoch);
bool IsLeaseLost(const absl::Status& s);

// One stored event; the payload is opaque (the edge's serialised JobEvent).
struct JobEventRecord {
  int64_t seq = 0;
  int64_t time_ms = 0;
  std::string type;  // "state", "progress", "preview"
  std::string payload;
};

struct ListJobsQuery {
  JobKind kind = JobKind::kUnspecified;     // any
  JobState state = JobState::kUnspecified;  // any
  int page_size = 50;
  std::string page_token;  // from a previous page; empty = first page
};

struct ListJobsPage {
  std::vector<JobRecord> jobs;  // newest first
  std::string next_page_token;  // empty when done
};

// What a retention pass removed.
struct PruneStats {
  int64_t jobs = 0;    // jobs whose events were pruned
  int64_t events = 0;  // events deleted
  int64_t bytes = 0;   // their payload bytes (previews are most of it)
};

// Shared by the implementations: the losses column as a JSON object, and keyset paging
// ("<create_time_ms>/<id>" of a page's last job).
std::string LossesToJson(const std::map<std::string, float>& losses);
std::map<std::string, float> LossesFromJson(const std::string& json);
struct PageKey {
  int64_t create_time_ms = 0;
  std::string id;
};
// nullopt for the first page; InvalidArgument for a token no page gave out.
absl::StatusOr<std::optional<PageKey>> ParsePageToken(const std::string& token);
// Rows fetched newest first with LIMIT page_size + 1, as a page and its next token.
ListJobsPage MakePage(std::vector<JobRecord> rows, int page_size);
// The columns reads return after the inserted ones (the order ReadJob expects).
// Schema migrations both stores write alike (each store lists them in its order).
// Checkpoints in shared files: the digest of the newest.
inline constexpr char kCheckpointMigrationSql[] = "ALTER TABLE jobs ADD COLUMN checkpoint TEXT NOT NULL DEFAULT '';";
// Priorities: claims take the highest first.
inline constexpr char kPriorityMigrationSql[] =
    "ALTER TABLE jobs ADD COLUMN priority INTEGER NOT NULL DEFAULT 0;\n"
    "CREATE INDEX jobs_claim_order ON jobs(priority DESC, create_time_ms, id) WHERE state = 1;";
// The order claims take queued jobs in (and queue positions count).
inline constexpr char kClaimOrderSql[] = "priority DESC, create_time_ms, id";
inline constexpr char kLeaseColumnsSql[] = "lease_epoch, worker, lease_expires_ms, attempt, checkpoint";
// " AND kind IN (...)" for ClaimNext's kinds; empty for any kind.
std::string KindFilterSql(const std::vector<JobKind>& kinds);
// Leases: the error a reaped job ends with after max_attempts claims (the code ABORTED),
// and the longest retry backoff as a multiple of the base.
inline constexpr int kLeaseBackoffMaxShift = 6;
inline constexpr char kLeaseAttemptsExhausted[] =
    "its worker stopped renewing its lease on every attempt (max_attempts reached); not retried";

// Implementations are thread-safe.
class JobStore {
 public:
  virtual ~JobStore() = default;

  // Inserts a new job. AlreadyExists if the id or a non-empty request_id is taken.
  virtual absl::Status CreateJob(const JobRecord& job) = 0;
  // NotFound if absent.
  virtual absl::StatusOr<JobRecord> GetJob(const std::string& id) = 0;
  // The job created with this idempotency key, if any.
  virtual absl::StatusOr<std::optional<JobRecord>> FindByRequestId(const std::string& request_id) = 0;
  // Overwrites the job's mutable fields (not id, kind, request, lease; cancel_requested
  // is only ever set, never cleared, so a request made meanwhile survives). NotFound if
  // absent; LeaseLost when the stored job has another epoch than job.lease_epoch.
  virtual absl::Status UpdateJob(const JobRecord& job) = 0;
  // Replaces a job's stored request and its encoding (format upgrades). NotFound if absent.
  virtual absl::Status RewriteRequest(const std::string& id, const std::string& request,
                                      const std::string& encoding) = 0;
  // Pages through jobs, newest first. InvalidArgument for a malformed page token.
  virtual absl::StatusOr<ListJobsPage> ListJobs(const ListJobsQuery& query) = 0;
  // Jobs in QUEUED or RUNNING state, oldest first (crash recovery).
  virtual absl::StatusOr<std::vector<JobRecord>> ListUnfinished() = 0;
  // Jobs whose request is stored in another encoding than `encoding`, oldest first
  // (format upgrades; indexed, so a store with nothing to upgrade answers at once).
  virtual absl::StatusOr<std::vector<JobRecord>> ListRequestsNotEncodedAs(const std::string& encoding) = 0;

  // Appends an event and stores `job` (whose last_seq it sets) in one transaction;
  // returns the new seq (last_seq + 1). NotFound if the job does not exist; LeaseLost
  // (nothing written) as UpdateJob.
  virtual absl::StatusOr<int64_t> AppendEvent(JobRecord& job, const std::string& type, const std::string& payload,
                                              int64_t time_ms) = 0;
  // Events with seq > after_seq, ascending, at most `limit`.
  virtual absl::StatusOr<std::vector<JobEventRecord>> ListEvents(const std::string& job_id, int64_t after_seq,
                                                                 int limit) = 0;
  // Retention: deletes the events of finished jobs (succeeded, failed, cancelled) that
  // ended before `ended_before_ms`, except each job's newest (its terminal state), which
  // stays with the job's row. Space freed inside the store is reused by later writes.
  virtual absl::StatusOr<PruneStats> PruneEvents(int64_t ended_before_ms) = 0;
  // The smallest seq still stored for the job (0 when it has none); events below it
  // were pruned.
  virtual absl::StatusOr<int64_t> FirstSeq(const std::string& job_id) = 0;

  // Leases. Replicas that share one store claim jobs instead of each owning all of them;
  // every time below is the store's clock (the database server's), never a replica's.
  //
  // Claims the oldest QUEUED job (of `kinds`; empty = any) whose retry backoff is over:
  // it becomes RUNNING with lease_epoch and attempt one higher, held by `worker` until
  // now + lease_seconds. Concurrent claimers never get the same job. nullopt when no job
  // is claimable.
  virtual absl::StatusOr<std::optional<JobRecord>> ClaimNext(const std::string& worker, double lease_seconds,
                                                             const std::vector<JobKind>& kinds) = 0;
  // Extends the lease its holder has at `epoch` to now + lease_seconds; returns the job
  // as stored (cancel_requested tells the holder to stop). LeaseLost when the job is no
  // longer RUNNING at that epoch; NotFound.
  virtual absl::StatusOr<JobRecord> Heartbeat(const std::string& id, int64_t epoch, double lease_seconds) = 0;
  // Cancellation through the store, atomic against claims: a QUEUED job ends CANCELLED
  // at once; a RUNNING one gets cancel_requested (whoever holds it sees the request at
  // its next heartbeat); other fields stay. Returns the job as stored (a finished job
  // unchanged). NotFound.
  virtual absl::StatusOr<JobRecord> RequestCancel(const std::string& id) = 0;
  // RUNNING jobs whose lease expired (their holder died, hung or lost the store): back to
  // QUEUED, claimable after backoff_seconds * 2^(attempt - 1) (at most 64x), or FAILED
  // (ABORTED, saying why) once they have had max_attempts claims. Either way their epoch
  // moves on, so the old holder's writes are refused. Returns the jobs as stored now; one
  // replica reaps at a time (the others get an empty list meanwhile). Jobs run without a
  // lease (lease_expires_ms 0) are never reaped.
  virtual absl::StatusOr<std::vector<JobRecord>> ReapExpiredLeases(int max_attempts, double backoff_seconds) = 0;
  // How many jobs are QUEUED (the shared queue's depth).
  virtual absl::StatusOr<int64_t> CountQueued() = 0;
  // How many QUEUED jobs a claim takes before `job` (kClaimOrderSql: its queue position
  // is this + 1).
  virtual absl::StatusOr<int64_t> CountQueuedBefore(const JobRecord& job) = 0;

  // Announcements of work other connections made claimable (a job created or requeued),
  // so replicas sharing a store need not wait for their next poll. Only a wake-up: the
  // store's tables stay the truth, and callers keep polling.
  virtual bool announces_changes() const { return false; }
  // Blocks up to `timeout_seconds`: true when a change was announced (or the listening
  // link was made anew: re-read), false on timeout. Unsupported stores: false at once.
  virtual bool AwaitChange(double /*timeout_seconds*/) { return false; }
};

}  // namespace ganserve::core

#endif  // GANSERVE_CORE_JOBS_JOB_STORE_H_
