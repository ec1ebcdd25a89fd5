#include "core/jobs/postgres_job_store.h"

#include <libpq-fe.h>
#include <poll.h>

#include <algorithm>
#include <chrono>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "core/util/status_macros.h"

namespace ganserve::core {
namespace {

// Migration i (1-based) takes the schema from version i-1 to i. Never edit a released
// migration; append a new one.
const char* const kMigrations[] = {
    R"sql(
CREATE TABLE jobs (
  id TEXT PRIMARY KEY,
  kind INTEGER NOT NULL,
  state INTEGER NOT NULL,
  request_id TEXT,
  request_hash TEXT NOT NULL DEFAULT '',
  model TEXT NOT NULL DEFAULT '',
  request BYTEA,
  request_encoding TEXT NOT NULL DEFAULT '',
  step BIGINT NOT NULL DEFAULT 0,
  total_steps BIGINT NOT NULL DEFAULT 0,
  losses TEXT NOT NULL DEFAULT '{}',
  eta_seconds DOUBLE PRECISION NOT NULL DEFAULT 0,
  create_time_ms BIGINT NOT NULL,
  start_time_ms BIGINT NOT NULL DEFAULT 0,
  end_time_ms BIGINT NOT NULL DEFAULT 0,
  result TEXT NOT NULL DEFAULT '',
  error_code INTEGER NOT NULL DEFAULT 0,
  error_message TEXT NOT NULL DEFAULT '',
  cancel_requested BOOLEAN NOT NULL DEFAULT FALSE,
  last_seq BIGINT NOT NULL DEFAULT 0,
  max_run_seconds BIGINT NOT NULL DEFAULT 0,
  preview_every BIGINT NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX jobs_request_id ON jobs(request_id) WHERE request_id IS NOT NULL AND request_id <> '';
CREATE INDEX jobs_created ON jobs(create_time_ms DESC, id DESC);
CREATE INDEX jobs_unfinished ON jobs(state) WHERE state IN (1, 2);
CREATE INDEX jobs_request_encoding ON jobs(request_encoding);
CREATE TABLE job_events (
  job_id TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
  seq BIGINT NOT NULL,
  time_ms BIGINT NOT NULL,
  type TEXT NOT NULL,
  payload BYTEA,
  PRIMARY KEY (job_id, seq)
);
)sql",
    // Leases: claims with a fencing epoch, expiry on the database's clock, retries.
    R"sql(
ALTER TABLE jobs ADD COLUMN lease_epoch BIGINT NOT NULL DEFAULT 0,
  ADD COLUMN worker TEXT NOT NULL DEFAULT '',
  ADD COLUMN lease_expires_ms BIGINT NOT NULL DEFAULT 0,
  ADD COLUMN attempt INTEGER NOT NULL DEFAULT 0,
  ADD COLUMN run_after_ms BIGINT NOT NULL DEFAULT 0;
CREATE INDEX jobs_queued ON jobs(create_time_ms, id) WHERE state = 1;
CREATE INDEX jobs_leases ON jobs(lease_expires_ms) WHERE state = 2;
)sql",
    kCheckpointMigrationSql,
    kPriorityMigrationSql,
    // Announcements (LISTEN ganserve_jobs): a job created or requeued, i.e. work to claim.
    // Notifications are sent at commit, identical ones of a transaction folded into one.
    // Not per event: every NOTIFY serialises commits on the notification queue, and the
    // event stream of a busy job would wake every replica for every step.
    R"sql(
CREATE OR REPLACE FUNCTION ganserve_announce() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('ganserve_jobs', '');
  RETURN NULL;
END
$$;
CREATE TRIGGER jobs_created AFTER INSERT ON jobs FOR EACH STATEMENT EXECUTE FUNCTION ganserve_announce();
CREATE TRIGGER jobs_requeued AFTER UPDATE OF state ON jobs FOR EACH ROW WHEN (NEW.state = 1 AND OLD.state <> 1)
  EXECUTE FUNCTION ganserve_announce();
)sql",
};

static_assert(std::size(kMigrations) == PostgresJobStore::kSchemaVersion, "add a migration with each version");

// Serialises schema migrations of concurrently starting replicas.
constexpr int64_t kMigrationLock = 0x67616e7365727665;  // "ganserve"
// Held by the replica that reaps expired leases, for one transaction.
constexpr int64_t kReaperLock = 0x67616e7265617072;  // "ganreapr"

constexpr const char* kJobColumns =
    "id, kind, state, request_id, request_hash, model, request, step, total_steps, losses, eta_seconds, "
    "create_time_ms, start_time_ms, end_time_ms, result, error_code, error_message, cancel_requested, last_seq, "
    "max_run_seconds, preview_every, request_encoding, priority";
// What reads return: the written columns, then the lease.
const std::string& ReadColumns() {
  static const auto* const columns = new std::string(absl::StrCat(kJobColumns, ", ", kLeaseColumnsSql));
  return *columns;
}
// The database server's clock in Unix milliseconds.
constexpr const char* kNowMs = "(EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT";

using Param = PostgresJobStore::Param;
Param Text(std::string v) { return {std::move(v), false, false}; }
Param Bytes(std::string v) { return {std::move(v), true, false}; }
Param Int(int64_t v) { return {std::to_string(v), false, false}; }
Param NullableText(const std::string& v) { return {v, false, v.empty()}; }

}  // namespace

struct PostgresJobStore::Rows {
  std::unique_ptr<PGresult, decltype(&PQclear)> res{nullptr, &PQclear};
  int count() const { return PQntuples(res.get()); }
  std::string Text(int row, int col) const {
    return {PQgetvalue(res.get(), row, col), static_cast<size_t>(PQgetlength(res.get(), row, col))};
  }
  int64_t Int(int row, int col) const {
    int64_t v = 0;
    (void)absl::SimpleAtoi(Text(row, col), &v);
    return v;
  }
  double Double(int row, int col) const {
    double v = 0;
    (void)absl::SimpleAtod(Text(row, col), &v);
    return v;
  }
  bool Bool(int row, int col) const { return Text(row, col) == "t"; }
  std::string Bytea(int row, int col) const {
    if (PQgetisnull(res.get(), row, col)) return "";
    size_t n = 0;
    unsigned char* raw = PQunescapeBytea(reinterpret_cast<const unsigned char*>(PQgetvalue(res.get(), row, col)), &n);
    std::string out(reinterpret_cast<const char*>(raw), n);
    PQfreemem(raw);
    return out;
  }
  JobRecord Job(int r) const {
    JobRecord j;
    j.id = Text(r, 0);
    j.kind = static_cast<JobKind>(Int(r, 1));
    j.state = static_cast<JobState>(Int(r, 2));
    j.request_id = Text(r, 3);
    j.request_hash = Text(r, 4);
    j.model = Text(r, 5);
    j.request = Bytea(r, 6);
    j.step = Int(r, 7);
    j.total_steps = Int(r, 8);
    j.losses = LossesFromJson(Text(r, 9));
    j.eta_seconds = static_cast<float>(Double(r, 10));
    j.create_time_ms = Int(r, 11);
    j.start_time_ms = Int(r, 12);
    j.end_time_ms = Int(r, 13);
    j.result = Text(r, 14);
    j.error_code = static_cast<int>(Int(r, 15));
    j.error_message = Text(r, 16);
    j.cancel_requested = Bool(r, 17);
    j.last_seq = Int(r, 18);
    j.max_run_seconds = Int(r, 19);
    j.preview_every = Int(r, 20);
    j.request_encoding = Text(r, 21);
    j.priority = static_cast<int>(Int(r, 22));
    j.lease_epoch = Int(r, 23);
    j.worker = Text(r, 24);
    j.lease_expires_ms = Int(r, 25);
    j.attempt = static_cast<int>(Int(r, 26));
    j.checkpoint = Text(r, 27);
    return j;
  }
};

absl::StatusOr<std::unique_ptr<PostgresJobStore>> PostgresJobStore::Open(const std::string& conninfo) {
  std::unique_ptr<PostgresJobStore> store(new PostgresJobStore());
  store->conninfo_ = conninfo == "postgresql://" || conninfo == "postgres://" ? "" : conninfo;
  absl::MutexLock lock(&store->mu_);
  RETURN_IF_ERROR(store->Connect());
  RETURN_IF_ERROR(store->Migrate());
  return store;
}

PostgresJobStore::~PostgresJobStore() {
  {
    absl::MutexLock lock(&listen_mu_);
    if (listen_conn_ != nullptr) PQfinish(listen_conn_);
  }
  absl::MutexLock lock(&mu_);
  if (conn_ != nullptr) PQfinish(conn_);
}

bool PostgresJobStore::AwaitChange(double timeout_seconds) {
  absl::MutexLock lock(&listen_mu_);
  const auto wait = std::chrono::duration<double>(std::max(0.0, timeout_seconds));
  if (listen_conn_ == nullptr || PQstatus(listen_conn_) != CONNECTION_OK) {
    if (listen_conn_ != nullptr) PQfinish(listen_conn_);
    listen_conn_ = PQconnectdb(conninfo_.c_str());
    PGresult* r = PQstatus(listen_conn_) == CONNECTION_OK ? PQexec(listen_conn_, "LISTEN ganserve_jobs") : nullptr;
    const bool listening = r != nullptr && PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
    if (!listening) {
      PQfinish(listen_conn_);
      listen_conn_ = nullptr;
      std::this_thread::sleep_for(wait);  // the database is away: the caller polls meanwhile
      return false;
    }
    return true;  // what happened while no one listened is unknown: re-read
  }
  auto drain = [this] {
    bool any = false;
    while (PGnotify* n = PQnotifies(listen_conn_)) {
      any = true;
      PQfreemem(n);
    }
    return any;
  };
  if (PQconsumeInput(listen_conn_) == 0) {
    PQfinish(listen_conn_);
    listen_conn_ = nullptr;
    return true;
  }
  if (drain()) return true;
  const int fd = PQsocket(listen_conn_);
  if (fd < 0) return false;
  pollfd p{fd, POLLIN, 0};
  const int ready =
      ::poll(&p, 1, static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(wait).count()));
  if (ready <= 0) return false;
  if (PQconsumeInput(listen_conn_) == 0) {
    PQfinish(listen_conn_);
    listen_conn_ = nullptr;
    return true;
  }
  return drain();
}

absl::Status PostgresJobStore::Connect() {
  if (conn_ != nullptr && PQstatus(conn_) == CONNECTION_OK) return absl::OkStatus();
  if (conn_ != nullptr) {
    PQreset(conn_);
  } else {
    conn_ = PQconnectdb(conninfo_.c_str());
  }
  if (conn_ == nullptr || PQstatus(conn_) != CONNECTION_OK) {
    const std::string why = conn_ != nullptr ? PQerrorMessage(conn_) : "out of memory";
    return absl::UnavailableError(absl::StrCat("cannot reach the PostgreSQL job store: ", why));
  }
  // Short statements only: nothing may hold a transaction open across device work.
  PGresult* r = PQexec(conn_,
                       "SET statement_timeout = '30s'; SET idle_in_transaction_session_timeout = '60s'; "
                       "SET client_min_messages = warning");
  PQclear(r);
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<PostgresJobStore::Rows>> PostgresJobStore::Exec(const std::string& sql,
                                                                               const std::vector<Param>& params) {
  RETURN_IF_ERROR(Connect());
  std::vector<const char*> values;
  std::vector<int> lengths, formats;
  values.reserve(params.size());
  lengths.reserve(params.size());
  formats.reserve(params.size());
  for (const Param& p : params) {
    values.push_back(p.null ? nullptr : p.value.data());
    lengths.push_back(static_cast<int>(p.value.size()));
    formats.push_back(p.binary ? 1 : 0);
  }
  auto rows = std::make_unique<Rows>();
  auto run = [&] {
    // Without parameters: the simple protocol, which also runs several statements (migrations).
    rows->res.reset(params.empty() ? PQexec(conn_, sql.c_str())
                                   : PQexecParams(conn_, sql.c_str(), static_cast<int>(params.size()), nullptr,
                                                  values.data(), lengths.data(), formats.data(), /*resultFormat=*/0));
    return rows->res == nullptr ? PGRES_FATAL_ERROR : PQresultStatus(rows->res.get());
  };
  ExecStatusType st = run();
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && PQstatus(conn_) != CONNECTION_OK && !in_transaction_) {
    // The connection broke while idle (the server restarted, or terminated it): a
    // statement outside a transaction runs once more on a new connection.
    if (Connect().ok()) st = run();
  }
  if (sql == "BEGIN") in_transaction_ = st == PGRES_COMMAND_OK;
  if (sql == "COMMIT" || sql == "ROLLBACK") in_transaction_ = false;
  if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) return rows;
  const char* state = rows->res == nullptr ? nullptr : PQresultErrorField(rows->res.get(), PG_DIAG_SQLSTATE);
  const std::string message = PQerrorMessage(conn_);
  if (state != nullptr && std::string(state) == "23505") return absl::AlreadyExistsError(message);
  if (PQstatus(conn_) != CONNECTION_OK) {
    in_transaction_ = false;  // the server rolled it back
    return absl::UnavailableError(absl::StrCat("the PostgreSQL job store connection broke: ", message));
  }
  return absl::InternalError(absl::StrCat("job store: ", message));
}

absl::Status PostgresJobStore::Migrate() {
  RETURN_IF_ERROR(Exec("BEGIN").status());
  auto fail = [&](absl::Status s) {
    (void)Exec("ROLLBACK");
    return s;
  };
  auto step = [&](const std::string& sql, const std::vector<Param>& params = {}) { return Exec(sql, params); };
  if (auto r = step("SELECT pg_advisory_xact_lock($1)", {Int(kMigrationLock)}); !r.ok()) return fail(r.status());
  if (auto r = step("CREATE TABLE IF NOT EXISTS ganserve_schema (version INTEGER NOT NULL)"); !r.ok()) {
    return fail(r.status());
  }
  auto v = step("SELECT version FROM ganserve_schema");
  if (!v.ok()) return fail(v.status());
  const int version = (*v)->count() > 0 ? static_cast<int>((*v)->Int(0, 0)) : 0;
  const int target = static_cast<int>(std::size(kMigrations));
  if (version > target) {
    return fail(absl::FailedPreconditionError(absl::StrCat("the PostgreSQL job store's schema version ", version,
                                                           " is newer than this ganserve understands (", target,
                                                           "); run a newer ganserve or another database")));
  }
  for (int i = version; i < target; ++i) {
    if (auto r = step(kMigrations[i]); !r.ok()) {
      return fail(absl::InternalError(absl::StrCat("job store migration ", i + 1, " failed: ", r.status().message())));
    }
  }
  if (auto r = step(version == 0 ? "INSERT INTO ganserve_schema (version) VALUES ($1)"
                                 : "UPDATE ganserve_schema SET version = $1",
                    {Int(target)});
      !r.ok()) {
    return fail(r.status());
  }
  return Exec("COMMIT").status();
}

absl::Status PostgresJobStore::CreateJob(const JobRecord& j) {
  absl::MutexLock lock(&mu_);
  auto r = Exec(
      absl::StrCat("INSERT INTO jobs (", kJobColumns,
                   ") VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19,$20,$21,$22,$23)"),
      {Text(j.id),
       Int(static_cast<int64_t>(j.kind)),
       Int(static_cast<int64_t>(j.state)),
       NullableText(j.request_id),
       Text(j.request_hash),
       Text(j.model),
       Bytes(j.request),
       Int(j.step),
       Int(j.total_steps),
       Text(LossesToJson(j.losses)),
       Text(absl::StrCat(j.eta_seconds)),
       Int(j.create_time_ms),
       Int(j.start_time_ms),
       Int(j.end_time_ms),
       Text(j.result),
       Int(j.error_code),
       Text(j.error_message),
       Text(j.cancel_requested ? "true" : "false"),
       Int(j.last_seq),
       Int(j.max_run_seconds),
       Int(j.preview_every),
       Text(j.request_encoding),
       Int(j.priority)});
  if (absl::IsAlreadyExists(r.status())) {
    return absl::AlreadyExistsError(
        absl::StrCat("a job with id ", j.id, " or request_id '", j.request_id, "' already exists"));
  }
  return r.status();
}

absl::StatusOr<std::vector<JobRecord>> PostgresJobStore::Query(const std::string& where_sql,
                                                               const std::vector<Param>& params) {
  ASSIGN_OR_RETURN(auto rows, Exec(absl::StrCat("SELECT ", ReadColumns(), " FROM jobs ", where_sql), params));
  return Records(*rows);
}

std::vector<JobRecord> PostgresJobStore::Records(const Rows& rows) {
  std::vector<JobRecord> out;
  out.reserve(static_cast<size_t>(rows.count()));
  for (int i = 0; i < rows.count(); ++i) out.push_back(rows.Job(i));
  return out;
}

absl::StatusOr<JobRecord> PostgresJobStore::GetJob(const std::string& id) {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(auto rows, Query("WHERE id = $1", {Text(id)}));
  if (rows.empty()) return absl::NotFoundError(absl::StrCat("no job with id '", id, "'"));
  return rows[0];
}

absl::StatusOr<std::optional<JobRecord>> PostgresJobStore::FindByRequestId(const std::string& request_id) {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(auto rows, Query("WHERE request_id = $1", {Text(request_id)}));
  if (rows.empty()) return std::optional<JobRecord>();
  return std::optional<JobRecord>(rows[0]);
}

absl::Status PostgresJobStore::UpdateLocked(const JobRecord& j) {
  ASSIGN_OR_RETURN(auto rows, Exec("UPDATE jobs SET state=$1, step=$2, total_steps=$3, losses=$4, eta_seconds=$5, "
                                   "start_time_ms=$6, end_time_ms=$7, result=$8, error_code=$9, error_message=$10, "
                                   "cancel_requested=(cancel_requested OR $11::BOOLEAN), last_seq=$12, checkpoint=$15 "
                                   "WHERE id=$13 AND lease_epoch = $14::BIGINT RETURNING id",
                                   {Int(static_cast<int64_t>(j.state)), Int(j.step), Int(j.total_steps),
                                    Text(LossesToJson(j.losses)), Text(absl::StrCat(j.eta_seconds)),
                                    Int(j.start_time_ms), Int(j.end_time_ms), Text(j.result), Int(j.error_code),
                                    Text(j.error_message), Text(j.cancel_requested ? "true" : "false"), Int(j.last_seq),
                                    Text(j.id), Int(j.lease_epoch), Text(j.checkpoint)}));
  if (rows->count() == 0) return Missing(j.id, j.lease_epoch);
  return absl::OkStatus();
}

absl::Status PostgresJobStore::Missing(const std::string& id, int64_t epoch) {
  ASSIGN_OR_RETURN(auto rows, Exec("SELECT 1 FROM jobs WHERE id = $1", {Text(id)}));
  if (rows->count() > 0) return LeaseLost(id, epoch);
  return absl::NotFoundError(absl::StrCat("no job with id '", id, "'"));
}

absl::StatusOr<std::optional<JobRecord>> PostgresJobStore::ClaimNext(const std::string& worker, double lease_seconds,
                                                                     const std::vector<JobKind>& kinds) {
  absl::MutexLock lock(&mu_);
  // The row lock of the subquery, skipping rows other claimers hold, makes each claim
  // take a different job.
  ASSIGN_OR_RETURN(
      auto rows,
      Exec(absl::StrCat("UPDATE jobs SET state = 2, lease_epoch = lease_epoch + 1, attempt = attempt + 1, "
                        "worker = $1, lease_expires_ms = ",
                        kNowMs, " + $2::BIGINT WHERE id = (SELECT id FROM jobs WHERE state = 1 AND run_after_ms <= ",
                        kNowMs, KindFilterSql(kinds), " ORDER BY ", kClaimOrderSql,
                        " LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING ", ReadColumns()),
           {Text(worker), Int(static_cast<int64_t>(lease_seconds * 1000))}));
  if (rows->count() == 0) return std::optional<JobRecord>();
  return std::optional<JobRecord>(rows->Job(0));
}

absl::StatusOr<JobRecord> PostgresJobStore::Heartbeat(const std::string& id, int64_t epoch, double lease_seconds) {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(auto rows,
                   Exec(absl::StrCat("UPDATE jobs SET lease_expires_ms = ", kNowMs,
                                     " + $3::BIGINT WHERE id = $1 AND lease_epoch = $2::BIGINT AND state = 2 "
                                     "RETURNING ",
                                     ReadColumns()),
                        {Text(id), Int(epoch), Int(static_cast<int64_t>(lease_seconds * 1000))}));
  if (rows->count() == 0) return Missing(id, epoch);
  return rows->Job(0);
}

absl::StatusOr<JobRecord> PostgresJobStore::RequestCancel(const std::string& id) {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(auto rows, Exec(absl::StrCat("UPDATE jobs SET cancel_requested = TRUE, end_time_ms = CASE WHEN "
                                                "state = 1 THEN ",
                                                kNowMs,
                                                " ELSE end_time_ms END, state = CASE WHEN state = 1 THEN 5 ELSE "
                                                "state END WHERE id = $1 AND state IN (1, 2) RETURNING ",
                                                ReadColumns()),
                                   {Text(id)}));
  if (rows->count() > 0) return rows->Job(0);
  ASSIGN_OR_RETURN(auto found, Query("WHERE id = $1", {Text(id)}));
  if (found.empty()) return absl::NotFoundError(absl::StrCat("no job with id '", id, "'"));
  return found[0];
}

absl::StatusOr<std::vector<JobRecord>> PostgresJobStore::ReapExpiredLeases(int max_attempts, double backoff_seconds) {
  absl::MutexLock lock(&mu_);
  RETURN_IF_ERROR(Exec("BEGIN").status());
  auto fail = [&](absl::Status s) {
    (void)Exec("ROLLBACK");
    return s;
  };
  auto turn = Exec("SELECT pg_try_advisory_xact_lock($1)", {Int(kReaperLock)});
  if (!turn.ok()) return fail(turn.status());
  if ((*turn)->Text(0, 0) != "t") {  // another replica is reaping
    (void)Exec("ROLLBACK");
    return std::vector<JobRecord>();
  }
  const std::string give_up = "attempt >= $1::INTEGER";
  auto rows = Exec(
      absl::StrCat("UPDATE jobs SET lease_epoch = lease_epoch + 1, worker = '', lease_expires_ms = 0, state = CASE "
                   "WHEN ",
                   give_up, " THEN 4 ELSE 1 END, run_after_ms = CASE WHEN ", give_up, " THEN run_after_ms ELSE ",
                   kNowMs, " + $2::BIGINT * (1 << LEAST(GREATEST(attempt - 1, 0), ", kLeaseBackoffMaxShift,
                   ")) END, end_time_ms = CASE WHEN ", give_up, " THEN ", kNowMs,
                   " ELSE end_time_ms END, error_code = CASE WHEN ", give_up,
                   " THEN 10 ELSE error_code END, error_message = CASE WHEN ", give_up,
                   " THEN $3 ELSE error_message END WHERE state = 2 AND lease_expires_ms > 0 AND lease_expires_ms < ",
                   kNowMs, " RETURNING ", ReadColumns()),
      {Int(max_attempts), Int(static_cast<int64_t>(backoff_seconds * 1000)), Text(kLeaseAttemptsExhausted)});
  if (!rows.ok()) return fail(rows.status());
  std::vector<JobRecord> out = Records(**rows);
  RETURN_IF_ERROR(Exec("COMMIT").status());
  return out;
}

absl::Status PostgresJobStore::UpdateJob(const JobRecord& j) {
  absl::MutexLock lock(&mu_);
  return UpdateLocked(j);
}

absl::Status PostgresJobStore::RewriteRequest(const std::string& id, const std::string& request,
                                              const std::string& encoding) {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(auto rows, Exec("UPDATE jobs SET request=$1, request_encoding=$2 WHERE id=$3 RETURNING id",
                                   {Bytes(request), Text(encoding), Text(id)}));
  if (rows->count() == 0) return absl::NotFoundError(absl::StrCat("no job with id '", id, "'"));
  return absl::OkStatus();
}

absl::StatusOr<ListJobsPage> PostgresJobStore::ListJobs(const ListJobsQuery& q) {
  std::string where = "WHERE TRUE";
  std::vector<Param> params;
  if (q.kind != JobKind::kUnspecified) absl::StrAppend(&where, " AND kind = ", static_cast<int>(q.kind));
  if (q.state != JobState::kUnspecified) absl::StrAppend(&where, " AND state = ", static_cast<int>(q.state));
  ASSIGN_OR_RETURN(std::optional<PageKey> after, ParsePageToken(q.page_token));
  if (after) {
    absl::StrAppend(&where, " AND (create_time_ms, id) < ($1, $2)");
    params = {Int(after->create_time_ms), Text(after->id)};
  }
  absl::StrAppend(&where, " ORDER BY create_time_ms DESC, id DESC LIMIT ", q.page_size + 1);
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(std::vector<JobRecord> rows, Query(where, params));
  return MakePage(std::move(rows), q.page_size);
}

absl::StatusOr<std::vector<JobRecord>> PostgresJobStore::ListRequestsNotEncodedAs(const std::string& encoding) {
  absl::MutexLock lock(&mu_);
  return Query("WHERE request_encoding <> $1 ORDER BY create_time_ms ASC, id ASC", {Text(encoding)});
}

absl::StatusOr<std::vector<JobRecord>> PostgresJobStore::ListUnfinished() {
  absl::MutexLock lock(&mu_);
  return Query(absl::StrCat("WHERE state IN (", static_cast<int>(JobState::kQueued), ",",
                            static_cast<int>(JobState::kRunning), ") ORDER BY create_time_ms ASC, id ASC"),
               {});
}

absl::StatusOr<int64_t> PostgresJobStore::AppendEvent(JobRecord& job, const std::string& type,
                                                      const std::string& payload, int64_t time_ms) {
  absl::MutexLock lock(&mu_);
  RETURN_IF_ERROR(Exec("BEGIN").status());
  auto fail = [&](absl::Status s) {
    (void)Exec("ROLLBACK");
    return s;
  };
  // The row lock orders concurrent writers: seqs are gapless and commit in order.
  auto cur = Exec("SELECT last_seq, lease_epoch FROM jobs WHERE id = $1 FOR UPDATE", {Text(job.id)});
  if (!cur.ok()) return fail(cur.status());
  if ((*cur)->count() == 0) return fail(absl::NotFoundError(absl::StrCat("no job with id '", job.id, "'")));
  if ((*cur)->Int(0, 1) != job.lease_epoch) return fail(LeaseLost(job.id, job.lease_epoch));
  const int64_t seq = (*cur)->Int(0, 0) + 1;
  if (auto r = Exec("INSERT INTO job_events (job_id, seq, time_ms, type, payload) VALUES ($1,$2,$3,$4,$5)",
                    {Text(job.id), Int(seq), Int(time_ms), Text(type), Bytes(payload)});
      !r.ok()) {
    return fail(r.status());
  }
  const int64_t before = job.last_seq;
  job.last_seq = seq;
  if (absl::Status s = UpdateLocked(job); !s.ok()) {
    job.last_seq = before;
    return fail(s);
  }
  if (auto r = Exec("COMMIT"); !r.ok()) {
    job.last_seq = before;
    return r.status();
  }
  return seq;
}

absl::StatusOr<std::vector<JobEventRecord>> PostgresJobStore::ListEvents(const std::string& job_id, int64_t after_seq,
                                                                         int limit) {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(auto rows, Exec("SELECT seq, time_ms, type, payload FROM job_events WHERE job_id = $1 AND seq > $2 "
                                   "ORDER BY seq LIMIT $3",
                                   {Text(job_id), Int(after_seq), Int(limit)}));
  std::vector<JobEventRecord> out;
  out.reserve(static_cast<size_t>(rows->count()));
  for (int i = 0; i < rows->count(); ++i) {
    out.push_back({rows->Int(i, 0), rows->Int(i, 1), rows->Text(i, 2), rows->Bytea(i, 3)});
  }
  return out;
}

absl::StatusOr<PruneStats> PostgresJobStore::PruneEvents(int64_t ended_before_ms) {
  absl::MutexLock lock(&mu_);
  // One statement deletes and measures: events below each finished job's newest.
  ASSIGN_OR_RETURN(
      auto rows,
      Exec(absl::StrCat("WITH gone AS (DELETE FROM job_events e USING jobs j WHERE e.job_id = j.id AND j.state IN (",
                        static_cast<int>(JobState::kSucceeded), ",", static_cast<int>(JobState::kFailed), ",",
                        static_cast<int>(JobState::kCancelled),
                        ") AND j.end_time_ms > 0 AND j.end_time_ms < $1 AND e.seq < j.last_seq "
                        "RETURNING e.job_id, COALESCE(octet_length(e.payload), 0) AS bytes) "
                        "SELECT COUNT(DISTINCT job_id), COUNT(*), COALESCE(SUM(bytes), 0) FROM gone"),
           {Int(ended_before_ms)}));
  PruneStats out;
  out.jobs = rows->Int(0, 0);
  out.events = rows->Int(0, 1);
  out.bytes = rows->Int(0, 2);
  return out;
}

absl::StatusOr<int64_t> PostgresJobStore::FirstSeq(const std::string& job_id) {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(auto rows, Exec("SELECT COALESCE(MIN(seq), 0) FROM job_events WHERE job_id = $1", {Text(job_id)}));
  return rows->Int(0, 0);
}

absl::StatusOr<int64_t> PostgresJobStore::CountQueued() {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(auto rows, Exec("SELECT COUNT(*) FROM jobs WHERE state = 1"));
  return rows->Int(0, 0);
}

absl::StatusOr<int64_t> PostgresJobStore::CountQueuedBefore(const JobRecord& job) {
  absl::MutexLock lock(&mu_);
  // kClaimOrderSql as a row comparison.
  ASSIGN_OR_RETURN(auto rows, Exec("SELECT COUNT(*) FROM jobs WHERE state = 1 AND (-priority, create_time_ms, id) < "
                                   "(-$1::INTEGER, $2::BIGINT, $3)",
                                   {Int(job.priority), Int(job.create_time_ms), Text(job.id)}));
  return rows->Int(0, 0);
}

}  // namespace ganserve::core
