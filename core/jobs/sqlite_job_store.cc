#include "core/jobs/sqlite_job_store.h"

#include <sqlite3.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/util/status_macros.h"

namespace ganserve::core {
namespace {

// Migration i (1-based) takes the schema from version i-1 to i. Never edit a
// released migration; append a new one.
const char* const kMigrations[] = {
    R"sql(
CREATE TABLE jobs (
  id TEXT PRIMARY KEY,
  kind INTEGER NOT NULL,
  state INTEGER NOT NULL,
  request_id TEXT,
  request_hash TEXT NOT NULL DEFAULT '',
  model TEXT NOT NULL DEFAULT '',
  request BLOB,
  step INTEGER NOT NULL DEFAULT 0,
  total_steps INTEGER NOT NULL DEFAULT 0,
  losses TEXT NOT NULL DEFAULT '{}',
  eta_seconds REAL NOT NULL DEFAULT 0,
  create_time_ms INTEGER NOT NULL,
  start_time_ms INTEGER NOT NULL DEFAULT 0,
  end_time_ms INTEGER NOT NULL DEFAULT 0,
  result TEXT NOT NULL DEFAULT '',
  error_code INTEGER NOT NULL DEFAULT 0,
  error_message TEXT NOT NULL DEFAULT '',
  cancel_requested INTEGER NOT NULL DEFAULT 0,
  last_seq INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX jobs_request_id ON jobs(request_id) WHERE request_id IS NOT NULL AND request_id != '';
CREATE INDEX jobs_created ON jobs(create_time_ms DESC, id DESC);
CREATE INDEX jobs_state ON jobs(state);
CREATE TABLE job_events (
  job_id TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
  seq INTEGER NOT NULL,
  time_ms INTEGER NOT NULL,
  type TEXT NOT NULL,
  payload BLOB,
  PRIMARY KEY (job_id, seq)
) WITHOUT ROWID;
)sql",
    R"sql(
ALTER TABLE jobs ADD COLUMN max_run_seconds INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN preview_every INTEGER NOT NULL DEFAULT 0;
)sql",
    // Requests written before this version are protobuf bytes of the v1 API.
    R"sql(
ALTER TABLE jobs ADD COLUMN request_encoding TEXT NOT NULL DEFAULT 'proto-v1';
CREATE INDEX jobs_request_encoding ON jobs(request_encoding);
)sql",
    // Leases: claims with a fencing epoch, expiry on the store's clock, retries.
    R"sql(
ALTER TABLE jobs ADD COLUMN lease_epoch INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN worker TEXT NOT NULL DEFAULT '';
ALTER TABLE jobs ADD COLUMN lease_expires_ms INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN attempt INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN run_after_ms INTEGER NOT NULL DEFAULT 0;
CREATE INDEX jobs_leases ON jobs(lease_expires_ms) WHERE state = 2;
)sql",
    kCheckpointMigrationSql,
    kPriorityMigrationSql,
};

static_assert(std::size(kMigrations) == SqliteJobStore::kSchemaVersion, "add a migration with each version");

constexpr const char* kJobColumns =
    "id, kind, state, request_id, request_hash, model, request, step, total_steps, losses, eta_seconds, "
    "create_time_ms, start_time_ms, end_time_ms, result, error_code, error_message, cancel_requested, last_seq, "
    "max_run_seconds, preview_every, request_encoding, priority";
// The store's clock in Unix milliseconds.
constexpr const char* kNowMs = "CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)";

}  // namespace

// RAII prepared statement.
class SqliteJobStore::Stmt {
 public:
  Stmt(sqlite3* db, const std::string& sql) : db_(db) {
    rc_ = sqlite3_prepare_v2(db, sql.c_str(), static_cast<int>(sql.size()), &stmt_, nullptr);
  }
  ~Stmt() { sqlite3_finalize(stmt_); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  absl::Status status() const {
    if (rc_ == SQLITE_OK) return absl::OkStatus();
    return absl::InternalError(absl::StrCat("job store: ", sqlite3_errmsg(db_)));
  }
  void Bind(int i, const std::string& s) {
    sqlite3_bind_text(stmt_, i, s.data(), static_cast<int>(s.size()), SQLITE_TRANSIENT);
  }
  void BindBlob(int i, const std::string& s) {
    sqlite3_bind_blob(stmt_, i, s.data(), static_cast<int>(s.size()), SQLITE_TRANSIENT);
  }
  void Bind(int i, int64_t v) { sqlite3_bind_int64(stmt_, i, v); }
  void Bind(int i, double v) { sqlite3_bind_double(stmt_, i, v); }
  void BindNullableText(int i, const std::string& s) {
    if (s.empty()) {
      sqlite3_bind_null(stmt_, i);
    } else {
      Bind(i, s);
    }
  }
  // SQLITE_ROW, SQLITE_DONE or an error code.
  int Step() { return sqlite3_step(stmt_); }
  absl::Status StepDone() {
    int rc = Step();
    if (rc == SQLITE_DONE) return absl::OkStatus();
    if (rc == SQLITE_CONSTRAINT) return absl::AlreadyExistsError(sqlite3_errmsg(db_));
    return absl::InternalError(absl::StrCat("job store: ", sqlite3_errmsg(db_)));
  }
  std::string Text(int col) const {
    const unsigned char* p = sqlite3_column_text(stmt_, col);
    return p == nullptr
               ? std::string()
               : std::string(reinterpret_cast<const char*>(p), static_cast<size_t>(sqlite3_column_bytes(stmt_, col)));
  }
  std::string Blob(int col) const {
    const void* p = sqlite3_column_blob(stmt_, col);
    return p == nullptr
               ? std::string()
               : std::string(static_cast<const char*>(p), static_cast<size_t>(sqlite3_column_bytes(stmt_, col)));
  }
  int64_t Int(int col) const { return sqlite3_column_int64(stmt_, col); }
  double Double(int col) const { return sqlite3_column_double(stmt_, col); }

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
  int rc_;
};

namespace {

using Stmt = SqliteJobStore::Stmt;

JobRecord ReadJob(const Stmt& s) {
  JobRecord j;
  j.id = s.Text(0);
  j.kind = static_cast<JobKind>(s.Int(1));
  j.state = static_cast<JobState>(s.Int(2));
  j.request_id = s.Text(3);
  j.request_hash = s.Text(4);
  j.model = s.Text(5);
  j.request = s.Blob(6);
  j.step = s.Int(7);
  j.total_steps = s.Int(8);
  j.losses = LossesFromJson(s.Text(9));
  j.eta_seconds = static_cast<float>(s.Double(10));
  j.create_time_ms = s.Int(11);
  j.start_time_ms = s.Int(12);
  j.end_time_ms = s.Int(13);
  j.result = s.Text(14);
  j.error_code = static_cast<int>(s.Int(15));
  j.error_message = s.Text(16);
  j.cancel_requested = s.Int(17) != 0;
  j.last_seq = s.Int(18);
  j.max_run_seconds = s.Int(19);
  j.preview_every = s.Int(20);
  j.request_encoding = s.Text(21);
  j.priority = static_cast<int>(s.Int(22));
  j.lease_epoch = s.Int(23);
  j.worker = s.Text(24);
  j.lease_expires_ms = s.Int(25);
  j.attempt = static_cast<int>(s.Int(26));
  j.checkpoint = s.Text(27);
  return j;
}

}  // namespace

absl::StatusOr<std::unique_ptr<SqliteJobStore>> SqliteJobStore::Open(const std::string& path) {
  sqlite3* db = nullptr;
  int rc =
      sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = db != nullptr ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close(db);
    return absl::UnavailableError(absl::StrCat("cannot open job store ", path, ": ", msg));
  }
  std::unique_ptr<SqliteJobStore> store(new SqliteJobStore(db));
  absl::MutexLock lock(&store->mu_);
  sqlite3_busy_timeout(db, 5000);
  RETURN_IF_ERROR(store->Exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;"));
  RETURN_IF_ERROR(store->Migrate());
  return store;
}

SqliteJobStore::~SqliteJobStore() {
  absl::MutexLock lock(&mu_);
  sqlite3_close(db_);
}

absl::Status SqliteJobStore::Exec(const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err != nullptr ? err : "unknown error";
    sqlite3_free(err);
    return absl::InternalError(absl::StrCat("job store: ", msg));
  }
  return absl::OkStatus();
}

absl::Status SqliteJobStore::Migrate() {
  RETURN_IF_ERROR(Exec("BEGIN IMMEDIATE"));
  Stmt v(db_, "PRAGMA user_version");
  int version = v.Step() == SQLITE_ROW ? static_cast<int>(v.Int(0)) : 0;
  const int target = static_cast<int>(std::size(kMigrations));
  if (version > target) {
    Exec("ROLLBACK").IgnoreError();
    return absl::FailedPreconditionError(absl::StrCat("job store schema version ", version,
                                                      " is newer than this ganserve understands (", target,
                                                      "); run a newer ganserve or use another --data_dir"));
  }
  for (int i = version; i < target; ++i) {
    absl::Status s = Exec(kMigrations[i]);
    if (!s.ok()) {
      Exec("ROLLBACK").IgnoreError();
      return absl::InternalError(absl::StrCat("job store migration ", i + 1, " failed: ", s.message()));
    }
  }
  RETURN_IF_ERROR(Exec(absl::StrCat("PRAGMA user_version=", target).c_str()));
  RETURN_IF_ERROR(Exec("COMMIT"));
  schema_version_ = target;
  return absl::OkStatus();
}

absl::Status SqliteJobStore::CreateJob(const JobRecord& j) {
  absl::MutexLock lock(&mu_);
  Stmt s(db_,
         absl::StrCat("INSERT INTO jobs (", kJobColumns, ") VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"));
  RETURN_IF_ERROR(s.status());
  s.Bind(1, j.id);
  s.Bind(2, static_cast<int64_t>(j.kind));
  s.Bind(3, static_cast<int64_t>(j.state));
  s.BindNullableText(4, j.request_id);
  s.Bind(5, j.request_hash);
  s.Bind(6, j.model);
  s.BindBlob(7, j.request);
  s.Bind(8, j.step);
  s.Bind(9, j.total_steps);
  s.Bind(10, LossesToJson(j.losses));
  s.Bind(11, static_cast<double>(j.eta_seconds));
  s.Bind(12, j.create_time_ms);
  s.Bind(13, j.start_time_ms);
  s.Bind(14, j.end_time_ms);
  s.Bind(15, j.result);
  s.Bind(16, static_cast<int64_t>(j.error_code));
  s.Bind(17, j.error_message);
  s.Bind(18, static_cast<int64_t>(j.cancel_requested));
  s.Bind(19, j.last_seq);
  s.Bind(20, j.max_run_seconds);
  s.Bind(21, j.preview_every);
  s.Bind(22, j.request_encoding);
  s.Bind(23, static_cast<int64_t>(j.priority));
  absl::Status st = s.StepDone();
  if (absl::IsAlreadyExists(st)) {
    return absl::AlreadyExistsError(
        absl::StrCat("a job with id ", j.id, " or request_id '", j.request_id, "' already exists"));
  }
  return st;
}

absl::StatusOr<std::vector<JobRecord>> SqliteJobStore::Query(const std::string& where_sql,
                                                             const std::vector<std::string>& args) {
  Stmt s(db_, absl::StrCat("SELECT ", kJobColumns, ", ", kLeaseColumnsSql, " FROM jobs ", where_sql));
  RETURN_IF_ERROR(s.status());
  for (size_t i = 0; i < args.size(); ++i) s.Bind(static_cast<int>(i + 1), args[i]);
  std::vector<JobRecord> out;
  int rc;
  while ((rc = s.Step()) == SQLITE_ROW) out.push_back(ReadJob(s));
  if (rc != SQLITE_DONE) return absl::InternalError(absl::StrCat("job store: ", sqlite3_errmsg(db_)));
  return out;
}

absl::StatusOr<JobRecord> SqliteJobStore::GetJob(const std::string& id) {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(auto rows, Query("WHERE id = ?", {id}));
  if (rows.empty()) return absl::NotFoundError(absl::StrCat("no job with id '", id, "'"));
  return rows[0];
}

absl::StatusOr<std::optional<JobRecord>> SqliteJobStore::FindByRequestId(const std::string& request_id) {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(auto rows, Query("WHERE request_id = ?", {request_id}));
  if (rows.empty()) return std::optional<JobRecord>();
  return std::optional<JobRecord>(rows[0]);
}

absl::Status SqliteJobStore::UpdateLocked(const JobRecord& j) {
  Stmt s(
      db_,
      "UPDATE jobs SET state=?, step=?, total_steps=?, losses=?, eta_seconds=?, start_time_ms=?, end_time_ms=?, "
      "result=?, error_code=?, error_message=?, cancel_requested=(cancel_requested OR ?11), last_seq=?, checkpoint=?15 "
      "WHERE id=?13 AND lease_epoch = ?14");
  RETURN_IF_ERROR(s.status());
  s.Bind(1, static_cast<int64_t>(j.state));
  s.Bind(2, j.step);
  s.Bind(3, j.total_steps);
  s.Bind(4, LossesToJson(j.losses));
  s.Bind(5, static_cast<double>(j.eta_seconds));
  s.Bind(6, j.start_time_ms);
  s.Bind(7, j.end_time_ms);
  s.Bind(8, j.result);
  s.Bind(9, static_cast<int64_t>(j.error_code));
  s.Bind(10, j.error_message);
  s.Bind(11, static_cast<int64_t>(j.cancel_requested));
  s.Bind(12, j.last_seq);
  s.Bind(13, j.id);
  s.Bind(14, j.lease_epoch);
  s.Bind(15, j.checkpoint);
  RETURN_IF_ERROR(s.StepDone());
  if (sqlite3_changes(db_) == 0) return Missing(j.id, j.lease_epoch);
  return absl::OkStatus();
}

absl::Status SqliteJobStore::Missing(const std::string& id, int64_t epoch) {
  Stmt s(db_, "SELECT 1 FROM jobs WHERE id = ?");
  s.Bind(1, id);
  if (s.Step() == SQLITE_ROW) return LeaseLost(id, epoch);
  return absl::NotFoundError(absl::StrCat("no job with id '", id, "'"));
}

absl::StatusOr<std::vector<JobRecord>> SqliteJobStore::Returning(const std::string& sql,
                                                                 const std::function<void(Stmt&)>& bind) {
  Stmt s(db_, absl::StrCat(sql, " RETURNING ", kJobColumns, ", ", kLeaseColumnsSql));
  RETURN_IF_ERROR(s.status());
  bind(s);
  std::vector<JobRecord> out;
  int rc;
  while ((rc = s.Step()) == SQLITE_ROW) out.push_back(ReadJob(s));
  if (rc != SQLITE_DONE) return absl::InternalError(absl::StrCat("job store: ", sqlite3_errmsg(db_)));
  return out;
}

absl::StatusOr<std::optional<JobRecord>> SqliteJobStore::ClaimNext(const std::string& worker, double lease_seconds,
                                                                   const std::vector<JobKind>& kinds) {
  absl::MutexLock lock(&mu_);
  // One statement: SQLite writes one at a time, so no two claimers take the same row.
  ASSIGN_OR_RETURN(
      auto rows,
      Returning(absl::StrCat("UPDATE jobs SET state = 2, lease_epoch = lease_epoch + 1, attempt = attempt + 1, "
                             "worker = ?1, lease_expires_ms = ",
                             kNowMs, " + ?2 WHERE id = (SELECT id FROM jobs WHERE state = 1 AND run_after_ms <= ",
                             kNowMs, KindFilterSql(kinds), " ORDER BY ", kClaimOrderSql, " LIMIT 1)"),
                [&](Stmt& s) {
                  s.Bind(1, worker);
                  s.Bind(2, static_cast<int64_t>(lease_seconds * 1000));
                }));
  if (rows.empty()) return std::optional<JobRecord>();
  return std::optional<JobRecord>(std::move(rows[0]));
}

absl::StatusOr<JobRecord> SqliteJobStore::Heartbeat(const std::string& id, int64_t epoch, double lease_seconds) {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(auto rows, Returning(absl::StrCat("UPDATE jobs SET lease_expires_ms = ", kNowMs,
                                                     " + ?3 WHERE id = ?1 AND lease_epoch = ?2 AND state = 2"),
                                        [&](Stmt& s) {
                                          s.Bind(1, id);
                                          s.Bind(2, epoch);
                                          s.Bind(3, static_cast<int64_t>(lease_seconds * 1000));
                                        }));
  if (rows.empty()) return Missing(id, epoch);
  return rows[0];
}

absl::StatusOr<JobRecord> SqliteJobStore::RequestCancel(const std::string& id) {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(auto rows, Returning(absl::StrCat("UPDATE jobs SET cancel_requested = 1, end_time_ms = CASE WHEN "
                                                     "state = 1 THEN ",
                                                     kNowMs,
                                                     " ELSE end_time_ms END, state = CASE WHEN state = 1 THEN 5 "
                                                     "ELSE state END WHERE id = ?1 AND state IN (1, 2)"),
                                        [&](Stmt& s) { s.Bind(1, id); }));
  if (!rows.empty()) return rows[0];
  ASSIGN_OR_RETURN(auto found, Query("WHERE id = ?", {id}));
  if (found.empty()) return absl::NotFoundError(absl::StrCat("no job with id '", id, "'"));
  return found[0];
}

absl::StatusOr<std::vector<JobRecord>> SqliteJobStore::ReapExpiredLeases(int max_attempts, double backoff_seconds) {
  absl::MutexLock lock(&mu_);
  const std::string give_up = "attempt >= ?1";
  return Returning(
      absl::StrCat(
          "UPDATE jobs SET lease_epoch = lease_epoch + 1, worker = '', lease_expires_ms = 0, state = CASE WHEN ",
          give_up, " THEN 4 ELSE 1 END, run_after_ms = CASE WHEN ", give_up, " THEN run_after_ms ELSE ", kNowMs,
          " + ?2 * (1 << MIN(MAX(attempt - 1, 0), ", kLeaseBackoffMaxShift, ")) END, end_time_ms = CASE WHEN ", give_up,
          " THEN ", kNowMs, " ELSE end_time_ms END, error_code = CASE WHEN ", give_up,
          " THEN 10 ELSE error_code END, error_message = CASE WHEN ", give_up,
          " THEN ?3 ELSE error_message END WHERE state = 2 AND lease_expires_ms > 0 AND lease_expires_ms < ", kNowMs),
      [&](Stmt& s) {
        s.Bind(1, static_cast<int64_t>(max_attempts));
        s.Bind(2, static_cast<int64_t>(backoff_seconds * 1000));
        s.Bind(3, std::string(kLeaseAttemptsExhausted));
      });
}

absl::Status SqliteJobStore::RewriteRequest(const std::string& id, const std::string& request,
                                            const std::string& encoding) {
  absl::MutexLock lock(&mu_);
  Stmt s(db_, "UPDATE jobs SET request=?, request_encoding=? WHERE id=?");
  RETURN_IF_ERROR(s.status());
  s.BindBlob(1, request);
  s.Bind(2, encoding);
  s.Bind(3, id);
  RETURN_IF_ERROR(s.StepDone());
  if (sqlite3_changes(db_) == 0) return absl::NotFoundError(absl::StrCat("no job with id '", id, "'"));
  return absl::OkStatus();
}

absl::Status SqliteJobStore::UpdateJob(const JobRecord& j) {
  absl::MutexLock lock(&mu_);
  return UpdateLocked(j);
}

absl::StatusOr<ListJobsPage> SqliteJobStore::ListJobs(const ListJobsQuery& q) {
  std::string where = "WHERE 1=1";
  std::vector<std::string> args;
  if (q.kind != JobKind::kUnspecified) absl::StrAppend(&where, " AND kind = ", static_cast<int>(q.kind));
  if (q.state != JobState::kUnspecified) absl::StrAppend(&where, " AND state = ", static_cast<int>(q.state));
  ASSIGN_OR_RETURN(std::optional<PageKey> after, ParsePageToken(q.page_token));
  if (after) {
    absl::StrAppend(&where, " AND (create_time_ms < ", after->create_time_ms,
                    " OR (create_time_ms = ", after->create_time_ms, " AND id < ?))");
    args.push_back(after->id);
  }
  absl::StrAppend(&where, " ORDER BY create_time_ms DESC, id DESC LIMIT ", q.page_size + 1);
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(std::vector<JobRecord> rows, Query(where, args));
  return MakePage(std::move(rows), q.page_size);
}

absl::StatusOr<std::vector<JobRecord>> SqliteJobStore::ListRequestsNotEncodedAs(const std::string& encoding) {
  absl::MutexLock lock(&mu_);
  return Query("WHERE request_encoding != ? ORDER BY create_time_ms ASC, id ASC", {encoding});
}

absl::StatusOr<std::vector<JobRecord>> SqliteJobStore::ListUnfinished() {
  absl::MutexLock lock(&mu_);
  return Query(absl::StrCat("WHERE state IN (", static_cast<int>(JobState::kQueued), ",",
                            static_cast<int>(JobState::kRunning), ") ORDER BY create_time_ms ASC, id ASC"),
               {});
}

absl::StatusOr<int64_t> SqliteJobStore::AppendEvent(JobRecord& job, const std::string& type, const std::string& payload,
                                                    int64_t time_ms) {
  absl::MutexLock lock(&mu_);
  RETURN_IF_ERROR(Exec("BEGIN IMMEDIATE"));
  auto fail = [&](absl::Status s) {
    Exec("ROLLBACK").IgnoreError();
    return s;
  };
  Stmt cur(db_, "SELECT last_seq, lease_epoch FROM jobs WHERE id = ?");
  cur.Bind(1, job.id);
  if (cur.Step() != SQLITE_ROW) return fail(absl::NotFoundError(absl::StrCat("no job with id '", job.id, "'")));
  if (cur.Int(1) != job.lease_epoch) return fail(LeaseLost(job.id, job.lease_epoch));
  const int64_t seq = cur.Int(0) + 1;
  Stmt ins(db_, "INSERT INTO job_events (job_id, seq, time_ms, type, payload) VALUES (?,?,?,?,?)");
  ins.Bind(1, job.id);
  ins.Bind(2, seq);
  ins.Bind(3, time_ms);
  ins.Bind(4, type);
  ins.BindBlob(5, payload);
  if (absl::Status s = ins.StepDone(); !s.ok()) return fail(s);
  job.last_seq = seq;
  if (absl::Status s = UpdateLocked(job); !s.ok()) return fail(s);
  RETURN_IF_ERROR(Exec("COMMIT"));
  return seq;
}

absl::StatusOr<std::vector<JobEventRecord>> SqliteJobStore::ListEvents(const std::string& job_id, int64_t after_seq,
                                                                       int limit) {
  absl::MutexLock lock(&mu_);
  Stmt s(db_, "SELECT seq, time_ms, type, payload FROM job_events WHERE job_id = ? AND seq > ? ORDER BY seq LIMIT ?");
  RETURN_IF_ERROR(s.status());
  s.Bind(1, job_id);
  s.Bind(2, after_seq);
  s.Bind(3, static_cast<int64_t>(limit));
  std::vector<JobEventRecord> out;
  int rc;
  while ((rc = s.Step()) == SQLITE_ROW) out.push_back({s.Int(0), s.Int(1), s.Text(2), s.Blob(3)});
  if (rc != SQLITE_DONE) return absl::InternalError(absl::StrCat("job store: ", sqlite3_errmsg(db_)));
  return out;
}

absl::StatusOr<PruneStats> SqliteJobStore::PruneEvents(int64_t ended_before_ms) {
  absl::MutexLock lock(&mu_);
  RETURN_IF_ERROR(Exec("BEGIN IMMEDIATE"));
  auto fail = [&](absl::Status s) {
    Exec("ROLLBACK").IgnoreError();
    return s;
  };
  // Finished jobs with events below their newest; one statement measures, one deletes.
  const std::string finished =
      absl::StrCat("SELECT id FROM jobs WHERE state IN (", static_cast<int>(JobState::kSucceeded), ",",
                   static_cast<int>(JobState::kFailed), ",", static_cast<int>(JobState::kCancelled),
                   ") AND end_time_ms > 0 AND end_time_ms < ?1");
  const std::string old_events = absl::StrCat("FROM job_events e JOIN jobs j ON j.id = e.job_id WHERE e.job_id IN (",
                                              finished, ") AND e.seq < j.last_seq");
  PruneStats out;
  Stmt measure(db_, "SELECT COUNT(DISTINCT e.job_id), COUNT(*), COALESCE(SUM(LENGTH(e.payload)), 0) " + old_events);
  if (!measure.status().ok()) return fail(measure.status());
  measure.Bind(1, ended_before_ms);
  if (measure.Step() != SQLITE_ROW) return fail(absl::InternalError(absl::StrCat("job store: ", sqlite3_errmsg(db_))));
  out.jobs = measure.Int(0);
  out.events = measure.Int(1);
  out.bytes = measure.Int(2);
  if (out.events > 0) {
    Stmt del(db_, absl::StrCat("DELETE FROM job_events WHERE job_id IN (", finished,
                               ") AND seq < (SELECT last_seq FROM jobs WHERE jobs.id = job_events.job_id)"));
    if (!del.status().ok()) return fail(del.status());
    del.Bind(1, ended_before_ms);
    if (absl::Status s = del.StepDone(); !s.ok()) return fail(s);
  }
  RETURN_IF_ERROR(Exec("COMMIT"));
  return out;
}

absl::StatusOr<int64_t> SqliteJobStore::FirstSeq(const std::string& job_id) {
  absl::MutexLock lock(&mu_);
  Stmt s(db_, "SELECT COALESCE(MIN(seq), 0) FROM job_events WHERE job_id = ?");
  RETURN_IF_ERROR(s.status());
  s.Bind(1, job_id);
  if (s.Step() != SQLITE_ROW) return absl::InternalError(absl::StrCat("job store: ", sqlite3_errmsg(db_)));
  return s.Int(0);
}

absl::StatusOr<int64_t> SqliteJobStore::CountQueued() {
  absl::MutexLock lock(&mu_);
  Stmt s(db_, "SELECT COUNT(*) FROM jobs WHERE state = 1");
  RETURN_IF_ERROR(s.status());
  if (s.Step() != SQLITE_ROW) return absl::InternalError(absl::StrCat("job store: ", sqlite3_errmsg(db_)));
  return s.Int(0);
}

absl::StatusOr<int64_t> SqliteJobStore::CountQueuedBefore(const JobRecord& job) {
  absl::MutexLock lock(&mu_);
  // kClaimOrderSql as a row comparison.
  Stmt s(db_, "SELECT COUNT(*) FROM jobs WHERE state = 1 AND (-priority, create_time_ms, id) < (?1, ?2, ?3)");
  RETURN_IF_ERROR(s.status());
  s.Bind(1, -static_cast<int64_t>(job.priority));
  s.Bind(2, job.create_time_ms);
  s.Bind(3, job.id);
  if (s.Step() != SQLITE_ROW) return absl::InternalError(absl::StrCat("job store: ", sqlite3_errmsg(db_)));
  return s.Int(0);
}

}  // namespace ganserve::core
