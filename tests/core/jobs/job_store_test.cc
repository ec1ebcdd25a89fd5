// One contract, two job stores: SQLite (always) and PostgreSQL when
// GANSERVE_TEST_POSTGRES holds a connection string ("postgresql://" = the PG* environment;
// tests/jobs/postgres_test.sh starts a throwaway cluster and sets it). Each PostgreSQL
// test starts from an empty schema.
#include <gtest/gtest.h>
#include <libpq-fe.h>
#include <sqlite3.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "core/jobs/postgres_job_store.h"
#include "core/jobs/retention.h"
#include "core/jobs/sqlite_job_store.h"

namespace ganserve::core {
namespace {

// Runs one SQL statement on the test database (PostgreSQL only).
void PostgresExec(const std::string& sql) {
  PGconn* c = PQconnectdb(std::getenv("GANSERVE_TEST_POSTGRES") == std::string("postgresql://")
                              ? ""
                              : std::getenv("GANSERVE_TEST_POSTGRES"));
  ASSERT_EQ(PQstatus(c), CONNECTION_OK) << PQerrorMessage(c);
  PGresult* r = PQexec(c, sql.c_str());
  EXPECT_TRUE(PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK) << PQerrorMessage(c);
  PQclear(r);
  PQfinish(c);
}

class JobStoreContract : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::path(::testing::TempDir()) /
           ("jobstore_" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    path_ = (dir_ / "jobs.db").string();
    if (GetParam() == "postgres") {
      if (std::getenv("GANSERVE_TEST_POSTGRES") == nullptr) {
        GTEST_SKIP() << "GANSERVE_TEST_POSTGRES not set (tests/jobs/postgres_test.sh sets it)";
      }
      PostgresExec("DROP TABLE IF EXISTS job_events, jobs, ganserve_schema CASCADE");
    }
    store_ = Reopen();
    ASSERT_NE(store_, nullptr);
  }
  // A new store on the same database (the old one closed first by the caller).
  std::unique_ptr<JobStore> Reopen() {
    if (GetParam() == "postgres") {
      auto s = PostgresJobStore::Open(std::getenv("GANSERVE_TEST_POSTGRES"));
      EXPECT_TRUE(s.ok()) << s.status();
      return s.ok() ? std::unique_ptr<JobStore>(std::move(*s)) : nullptr;
    }
    auto s = SqliteJobStore::Open(path_);
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? std::unique_ptr<JobStore>(std::move(*s)) : nullptr;
  }
  // Runs one SQL statement on the store's database, whichever it is.
  void PostgresOrSqlite(const std::string& sql) {
    if (GetParam() == "postgres") {
      PostgresExec(sql);
      return;
    }
    sqlite3* db;
    ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    EXPECT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr), SQLITE_OK) << sqlite3_errmsg(db);
    sqlite3_close(db);
  }
  JobRecord Job(const std::string& id, int64_t t, JobKind kind = JobKind::kAdapt) {
    JobRecord j;
    j.id = id;
    j.kind = kind;
    j.model = "ffhq";
    j.create_time_ms = t;
    j.request = std::string("\0\1binary", 8);
    return j;
  }
  std::filesystem::path dir_;
  std::string path_;
  std::unique_ptr<JobStore> store_;
};

TEST_P(JobStoreContract, CreateGetUpdate) {
  JobRecord j = Job("job-1", 1000);
  j.request_id = "req-a";
  j.losses = {{"clip", 0.5f}};
  ASSERT_TRUE(store_->CreateJob(j).ok());
  auto got = store_->GetJob("job-1");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->request, j.request);
  EXPECT_EQ(got->losses.at("clip"), 0.5f);
  EXPECT_EQ(got->state, JobState::kQueued);
  got->state = JobState::kFailed;
  got->error_code = 9;
  got->error_message = "model vanished";
  ASSERT_TRUE(store_->UpdateJob(*got).ok());
  auto again = store_->GetJob("job-1");
  EXPECT_EQ(again->state, JobState::kFailed);
  EXPECT_EQ(again->error_message, "model vanished");
  EXPECT_EQ(store_->GetJob("nope").status().code(), absl::StatusCode::kNotFound);
  JobRecord missing = Job("nope", 1);
  EXPECT_EQ(store_->UpdateJob(missing).code(), absl::StatusCode::kNotFound);
}

TEST_P(JobStoreContract, IdempotencyKeysAreUnique) {
  JobRecord a = Job("job-a", 1);
  a.request_id = "same";
  JobRecord b = Job("job-b", 2);
  b.request_id = "same";
  ASSERT_TRUE(store_->CreateJob(a).ok());
  EXPECT_EQ(store_->CreateJob(b).code(), absl::StatusCode::kAlreadyExists);
  auto found = store_->FindByRequestId("same");
  ASSERT_TRUE(found.ok());
  ASSERT_TRUE(found->has_value());
  EXPECT_EQ((*found)->id, "job-a");
  // Empty request ids never collide.
  ASSERT_TRUE(store_->CreateJob(Job("job-c", 3)).ok());
  ASSERT_TRUE(store_->CreateJob(Job("job-d", 4)).ok());
}

TEST_P(JobStoreContract, PagingFilteringNewestFirst) {
  for (int i = 0; i < 7; ++i) {
    ASSERT_TRUE(
        store_->CreateJob(Job("job-" + std::to_string(i), 100 + i / 2, i % 3 == 0 ? JobKind::kInvert : JobKind::kAdapt))
            .ok());
  }
  ListJobsQuery q;
  q.page_size = 3;
  std::vector<std::string> seen;
  for (int pages = 0; pages < 5; ++pages) {
    auto page = store_->ListJobs(q);
    ASSERT_TRUE(page.ok()) << page.status();
    for (const auto& j : page->jobs) seen.push_back(j.id);
    if (page->next_page_token.empty()) break;
    q.page_token = page->next_page_token;
  }
  EXPECT_EQ(seen, (std::vector<std::string>{"job-6", "job-5", "job-4", "job-3", "job-2", "job-1", "job-0"}));
  ListJobsQuery inv;
  inv.kind = JobKind::kInvert;
  auto page = store_->ListJobs(inv);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page->jobs.size(), 3u);
  ListJobsQuery bad;
  bad.page_token = "garbage";
  EXPECT_EQ(store_->ListJobs(bad).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_P(JobStoreContract, EventsAreSequencedAndSurviveReopen) {
  JobRecord j = Job("job-e", 5);
  ASSERT_TRUE(store_->CreateJob(j).ok());
  for (int i = 1; i <= 5; ++i) {
    j.step = i;
    auto seq = store_->AppendEvent(j, "progress", "payload-" + std::to_string(i), 1000 + i);
    ASSERT_TRUE(seq.ok()) << seq.status();
    EXPECT_EQ(*seq, i);
    EXPECT_EQ(j.last_seq, i);
  }
  store_.reset();
  std::unique_ptr<JobStore> reopened = Reopen();
  ASSERT_NE(reopened, nullptr);
  auto events = reopened->ListEvents("job-e", 2, 100);
  ASSERT_TRUE(events.ok());
  ASSERT_EQ(events->size(), 3u);
  EXPECT_EQ((*events)[0].seq, 3);
  EXPECT_EQ((*events)[2].payload, "payload-5");
  auto job = reopened->GetJob("job-e");
  EXPECT_EQ(job->step, 5);
  EXPECT_EQ(job->last_seq, 5);
  EXPECT_EQ(*reopened->FirstSeq("job-e"), 1);
  JobRecord ghost = Job("ghost", 1);
  EXPECT_EQ(reopened->AppendEvent(ghost, "state", "", 1).status().code(), absl::StatusCode::kNotFound);
}

TEST_P(JobStoreContract, UnfinishedJobsForRecovery) {
  JobRecord a = Job("a", 1), b = Job("b", 2), c = Job("c", 3);
  b.state = JobState::kRunning;
  c.state = JobState::kSucceeded;
  for (auto* j : {&a, &b, &c}) ASSERT_TRUE(store_->CreateJob(*j).ok());
  auto open = store_->ListUnfinished();
  ASSERT_TRUE(open.ok());
  ASSERT_EQ(open->size(), 2u);
  EXPECT_EQ((*open)[0].id, "a");
  EXPECT_EQ((*open)[1].id, "b");
}

TEST_P(JobStoreContract, RequestsInAnotherEncodingAreListedAndRewritten) {
  JobRecord a = Job("a", 1), b = Job("b", 2), c = Job("c", 3);
  a.request_encoding = "old";
  b.request_encoding = "new";
  c.request_encoding = "old";
  for (auto* j : {&a, &b, &c}) ASSERT_TRUE(store_->CreateJob(*j).ok());
  auto old = store_->ListRequestsNotEncodedAs("new");
  ASSERT_TRUE(old.ok()) << old.status();
  ASSERT_EQ(old->size(), 2u);
  EXPECT_EQ((*old)[0].id, "a");
  EXPECT_EQ((*old)[1].id, "c");
  ASSERT_TRUE(store_->RewriteRequest("a", "{}", "new").ok());
  EXPECT_EQ(store_->RewriteRequest("ghost", "{}", "new").code(), absl::StatusCode::kNotFound);
  auto job = store_->GetJob("a");
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(job->request, "{}");
  EXPECT_EQ(job->request_encoding, "new");
  EXPECT_EQ(store_->ListRequestsNotEncodedAs("new")->size(), 1u);
}

// Retention: events of finished jobs that ended before the cutoff go, each job's newest
// (terminal) event stays; running jobs and recently ended ones keep everything; the
// freed pages are reused, so a store that is filled and pruned in rounds stays bounded.
TEST_P(JobStoreContract, PruneKeepsTerminalEventsAndTheFileBounded) {
  const std::string preview(20000, 'p');       // ~ a preview grid's PNG
  const bool sqlite = GetParam() == "sqlite";  // the file-size bound is SQLite's
  auto file_bytes = [&]() -> uintmax_t {
    if (!sqlite) return 0;
    uintmax_t n = std::filesystem::file_size(path_);
    if (std::filesystem::exists(path_ + "-wal")) n += std::filesystem::file_size(path_ + "-wal");
    return n;
  };
  uintmax_t after_second = 0;
  for (int round = 0; round < 5; ++round) {
    for (int i = 0; i < 20; ++i) {
      JobRecord j = Job("job-" + std::to_string(round) + "-" + std::to_string(i), 1000);
      ASSERT_TRUE(store_->CreateJob(j).ok());
      for (int e = 0; e < 9; ++e) ASSERT_TRUE(store_->AppendEvent(j, "preview", preview, 1000 + e).ok());
      j.state = JobState::kSucceeded;
      j.end_time_ms = 10000 + round;
      ASSERT_TRUE(store_->AppendEvent(j, "state", "done", 2000).ok());
    }
    auto pruned = store_->PruneEvents(10000 + round + 1);
    ASSERT_TRUE(pruned.ok()) << pruned.status();
    EXPECT_EQ(pruned->jobs, 20);
    EXPECT_EQ(pruned->events, 20 * 9);
    EXPECT_EQ(pruned->bytes, 20 * 9 * static_cast<int64_t>(preview.size()));
    // After the first round the WAL has been checkpointed into the file once: the
    // steady state, from which later rounds reuse the freed pages.
    if (round == 1) after_second = file_bytes();
  }
  // Five rounds of 3.6 MB of previews each (18 MB without pruning): the database and its
  // WAL stay at the size they reached after two.
  EXPECT_LE(file_bytes(), after_second + after_second / 10) << "after two rounds " << after_second;

  auto job = store_->GetJob("job-4-7");
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(job->state, JobState::kSucceeded);
  EXPECT_EQ(*store_->FirstSeq(job->id), job->last_seq);
  auto events = store_->ListEvents(job->id, 0, 100);
  ASSERT_TRUE(events.ok());
  ASSERT_EQ(events->size(), 1u);
  EXPECT_EQ((*events)[0].payload, "done");

  // A running job and a job that ended after the cutoff keep every event; a second pass
  // finds nothing.
  JobRecord running = Job("job-running", 1000);
  ASSERT_TRUE(store_->CreateJob(running).ok());
  running.state = JobState::kRunning;
  JobRecord recent = Job("job-recent", 1000);
  ASSERT_TRUE(store_->CreateJob(recent).ok());
  for (int e = 0; e < 3; ++e) {
    ASSERT_TRUE(store_->AppendEvent(running, "preview", preview, 1000).ok());
    ASSERT_TRUE(store_->AppendEvent(recent, "preview", preview, 1000).ok());
  }
  recent.state = JobState::kFailed;
  recent.end_time_ms = 50000;
  ASSERT_TRUE(store_->UpdateJob(recent).ok());
  auto again = store_->PruneEvents(20000);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->events, 0);
  EXPECT_EQ(store_->ListEvents("job-running", 0, 100)->size(), 3u);
  EXPECT_EQ(store_->ListEvents("job-recent", 0, 100)->size(), 3u);
}

// A retention pass: events past the retention period, and the checkpoints of finished or
// unknown jobs (never those of queued or running ones).
TEST_P(JobStoreContract, RetentionPassPrunesEventsAndUnneededCheckpoints) {
  const int64_t hour_ms = 3600 * 1000;
  const int64_t now_ms = 1000 * hour_ms;
  JobRecord old_job = Job("job-old", 1), fresh = Job("job-fresh", 1), running = Job("job-running", 1);
  for (JobRecord* j : {&old_job, &fresh, &running}) {
    ASSERT_TRUE(store_->CreateJob(*j).ok());
    for (int e = 0; e < 4; ++e) ASSERT_TRUE(store_->AppendEvent(*j, "preview", std::string(100, 'x'), 1).ok());
  }
  old_job.state = JobState::kFailed;
  old_job.end_time_ms = now_ms - 200 * hour_ms;  // past 168 h
  fresh.state = JobState::kSucceeded;
  fresh.end_time_ms = now_ms - 100 * hour_ms;
  running.state = JobState::kRunning;
  for (JobRecord* j : {&old_job, &fresh, &running}) ASSERT_TRUE(store_->UpdateJob(*j).ok());
  const std::filesystem::path ckpt = dir_ / "checkpoints";
  std::filesystem::create_directories(ckpt);
  for (const char* id : {"job-old", "job-fresh", "job-running", "job-unknown"}) {
    std::ofstream(ckpt / (std::string(id) + ".ckpt.safetensors")) << std::string(1000, 'c');
  }
  std::ofstream(ckpt / "notes.txt") << "not a checkpoint";

  RetentionOptions opt;  // the defaults: 168 h
  auto stats = RunRetentionPass(*store_, ckpt.string(), now_ms, opt);
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->events.jobs, 1);
  EXPECT_EQ(stats->events.events, 3);
  EXPECT_EQ(stats->events.bytes, 300);
  EXPECT_EQ(stats->checkpoint_files, 3);
  EXPECT_EQ(stats->checkpoint_bytes, 3000);
  EXPECT_EQ(store_->ListEvents("job-old", 0, 10)->size(), 1u);
  EXPECT_EQ(store_->ListEvents("job-fresh", 0, 10)->size(), 4u);
  EXPECT_TRUE(std::filesystem::exists(ckpt / "job-running.ckpt.safetensors"));
  EXPECT_FALSE(std::filesystem::exists(ckpt / "job-fresh.ckpt.safetensors"));
  EXPECT_TRUE(std::filesystem::exists(ckpt / "notes.txt"));

  // 0 keeps events forever; a missing checkpoint folder is no error.
  opt.job_retention_hours = 0;
  auto none = RunRetentionPass(*store_, (dir_ / "absent").string(), now_ms + 1000 * hour_ms, opt);
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_EQ(none->events.events, 0);
}

TEST_P(JobStoreContract, RefusesNewerSchema) {
  store_.reset();
  absl::Status st;
  if (GetParam() == "postgres") {
    PostgresExec("UPDATE ganserve_schema SET version = 99");
    st = PostgresJobStore::Open(std::getenv("GANSERVE_TEST_POSTGRES")).status();
  } else {
    sqlite3* db;
    ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db, "PRAGMA user_version=99", nullptr, nullptr, nullptr), SQLITE_OK);
    sqlite3_close(db);
    st = SqliteJobStore::Open(path_).status();
  }
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(st.message().find("99"), std::string::npos) << st;
}

// Replicas starting together: each migrates under the advisory lock, once.
TEST_P(JobStoreContract, ConcurrentOpensMigrateOnce) {
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&] {
      if (Reopen() != nullptr) ++ok;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 4);
  ASSERT_TRUE(store_ == nullptr || store_->CreateJob(Job("after", 1)).ok());
}

// Claims take queued jobs oldest first, one claim per job, with the fencing epoch, the
// attempt and the holder set; a kind filter leaves other kinds queued.
TEST_P(JobStoreContract, ClaimsTakeQueuedJobsOnceOldestFirst) {
  ASSERT_TRUE(store_->CreateJob(Job("c", 3000)).ok());
  ASSERT_TRUE(store_->CreateJob(Job("a", 1000)).ok());
  ASSERT_TRUE(store_->CreateJob(Job("b", 2000, JobKind::kInvert)).ok());
  JobRecord done = Job("old", 500);
  done.state = JobState::kSucceeded;
  ASSERT_TRUE(store_->CreateJob(done).ok());
  EXPECT_EQ(*store_->CountQueued(), 3);
  // Queue positions: older queued jobs come first; finished ones do not count.
  EXPECT_EQ(*store_->CountQueuedBefore(Job("a", 1000)), 0);
  EXPECT_EQ(*store_->CountQueuedBefore(Job("b", 2000)), 1);
  EXPECT_EQ(*store_->CountQueuedBefore(Job("c", 3000)), 2);
  EXPECT_EQ(*store_->CountQueuedBefore(Job("a0", 2000)), 1) << "same time: by id";
  auto inv = store_->ClaimNext("w1", 60, {JobKind::kInvert});
  ASSERT_TRUE(inv.ok()) << inv.status();
  ASSERT_TRUE(inv->has_value());
  EXPECT_EQ((*inv)->id, "b");
  EXPECT_EQ(*store_->CountQueuedBefore(Job("c", 3000)), 1) << "a claimed job leaves the queue";
  std::vector<std::string> order;
  for (;;) {
    auto c = store_->ClaimNext("w2", 60, {});
    ASSERT_TRUE(c.ok()) << c.status();
    if (!c->has_value()) break;
    const JobRecord& j = **c;
    order.push_back(j.id);
    EXPECT_EQ(j.state, JobState::kRunning);
    EXPECT_EQ(j.lease_epoch, 1);
    EXPECT_EQ(j.attempt, 1);
    EXPECT_EQ(j.worker, "w2");
    EXPECT_GT(j.lease_expires_ms, 0);
    EXPECT_EQ(j.request, std::string("\0\1binary", 8));
  }
  EXPECT_EQ(order, (std::vector<std::string>{"a", "c"}));
  EXPECT_EQ(*store_->CountQueued(), 0);
  auto stored = store_->GetJob("a");
  ASSERT_TRUE(stored.ok());
  EXPECT_EQ(stored->worker, "w2");
  EXPECT_EQ(stored->lease_epoch, 1);
}

// Higher priorities are claimed first, whatever their age; equal ones oldest first.
TEST_P(JobStoreContract, ClaimsTakeHigherPrioritiesFirst) {
  JobRecord low = Job("low", 500);
  low.priority = -3;
  for (JobRecord j : {Job("old", 1000), Job("new", 3000), low}) ASSERT_TRUE(store_->CreateJob(j).ok());
  JobRecord urgent = Job("urgent", 4000);
  urgent.priority = 5;
  ASSERT_TRUE(store_->CreateJob(urgent).ok());
  EXPECT_EQ(store_->GetJob("urgent")->priority, 5);
  EXPECT_EQ(*store_->CountQueuedBefore(urgent), 0);
  EXPECT_EQ(*store_->CountQueuedBefore(Job("old", 1000)), 1);
  EXPECT_EQ(*store_->CountQueuedBefore(Job("new", 3000)), 2);
  EXPECT_EQ(*store_->CountQueuedBefore(low), 3) << "the oldest, but the lowest priority";
  std::vector<std::string> order;
  for (;;) {
    auto c = store_->ClaimNext("w", 60, {});
    ASSERT_TRUE(c.ok()) << c.status();
    if (!c->has_value()) break;
    order.push_back((*c)->id);
  }
  EXPECT_EQ(order, (std::vector<std::string>{"urgent", "old", "new", "low"}));
}

// A holder whose lease expired is fenced off: after the reap (and the next claim) its
// heartbeat, updates and events at the old epoch are refused and change nothing, while
// the new holder's land. Jobs run without a lease are never reaped.
TEST_P(JobStoreContract, AnExpiredLeaseFencesItsOldHolder) {
  ASSERT_TRUE(store_->CreateJob(Job("j", 1000)).ok());
  JobRecord unleased = Job("unleased", 2000);
  unleased.state = JobState::kRunning;
  ASSERT_TRUE(store_->CreateJob(unleased).ok());
  auto first = store_->ClaimNext("a", 0.05, {JobKind::kAdapt});
  ASSERT_TRUE(first.ok() && first->has_value());
  JobRecord mine = **first;
  EXPECT_EQ(mine.id, "j");
  mine.step = 3;
  mine.checkpoint = std::string(64, 'a');  // the digest of its checkpoint at step 3
  ASSERT_TRUE(store_->UpdateJob(mine).ok());
  ASSERT_TRUE(store_->AppendEvent(mine, "progress", "p1", 1).ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(150));
  auto reaped = store_->ReapExpiredLeases(3, 0);
  ASSERT_TRUE(reaped.ok()) << reaped.status();
  ASSERT_EQ(reaped->size(), 1u) << "only the leased job";
  EXPECT_EQ((*reaped)[0].id, "j");
  EXPECT_EQ((*reaped)[0].state, JobState::kQueued);
  EXPECT_EQ((*reaped)[0].worker, "");
  EXPECT_EQ((*reaped)[0].lease_epoch, 2);
  // Fenced at once, before anyone claims it again.
  mine.step = 4;
  mine.checkpoint = std::string(64, 'b');
  EXPECT_TRUE(IsLeaseLost(store_->UpdateJob(mine))) << store_->UpdateJob(mine);
  auto late = store_->Heartbeat("j", mine.lease_epoch, 60);
  EXPECT_TRUE(IsLeaseLost(late.status())) << late.status();
  auto second = store_->ClaimNext("b", 60, {});
  ASSERT_TRUE(second.ok() && second->has_value());
  JobRecord theirs = **second;
  EXPECT_EQ(theirs.id, "j");
  EXPECT_EQ(theirs.lease_epoch, 3);
  EXPECT_EQ(theirs.attempt, 2);
  EXPECT_EQ(theirs.step, 3) << "the new holder starts from what the old one stored";
  EXPECT_EQ(theirs.checkpoint, std::string(64, 'a')) << "and resumes from its checkpoint, not the fenced-off one";
  const int64_t seq_before = theirs.last_seq;
  auto stray = store_->AppendEvent(mine, "progress", "stray", 2);
  EXPECT_TRUE(IsLeaseLost(stray.status())) << stray.status();
  auto events = store_->ListEvents("j", 0, 10);
  ASSERT_TRUE(events.ok());
  ASSERT_EQ(events->size(), 1u) << "the stray event was not written";
  EXPECT_EQ((*events)[0].payload, "p1");
  theirs.step = 5;
  ASSERT_TRUE(store_->UpdateJob(theirs).ok());
  auto seq = store_->AppendEvent(theirs, "progress", "p2", 3);
  ASSERT_TRUE(seq.ok()) << seq.status();
  EXPECT_EQ(*seq, seq_before + 1);
  EXPECT_EQ(store_->GetJob("j")->step, 5);
  EXPECT_EQ(store_->GetJob("unleased")->state, JobState::kRunning);
  // Writes at epoch 0 (a server that runs every job itself, a job's submitter) land on
  // jobs never claimed, and only there: a submitter's late QUEUED write cannot turn a
  // claimed job back.
  JobRecord plain = *store_->GetJob("unleased");
  plain.step = 9;
  EXPECT_TRUE(store_->UpdateJob(plain).ok());
  JobRecord submitter = Job("j", 1000);
  EXPECT_TRUE(IsLeaseLost(store_->UpdateJob(submitter))) << store_->UpdateJob(submitter);
  EXPECT_TRUE(IsLeaseLost(store_->AppendEvent(submitter, "state", "queued", 4).status()));
  EXPECT_EQ(store_->GetJob("j")->state, JobState::kRunning);
  EXPECT_EQ(store_->Heartbeat("nope", 1, 60).status().code(), absl::StatusCode::kNotFound);
}

// Heartbeats keep a lease alive past its first expiry and carry a cancellation request
// made through the store (another replica's Cancel).
TEST_P(JobStoreContract, HeartbeatsKeepTheLeaseAndCarryCancellation) {
  ASSERT_TRUE(store_->CreateJob(Job("j", 1000)).ok());
  auto claim = store_->ClaimNext("a", 0.5, {});
  ASSERT_TRUE(claim.ok() && claim->has_value());
  const int64_t epoch = (*claim)->lease_epoch;
  for (int i = 0; i < 6; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(150));
    auto hb = store_->Heartbeat("j", epoch, 0.5);
    ASSERT_TRUE(hb.ok()) << hb.status();
    EXPECT_FALSE(hb->cancel_requested);
  }
  auto reaped = store_->ReapExpiredLeases(3, 0);
  ASSERT_TRUE(reaped.ok());
  EXPECT_TRUE(reaped->empty()) << "a renewed lease is not reaped";
  auto cancel = store_->RequestCancel("j");
  ASSERT_TRUE(cancel.ok()) << cancel.status();
  EXPECT_TRUE(cancel->cancel_requested);
  EXPECT_EQ(cancel->lease_epoch, epoch) << "a cancel request leaves the lease alone";
  auto hb = store_->Heartbeat("j", epoch, 0.5);
  ASSERT_TRUE(hb.ok()) << hb.status();
  EXPECT_TRUE(hb->cancel_requested);
  // The holder's next write does not clear the request.
  JobRecord holder = **claim;
  holder.step = 2;
  ASSERT_TRUE(store_->UpdateJob(holder).ok());
  EXPECT_TRUE(store_->GetJob("j")->cancel_requested);
  // A queued job ends CANCELLED at once: no claim can take it afterwards.
  ASSERT_TRUE(store_->CreateJob(Job("q", 2000)).ok());
  auto queued = store_->RequestCancel("q");
  ASSERT_TRUE(queued.ok()) << queued.status();
  EXPECT_EQ(queued->state, JobState::kCancelled);
  EXPECT_GT(queued->end_time_ms, 0);
  auto none = store_->ClaimNext("b", 60, {});
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
  auto again = store_->RequestCancel("q");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->end_time_ms, queued->end_time_ms) << "a finished job is left as it is";
  EXPECT_EQ(store_->RequestCancel("nope").status().code(), absl::StatusCode::kNotFound);
}

// A job whose holders keep vanishing is retried after a growing backoff, then failed
// with the reason once it has had max_attempts claims.
TEST_P(JobStoreContract, ExpiredLeasesRetryWithBackoffThenFail) {
  ASSERT_TRUE(store_->CreateJob(Job("j", 1000)).ok());
  auto expire = [&](const char* worker) {
    auto c = store_->ClaimNext(worker, 0.02, {});
    EXPECT_TRUE(c.ok() && c->has_value()) << worker;
    std::this_thread::sleep_for(std::chrono::milliseconds(60));
  };
  expire("a");
  auto r1 = store_->ReapExpiredLeases(2, 30);  // the next try after 30 s
  ASSERT_TRUE(r1.ok());
  ASSERT_EQ(r1->size(), 1u);
  EXPECT_EQ((*r1)[0].state, JobState::kQueued);
  auto early = store_->ClaimNext("b", 60, {});
  ASSERT_TRUE(early.ok());
  EXPECT_FALSE(early->has_value()) << "claimable only after the backoff";
  PostgresOrSqlite("UPDATE jobs SET run_after_ms = 0");
  expire("b");
  auto r2 = store_->ReapExpiredLeases(2, 30);
  ASSERT_TRUE(r2.ok());
  ASSERT_EQ(r2->size(), 1u);
  const JobRecord& failed = (*r2)[0];
  EXPECT_EQ(failed.state, JobState::kFailed);
  EXPECT_EQ(failed.attempt, 2);
  EXPECT_EQ(failed.error_code, 10);  // ABORTED
  EXPECT_NE(failed.error_message.find("max_attempts"), std::string::npos) << failed.error_message;
  EXPECT_GT(failed.end_time_ms, 0);
  auto none = store_->ClaimNext("c", 60, {});
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
}

// Replicas claiming at once, each on its own connection: every job is claimed exactly
// once.
TEST_P(JobStoreContract, ConcurrentClaimersTakeEachJobOnce) {
  constexpr int kJobs = 40;
  for (int i = 0; i < kJobs; ++i) ASSERT_TRUE(store_->CreateJob(Job("j" + std::to_string(100 + i), 1000 + i)).ok());
  std::vector<std::unique_ptr<JobStore>> replicas;
  for (int i = 0; i < 4; ++i) replicas.push_back(Reopen());
  absl::Mutex mu;
  std::map<std::string, int> claims;
  std::vector<std::thread> threads;
  for (int r = 0; r < 4; ++r) {
    threads.emplace_back([&, r] {
      for (;;) {
        auto c = replicas[r]->ClaimNext("r" + std::to_string(r), 60, {});
        ASSERT_TRUE(c.ok()) << c.status();
        if (!c->has_value()) return;
        absl::MutexLock lock(&mu);
        ++claims[(*c)->id];
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(claims.size(), static_cast<size_t>(kJobs));
  for (const auto& [id, n] : claims) EXPECT_EQ(n, 1) << id;
}

// The server dropping every connection (a restart, pg_terminate_backend): the next
// statement outside a transaction runs on a new connection instead of failing.
// Replicas hear at once of work to claim (LISTEN/NOTIFY on PostgreSQL): a job created
// or requeued; not of events (a busy job would wake every replica every step), and
// silence otherwise. SQLite announces nothing.
TEST_P(JobStoreContract, ChangesAreAnnouncedToOtherConnections) {
  if (!store_->announces_changes()) {
    EXPECT_FALSE(store_->AwaitChange(0.01));
    GTEST_SKIP() << "this store has no announcements (callers poll)";
  }
  std::unique_ptr<JobStore> other = Reopen();
  ASSERT_NE(other, nullptr);
  for (int i = 0; i < 10 && other->AwaitChange(0.05); ++i) {
  }  // the first call makes the link (and says so)
  EXPECT_FALSE(other->AwaitChange(0.2)) << "nothing happened";
  auto announced_within = [&](const std::function<void()>& change) {
    std::thread writer([&] {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      change();
    });
    const auto t0 = std::chrono::steady_clock::now();
    const bool heard = other->AwaitChange(10);
    writer.join();
    while (other->AwaitChange(0.05)) {
    }
    return heard ? std::chrono::steady_clock::now() - t0 : std::chrono::hours(1);
  };
  EXPECT_LT(announced_within([&] { ASSERT_TRUE(store_->CreateJob(Job("j", 1000)).ok()); }), std::chrono::seconds(5));
  JobRecord j = *store_->GetJob("j");
  ASSERT_TRUE(store_->AppendEvent(j, "state", "queued", 1).ok());
  EXPECT_FALSE(other->AwaitChange(0.3)) << "events are not announced";
  auto claimed = store_->ClaimNext("w", 0.05, {});
  ASSERT_TRUE(claimed.ok() && claimed->has_value());
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  while (other->AwaitChange(0.05)) {
  }
  EXPECT_LT(announced_within([&] { ASSERT_TRUE(store_->ReapExpiredLeases(3, 0).ok()); }), std::chrono::seconds(5))
      << "a requeued job is announced";
}

TEST_P(JobStoreContract, ADroppedConnectionIsReplaced) {
  if (GetParam() != "postgres") GTEST_SKIP() << "PostgreSQL connections only";
  ASSERT_TRUE(store_->CreateJob(Job("j", 1000)).ok());
  PostgresExec(
      "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND datname = "
      "current_database()");
  auto job = store_->GetJob("j");
  ASSERT_TRUE(job.ok()) << job.status();
  PostgresExec(
      "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND datname = "
      "current_database()");
  JobRecord j = *job;
  EXPECT_TRUE(store_->AppendEvent(j, "state", "after", 1).ok()) << "BEGIN on a new connection";
}

INSTANTIATE_TEST_SUITE_P(Stores, JobStoreContract, ::testing::Values("sqlite", "postgres"),
                         [](const ::testing::TestParamInfo<std::string>& p) { return p.param; });

}  // namespace
}  // namespace ganserve::core
