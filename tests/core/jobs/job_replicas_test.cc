// Replicas that share one job store and claim jobs under leases: three job engines in
// one process, each with its own store connection and executor, on one SQLite file (the
// same contract as PostgreSQL's; tests/jobs/postgres_test.sh runs the servers on
// PostgreSQL). Short leases keep the tests quick.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "core/jobs/job_engine.h"
#include "core/jobs/sqlite_job_store.h"
#include "core/storage/shared_files.h"

namespace ganserve::core {
namespace {

// The store of one replica, whose link to the database can be cut (every call then
// answers UNAVAILABLE, as a replica cut off from PostgreSQL sees it).
class CuttableStore : public JobStore {
 public:
  explicit CuttableStore(std::unique_ptr<JobStore> store) : store_(std::move(store)) {}
  std::atomic<bool> cut{false};

  absl::Status CreateJob(const JobRecord& job) override { return Up() ? store_->CreateJob(job) : Down(); }
  absl::StatusOr<JobRecord> GetJob(const std::string& id) override { return Up() ? store_->GetJob(id) : Down(); }
  absl::StatusOr<std::optional<JobRecord>> FindByRequestId(const std::string& r) override {
    return Up() ? store_->FindByRequestId(r) : Down();
  }
  absl::Status UpdateJob(const JobRecord& job) override { return Up() ? store_->UpdateJob(job) : Down(); }
  absl::Status RewriteRequest(const std::string& id, const std::string& r, const std::string& e) override {
    return Up() ? store_->RewriteRequest(id, r, e) : Down();
  }
  absl::StatusOr<ListJobsPage> ListJobs(const ListJobsQuery& q) override { return Up() ? store_->ListJobs(q) : Down(); }
  absl::StatusOr<std::vector<JobRecord>> ListUnfinished() override { return Up() ? store_->ListUnfinished() : Down(); }
  absl::StatusOr<std::vector<JobRecord>> ListRequestsNotEncodedAs(const std::string& e) override {
    return Up() ? store_->ListRequestsNotEncodedAs(e) : Down();
  }
  absl::StatusOr<int64_t> AppendEvent(JobRecord& job, const std::string& type, const std::string& payload,
                                      int64_t time_ms) override {
    return Up() ? store_->AppendEvent(job, type, payload, time_ms) : Down();
  }
  absl::StatusOr<std::vector<JobEventRecord>> ListEvents(const std::string& id, int64_t after, int limit) override {
    return Up() ? store_->ListEvents(id, after, limit) : Down();
  }
  absl::StatusOr<PruneStats> PruneEvents(int64_t before) override {
    return Up() ? store_->PruneEvents(before) : Down();
  }
  absl::StatusOr<int64_t> FirstSeq(const std::string& id) override { return Up() ? store_->FirstSeq(id) : Down(); }
  absl::StatusOr<std::optional<JobRecord>> ClaimNext(const std::string& w, double lease,
                                                     const std::vector<JobKind>& kinds) override {
    return Up() ? store_->ClaimNext(w, lease, kinds) : Down();
  }
  absl::StatusOr<JobRecord> Heartbeat(const std::string& id, int64_t epoch, double lease) override {
    return Up() ? store_->Heartbeat(id, epoch, lease) : Down();
  }
  absl::StatusOr<JobRecord> RequestCancel(const std::string& id) override {
    return Up() ? store_->RequestCancel(id) : Down();
  }
  absl::StatusOr<std::vector<JobRecord>> ReapExpiredLeases(int max_attempts, double backoff) override {
    return Up() ? store_->ReapExpiredLeases(max_attempts, backoff) : Down();
  }
  absl::StatusOr<int64_t> CountQueued() override { return Up() ? store_->CountQueued() : Down(); }
  absl::StatusOr<int64_t> CountQueuedBefore(const JobRecord& job) override {
    return Up() ? store_->CountQueuedBefore(job) : Down();
  }

 private:
  bool Up() const { return !cut.load(); }
  static absl::Status Down() { return absl::UnavailableError("the job store cannot be reached"); }
  std::unique_ptr<JobStore> store_;
};

// Steps that take `sleep_ms`; which replica ran which steps is recorded.
struct Ledger {
  absl::Mutex mu;
  std::map<std::string, std::vector<std::string>> runs;  // job -> the workers that built a runner
  std::map<std::string, int64_t> restored;               // job -> the step its runner resumed at
  std::map<std::string, int64_t> steps_by;               // "job/worker" -> steps run there
};

class LedgerRunner : public JobRunner {
 public:
  LedgerRunner(Ledger* ledger, std::string job, std::string worker, int64_t total, int sleep_ms)
      : ledger_(ledger), job_(std::move(job)), worker_(std::move(worker)), total_(total), sleep_ms_(sleep_ms) {}
  int64_t total_steps() const override { return total_; }
  int64_t step() const override { return step_; }
  absl::StatusOr<std::map<std::string, float>> Step() override {
    std::this_thread::sleep_for(std::chrono::milliseconds(sleep_ms_));
    ++step_;
    absl::MutexLock lock(&ledger_->mu);
    ++ledger_->steps_by[job_ + "/" + worker_];
    return std::map<std::string, float>{{"loss", 1.0f}};
  }
  absl::StatusOr<FloatTensor> PreviewImages(bool) override { return FloatTensor{}; }
  absl::Status SaveCheckpoint(const std::string& path) override {
    const std::string part = path + "." + worker_;
    std::ofstream(part) << step_;
    std::filesystem::rename(part, path);  // another replica may be reading it
    return absl::OkStatus();
  }
  absl::Status RestoreCheckpoint(const std::string& path) override {
    std::ifstream(path) >> step_;
    absl::MutexLock lock(&ledger_->mu);
    ledger_->restored[job_] = step_;
    return absl::OkStatus();
  }
  absl::StatusOr<std::string> Finish() override { return worker_; }

 private:
  Ledger* ledger_;
  std::string job_, worker_;
  int64_t total_;
  int sleep_ms_;
  int64_t step_ = 0;
};

class JobReplicasTest : public ::testing::Test {
 protected:
  struct Replica {
    std::unique_ptr<CuttableStore> store;
    std::unique_ptr<DeviceExecutor> executor;
    std::unique_ptr<JobEngine> engine;
  };

  void SetUp() override {
    dir_ = ::testing::TempDir() + "/job_replicas_" + ::testing::UnitTest::GetInstance()->current_test_info()->name() +
           "_" + std::to_string(::getpid());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    auto reader = SqliteJobStore::Open(dir_ + "/jobs.db");
    ASSERT_TRUE(reader.ok()) << reader.status();
    reader_ = std::move(*reader);
  }
  void TearDown() override {
    for (auto& r : replicas_) r.engine.reset();
  }

  // Replicas share no folder: each has its own checkpoint folder, and checkpoints
  // travel through shared files in an artifact store (a local folder here) when
  // `with_shared_files`.
  void ShareNoFolder(bool with_shared_files) {
    own_folders_ = true;
    if (!with_shared_files) return;
    artifacts_ = storage::NewLocalArtifactStore(dir_ + "/artifacts");
    cache_ = std::make_unique<storage::ArtifactCache>(artifacts_.get(), dir_ + "/cache", 0);
    shared_ = storage::NewSharedFiles(artifacts_.get(), cache_.get());
  }

  // A replica named `worker` claiming `kinds` (empty = all). Checkpoints go to one
  // folder all replicas share, as on a shared volume (unless ShareNoFolder).
  JobEngine& Start(const std::string& worker, int64_t steps, int sleep_ms, std::vector<JobKind> kinds = {}) {
    Replica r;
    auto store = SqliteJobStore::Open(dir_ + "/jobs.db");
    EXPECT_TRUE(store.ok()) << store.status();
    r.store = std::make_unique<CuttableStore>(std::move(*store));
    r.executor = std::make_unique<DeviceExecutor>(DeviceExecutor::Options{});
    JobEngine::Options o;
    o.checkpoint_dir = own_folders_ ? dir_ + "/ckpt-" + worker : dir_ + "/ckpt";
    o.shared = shared_.get();
    o.checkpoint_every = 2;
    o.preview_every = 0;
    o.max_queued = 64;
    o.heartbeat_seconds = 0.2;
    o.leases.enabled = true;
    o.leases.worker = worker;
    o.leases.lease_seconds = 0.8;
    o.leases.renew_seconds = 0.1;
    o.leases.poll_seconds = 0.05;
    o.leases.max_attempts = 3;
    o.leases.retry_backoff_seconds = 0;
    o.leases.kinds = std::move(kinds);
    r.engine = std::make_unique<JobEngine>(o, r.store.get(), r.executor.get(),
                                           [](const JobEvent& e) { return std::to_string(e.seq); });
    Ledger* ledger = &ledger_;
    for (JobKind kind : {JobKind::kAdapt, JobKind::kInvert}) {
      r.engine->RegisterFactory(kind, [ledger, worker, steps, sleep_ms](const JobRecord& job) {
        {
          absl::MutexLock lock(&ledger->mu);
          ledger->runs[job.id].push_back(worker);
        }
        return absl::StatusOr<std::unique_ptr<JobRunner>>(
            std::make_unique<LedgerRunner>(ledger, job.id, worker, steps, sleep_ms));
      });
    }
    EXPECT_TRUE(r.engine->Start().ok());
    replicas_.push_back(std::move(r));
    return *replicas_.back().engine;
  }
  CuttableStore& StoreOf(size_t i) { return *replicas_[i].store; }
  bool own_folders_ = false;
  std::unique_ptr<storage::ArtifactStore> artifacts_;
  std::unique_ptr<storage::ArtifactCache> cache_;
  std::unique_ptr<SharedFiles> shared_;

  static JobRecord NewJob(const std::string& id, JobKind kind = JobKind::kAdapt) {
    JobRecord j;
    j.id = id;
    j.kind = kind;
    j.model = "m";
    j.request_hash = "h";
    return j;
  }
  JobRecord WaitFor(const std::string& id, const std::function<bool(const JobRecord&)>& done, double seconds = 20) {
    JobRecord last;
    for (int i = 0; i < seconds * 100; ++i) {
      auto j = reader_->GetJob(id);
      if (j.ok()) {
        last = *j;
        if (done(last)) return last;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ADD_FAILURE() << id << " did not get there: state " << JobStateName(last.state) << ", step " << last.step
                  << ", worker '" << last.worker << "'";
    return last;
  }
  JobRecord WaitTerminal(const std::string& id) {
    return WaitFor(id, [](const JobRecord& j) { return IsTerminal(j.state); });
  }
  // Stored events are gapless from 1, and exactly one is terminal (the last).
  void ExpectGaplessEvents(const std::string& id) {
    auto events = reader_->ListEvents(id, 0, 100000);
    ASSERT_TRUE(events.ok());
    ASSERT_FALSE(events->empty());
    for (size_t i = 0; i < events->size(); ++i) ASSERT_EQ((*events)[i].seq, static_cast<int64_t>(i + 1)) << id;
  }

  std::string dir_;
  std::unique_ptr<SqliteJobStore> reader_;
  Ledger ledger_;
  std::vector<Replica> replicas_;
};

// Jobs submitted to any replica run exactly once, spread over the replicas, each with a
// gapless event log; a resubmitted request id on another replica finds the same job.
TEST_F(JobReplicasTest, EachJobRunsOnceOnSomeReplica) {
  JobEngine& a = Start("a", 6, 20);
  JobEngine& b = Start("b", 6, 20);
  JobEngine& c = Start("c", 6, 20);
  JobEngine* engines[] = {&a, &b, &c};
  constexpr int kJobs = 9;
  for (int i = 0; i < kJobs; ++i) {
    JobRecord j = NewJob("j" + std::to_string(i));
    j.request_id = "req-" + std::to_string(i);
    ASSERT_TRUE(engines[i % 3]->Submit(j).ok());
  }
  bool existed = false;
  JobRecord again = NewJob("other-id");
  again.request_id = "req-4";
  auto retry = c.Submit(again, &existed);
  ASSERT_TRUE(retry.ok()) << retry.status();
  EXPECT_TRUE(existed);
  EXPECT_EQ(retry->id, "j4");
  std::set<std::string> workers;
  for (int i = 0; i < kJobs; ++i) {
    const std::string id = "j" + std::to_string(i);
    JobRecord done = WaitTerminal(id);
    EXPECT_EQ(done.state, JobState::kSucceeded) << id << ": " << done.error_message;
    EXPECT_EQ(done.attempt, 1);
    workers.insert(done.result);
    ExpectGaplessEvents(id);
    absl::MutexLock lock(&ledger_.mu);
    EXPECT_EQ(ledger_.runs[id].size(), 1u) << id << " ran more than once";
  }
  EXPECT_GE(workers.size(), 2u) << "one replica ran every job while the others idled";
}

// Queue positions come from the shared queue, on any replica: the oldest waits least.
TEST_F(JobReplicasTest, QueuePositionsAreTheSharedQueues) {
  JobEngine& runner = Start("runner", 1000, 10, {JobKind::kAdapt});
  JobEngine& front = Start("front", 1000, 10, {JobKind::kInvert});
  ASSERT_TRUE(runner.Submit(NewJob("busy")).ok());
  WaitFor("busy", [](const JobRecord& j) { return j.worker == "runner"; });
  for (const char* id : {"q1", "q2", "q3"}) {
    ASSERT_TRUE(front.Submit(NewJob(id)).ok());
    std::this_thread::sleep_for(std::chrono::milliseconds(5));  // distinct creation times
  }
  EXPECT_EQ(front.Get("q1")->queue_position, 1);
  EXPECT_EQ(runner.Get("q2")->queue_position, 2);
  EXPECT_EQ(front.Get("q3")->queue_position, 3);
  EXPECT_EQ(front.Get("busy")->queue_position, 0) << "running";
  ASSERT_TRUE(front.Cancel("q1").ok());
  EXPECT_EQ(front.Get("q3")->queue_position, 2);
  JobRecord urgent = NewJob("urgent");
  urgent.priority = 3;
  ASSERT_TRUE(front.Submit(urgent).ok());
  EXPECT_EQ(runner.Get("urgent")->queue_position, 1) << "a higher priority goes first";
  EXPECT_EQ(front.Get("q3")->queue_position, 3);
  for (const char* id : {"busy", "q2", "q3", "urgent"}) ASSERT_TRUE(front.Cancel(id).ok());
  WaitTerminal("busy");
}

// Many instant jobs: claims race the submitter's own QUEUED write, which must never turn
// a job another replica already claimed (or finished) back into a queued one.
TEST_F(JobReplicasTest, QuickJobsRacingTheirSubmitterRunOnce) {
  JobEngine* engines[] = {&Start("a", 1, 0), &Start("b", 1, 0), &Start("c", 1, 0)};
  constexpr int kJobs = 200;
  for (int i = 0; i < kJobs; ++i) ASSERT_TRUE(engines[i % 3]->Submit(NewJob("q" + std::to_string(i))).ok());
  for (int i = 0; i < kJobs; ++i) {
    const std::string id = "q" + std::to_string(i);
    EXPECT_EQ(WaitTerminal(id).state, JobState::kSucceeded) << id;
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // a rerun would start by now
  absl::MutexLock lock(&ledger_.mu);
  for (int i = 0; i < kJobs; ++i) {
    const std::string id = "q" + std::to_string(i);
    EXPECT_EQ(ledger_.runs[id].size(), 1u) << id << " ran on " << ledger_.runs[id].size() << " replicas";
    EXPECT_EQ(reader_->GetJob(id)->attempt, 1) << id;
  }
}

// A watcher attached to a replica that does not run the job gets every event once, in
// order, through the terminal one: the QUEUED event live from its own Submit, the rest as
// the runner stored them.
TEST_F(JobReplicasTest, AWatcherOnAnotherReplicaSeesTheEventsInOrder) {
  Start("runner", 8, 20, {JobKind::kAdapt});
  JobEngine& watcher = Start("watcher", 8, 20, {JobKind::kInvert});  // claims no adapt job
  absl::Mutex mu;
  std::vector<int64_t> seqs;
  int stored = 0;
  watcher.Subscribe("w", [&](const JobEvent& e) {
    if (e.type == JobEvent::Type::kHeartbeat) return;
    absl::MutexLock lock(&mu);
    seqs.push_back(e.seq);
    if (!e.stored.empty()) {
      ++stored;
      EXPECT_EQ(e.stored, std::to_string(e.seq)) << "the bytes as stored";
    }
  });
  ASSERT_TRUE(watcher.Submit(NewJob("w")).ok());
  JobRecord done = WaitTerminal("w");
  EXPECT_EQ(done.result, "runner");
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // a poll or two
  absl::MutexLock lock(&mu);
  std::vector<int64_t> want(static_cast<size_t>(done.last_seq));
  for (size_t i = 0; i < want.size(); ++i) want[i] = static_cast<int64_t>(i + 1);
  EXPECT_EQ(seqs, want);
  EXPECT_EQ(stored, done.last_seq - 1) << "all but the watcher's own QUEUED event came from the store";
}

// A replica cut off from the store past its lease stops the job (its writes would be
// refused), another replica reaps the lease and resumes from the last checkpoint, and
// the cut-off replica, reconnected, publishes nothing more.
TEST_F(JobReplicasTest, AReplicaCutOffPastItsLeaseLosesTheJobToAnother) {
  Start("a", 60, 30, {JobKind::kAdapt});
  JobRecord running = NewJob("k");
  ASSERT_TRUE(replicas_[0].engine->Submit(running).ok());
  WaitFor("k", [](const JobRecord& j) { return j.worker == "a" && j.step >= 5; });
  StoreOf(0).cut = true;
  Start("b", 60, 5);
  JobRecord taken = WaitFor("k", [](const JobRecord& j) { return j.worker == "b"; });
  EXPECT_EQ(taken.attempt, 2);
  EXPECT_GT(taken.lease_epoch, 1);
  StoreOf(0).cut = false;
  JobRecord done = WaitTerminal("k");
  EXPECT_EQ(done.state, JobState::kSucceeded) << done.error_message;
  EXPECT_EQ(done.result, "b");
  ExpectGaplessEvents("k");
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(reader_->GetJob("k")->result, "b") << "the old holder wrote after losing the job";
  absl::MutexLock lock(&ledger_.mu);
  EXPECT_GE(ledger_.restored["k"], 4) << "b resumed from a's last checkpoint";
  EXPECT_LT(ledger_.steps_by["k/a"], 60) << "a stopped";
}

// Cancel on a replica that does not run the job stops it where it runs, within a lease
// renewal and a step.
TEST_F(JobReplicasTest, CancelOnAnotherReplicaStopsTheRunningJob) {
  Start("runner", 1000, 10, {JobKind::kAdapt});
  JobEngine& front = Start("front", 1000, 10, {JobKind::kInvert});
  ASSERT_TRUE(front.Submit(NewJob("long")).ok());
  WaitFor("long", [](const JobRecord& j) { return j.worker == "runner" && j.step > 0; });
  // A queued job cancelled meanwhile never runs.
  ASSERT_TRUE(front.Submit(NewJob("next")).ok());
  auto queued = front.Cancel("next");
  ASSERT_TRUE(queued.ok()) << queued.status();
  EXPECT_EQ(queued->state, JobState::kCancelled);
  const auto t0 = std::chrono::steady_clock::now();
  auto c = front.Cancel("long");
  ASSERT_TRUE(c.ok()) << c.status();
  JobRecord done = WaitTerminal("long");
  EXPECT_EQ(done.state, JobState::kCancelled);
  EXPECT_LT(done.step, 1000);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
  ExpectGaplessEvents("long");
  absl::MutexLock lock(&ledger_.mu);
  EXPECT_EQ(ledger_.runs.count("next"), 0u);
}

// Shutting a replica down hands its running job over at once: another replica claims it
// and resumes from the checkpoint written on the way out.
TEST_F(JobReplicasTest, ShutdownHandsTheRunningJobOver) {
  Start("a", 40, 20, {JobKind::kAdapt});
  ASSERT_TRUE(replicas_[0].engine->Submit(NewJob("h")).ok());
  WaitFor("h", [](const JobRecord& j) { return j.worker == "a" && j.step >= 3; });
  replicas_[0].engine->Shutdown();
  Start("b", 40, 2);
  JobRecord done = WaitTerminal("h");
  EXPECT_EQ(done.state, JobState::kSucceeded) << done.error_message;
  EXPECT_EQ(done.result, "b");
  absl::MutexLock lock(&ledger_.mu);
  EXPECT_GE(ledger_.restored["h"], 3);
}

// Without a shared folder, checkpoints travel through the shared files: the record
// points at the newest (its digest) and the replica taking the job over downloads it.
TEST_F(JobReplicasTest, WithoutASharedFolderTheCheckpointTravelsThroughSharedFiles) {
  ShareNoFolder(/*with_shared_files=*/true);
  Start("a", 60, 30, {JobKind::kAdapt});
  ASSERT_TRUE(replicas_[0].engine->Submit(NewJob("s")).ok());
  JobRecord mid = WaitFor("s", [](const JobRecord& j) { return j.worker == "a" && j.step >= 5; });
  ASSERT_EQ(mid.checkpoint.size(), 64u) << "the record points at a checkpoint";
  EXPECT_TRUE(std::filesystem::exists(dir_ + "/artifacts/" + storage::BlobKey(mid.checkpoint)));
  StoreOf(0).cut = true;
  Start("b", 60, 5);
  JobRecord done = WaitTerminal("s");
  StoreOf(0).cut = false;
  EXPECT_EQ(done.state, JobState::kSucceeded) << done.error_message;
  EXPECT_EQ(done.result, "b");
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/ckpt/s.ckpt.safetensors"));
  absl::MutexLock lock(&ledger_.mu);
  EXPECT_GE(ledger_.restored["s"], 4) << "b resumed from a's checkpoint, fetched from the shared files";
  EXPECT_EQ(cache_->downloads(), 1);
}

// The same without shared files: nothing to resume from, the job starts over (what the
// test above would see if the checkpoint did not travel).
TEST_F(JobReplicasTest, WithoutASharedFolderOrSharedFilesATakenOverJobStartsOver) {
  ShareNoFolder(/*with_shared_files=*/false);
  Start("a", 40, 30, {JobKind::kAdapt});
  ASSERT_TRUE(replicas_[0].engine->Submit(NewJob("o")).ok());
  WaitFor("o", [](const JobRecord& j) { return j.worker == "a" && j.step >= 5; });
  StoreOf(0).cut = true;
  Start("b", 40, 5);
  JobRecord done = WaitTerminal("o");
  StoreOf(0).cut = false;
  EXPECT_EQ(done.state, JobState::kSucceeded) << done.error_message;
  EXPECT_TRUE(done.checkpoint.empty());
  absl::MutexLock lock(&ledger_.mu);
  EXPECT_EQ(ledger_.restored.count("o"), 0u);
  EXPECT_EQ(ledger_.steps_by["o/b"], 40);
}

}  // namespace
}  // namespace ganserve::core
