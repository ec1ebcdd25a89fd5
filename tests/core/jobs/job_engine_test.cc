// The job engine with a scripted runner: lifecycle and events, cancellation, idempotent
// submission, queue limits, time limits, and recovery after a restart.
#include "core/jobs/job_engine.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <thread>

#include "absl/synchronization/notification.h"
#include "core/jobs/sqlite_job_store.h"

namespace ganserve::core {
namespace {

// Counts steps; a checkpoint is the step number in a file.
class FakeRunner : public JobRunner {
 public:
  FakeRunner(int64_t total, int sleep_ms) : total_(total), sleep_ms_(sleep_ms) {}
  int64_t total_steps() const override { return total_; }
  int64_t step() const override { return step_; }
  absl::StatusOr<std::map<std::string, float>> Step() override {
    std::this_thread::sleep_for(std::chrono::milliseconds(sleep_ms_));
    ++step_;
    return std::map<std::string, float>{{"loss", 1.0f / static_cast<float>(step_)}};
  }
  absl::StatusOr<FloatTensor> PreviewImages(bool) override {
    return FloatTensor{{1, 3, 4, 4}, std::vector<float>(48, 0.5f)};
  }
  absl::Status SaveCheckpoint(const std::string& path) override {
    std::ofstream(path) << step_;
    return absl::OkStatus();
  }
  absl::Status RestoreCheckpoint(const std::string& path) override {
    std::ifstream(path) >> step_;
    restored_from = step_;
    return absl::OkStatus();
  }
  absl::StatusOr<std::string> Finish() override { return std::string("result-") + std::to_string(step_); }
  static std::atomic<int64_t> restored_from;

 private:
  int64_t total_;
  int sleep_ms_;
  int64_t step_ = 0;
};
std::atomic<int64_t> FakeRunner::restored_from{-1};

class JobEngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "/job_engine_" + ::testing::UnitTest::GetInstance()->current_test_info()->name() +
           "_" + std::to_string(::getpid());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    Open();
  }
  void Open(int checkpoint_every = 2, int steps = 6, int sleep_ms = 5) {
    engine_.reset();
    executor_.reset();
    store_.reset();
    store_ = std::move(*SqliteJobStore::Open(dir_ + "/jobs.db"));
    executor_ = std::make_unique<DeviceExecutor>(DeviceExecutor::Options{});
    JobEngine::Options o;
    o.checkpoint_dir = dir_ + "/ckpt";
    o.checkpoint_every = checkpoint_every;
    o.preview_every = 3;
    o.max_queued = 2;
    o.heartbeat_seconds = 0.05;
    engine_ = std::make_unique<JobEngine>(o, store_.get(), executor_.get(),
                                          [](const JobEvent& e) { return std::to_string(e.seq); });
    engine_->RegisterFactory(JobKind::kAdapt,
                             [steps, sleep_ms](const JobRecord&) -> absl::StatusOr<std::unique_ptr<JobRunner>> {
                               return std::unique_ptr<JobRunner>(new FakeRunner(steps, sleep_ms));
                             });
    ASSERT_TRUE(engine_->Start().ok());
  }
  JobRecord NewJob(const std::string& id, const std::string& request_id = "", const std::string& hash = "h") {
    JobRecord j;
    j.id = id;
    j.kind = JobKind::kAdapt;
    j.model = "m";
    j.request_id = request_id;
    j.request_hash = hash;
    return j;
  }
  void WaitRunning(const std::string& id) {
    for (int i = 0; i < 500; ++i) {
      auto j = engine_->Get(id);
      if (j.ok() && j->state == JobState::kRunning) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ADD_FAILURE() << id << " never ran";
  }
  JobRecord WaitTerminal(const std::string& id) {
    for (int i = 0; i < 500; ++i) {
      auto j = engine_->Get(id);
      if (j.ok() && IsTerminal(j->state)) return *j;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ADD_FAILURE() << id << " did not finish";
    return {};
  }
  std::string dir_;
  std::unique_ptr<SqliteJobStore> store_;
  std::unique_ptr<DeviceExecutor> executor_;
  std::unique_ptr<JobEngine> engine_;
};

TEST_F(JobEngineTest, RunsToSuccessWithOrderedEvents) {
  absl::Mutex mu;
  std::vector<JobEvent> seen;
  bool heartbeat = false;
  engine_->Subscribe("j1", [&](const JobEvent& e) {
    absl::MutexLock l(&mu);
    if (e.type == JobEvent::Type::kHeartbeat)
      heartbeat = true;
    else
      seen.push_back(e);
  });
  ASSERT_TRUE(engine_->Submit(NewJob("j1")).ok());
  JobRecord done = WaitTerminal("j1");
  EXPECT_EQ(done.state, JobState::kSucceeded);
  EXPECT_EQ(done.result, "result-6");
  EXPECT_EQ(done.step, 6);
  auto events = store_->ListEvents("j1", 0, 1000);
  ASSERT_TRUE(events.ok());
  // queued, running, 6 progress, previews at 3 and 6, succeeded
  EXPECT_EQ(events->size(), 11u);
  for (size_t i = 0; i < events->size(); ++i) EXPECT_EQ((*events)[i].seq, static_cast<int64_t>(i + 1));
  EXPECT_EQ(events->back().type, "state");
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  absl::MutexLock l(&mu);
  ASSERT_FALSE(seen.empty());
  EXPECT_EQ(seen.back().job.state, JobState::kSucceeded);
  int previews = 0;
  for (const auto& e : seen) {
    if (e.type == JobEvent::Type::kPreview) {
      ++previews;
      EXPECT_FALSE(e.preview_current.empty());
      EXPECT_EQ(e.preview_current[0].png.substr(1, 3), "PNG");
    }
  }
  EXPECT_EQ(previews, 2);
}

TEST_F(JobEngineTest, CancelQueuedAndRunning) {
  Open(0, 200, 10);
  ASSERT_TRUE(engine_->Submit(NewJob("long")).ok());
  WaitRunning("long");
  ASSERT_TRUE(engine_->Submit(NewJob("waiting")).ok());
  auto q = engine_->Get("waiting");
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(q->queue_position, 1);
  auto c = engine_->Cancel("waiting");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->state, JobState::kCancelled);
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(engine_->Cancel("long").ok());
  JobRecord j = WaitTerminal("long");
  EXPECT_EQ(j.state, JobState::kCancelled);
  EXPECT_LT(j.step, 200);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(3));  // one 10 ms step, on a loaded machine
  // Idempotent on a finished job.
  auto again = engine_->Cancel("long");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->state, JobState::kCancelled);
}

// Queued jobs wait in priority order (equal ones as submitted), and run in it.
TEST_F(JobEngineTest, HigherPrioritiesRunFirst) {
  Open(0, 30, 10);  // two may wait
  ASSERT_TRUE(engine_->Submit(NewJob("running")).ok());
  WaitRunning("running");
  std::vector<std::string> started;
  absl::Mutex mu;
  JobRecord urgent = NewJob("urgent");
  urgent.priority = 7;
  for (const JobRecord& j : {NewJob("first"), urgent}) {
    ASSERT_TRUE(engine_->Submit(j).ok());
    engine_->Subscribe(j.id, [&mu, &started, id = j.id](const JobEvent& e) {
      absl::MutexLock l(&mu);
      if (e.type == JobEvent::Type::kState && e.job.state == JobState::kRunning) started.push_back(id);
    });
  }
  EXPECT_EQ(engine_->Get("urgent")->queue_position, 1);
  EXPECT_EQ(engine_->Get("first")->queue_position, 2);
  EXPECT_EQ(engine_->Get("urgent")->priority, 7);
  WaitTerminal("first");
  absl::MutexLock l(&mu);
  EXPECT_EQ(started, (std::vector<std::string>{"urgent", "first"}));
}

TEST_F(JobEngineTest, IdempotentRequestIdsAndQueueLimit) {
  Open(0, 100, 10);
  bool existed = false;
  auto a = engine_->Submit(NewJob("a", "req-1", "hash-1"), &existed);
  ASSERT_TRUE(a.ok());
  EXPECT_FALSE(existed);
  WaitRunning("a");
  auto same = engine_->Submit(NewJob("a2", "req-1", "hash-1"), &existed);
  ASSERT_TRUE(same.ok());
  EXPECT_TRUE(existed);
  EXPECT_EQ(same->id, "a");
  EXPECT_EQ(engine_->Submit(NewJob("a3", "req-1", "other")).status().code(), absl::StatusCode::kAlreadyExists);
  ASSERT_TRUE(engine_->Submit(NewJob("b")).ok());
  ASSERT_TRUE(engine_->Submit(NewJob("c")).ok());
  auto full = engine_->Submit(NewJob("d"));
  EXPECT_EQ(full.status().code(), absl::StatusCode::kResourceExhausted);
}

TEST_F(JobEngineTest, MaxRunSecondsFailsTheJob) {
  Open(0, 1000, 5);
  JobRecord j = NewJob("slow");
  j.max_run_seconds = 1;
  ASSERT_TRUE(engine_->Submit(j).ok());
  JobRecord done = WaitTerminal("slow");
  EXPECT_EQ(done.state, JobState::kFailed);
  EXPECT_EQ(done.error_code, static_cast<int>(absl::StatusCode::kDeadlineExceeded));
  EXPECT_NE(done.error_message.find("max_run_seconds"), std::string::npos);
}

TEST_F(JobEngineTest, RestartResumesFromTheCheckpoint) {
  Open(2, 40, 20);
  ASSERT_TRUE(engine_->Submit(NewJob("r")).ok());
  for (int i = 0; i < 300; ++i) {
    auto j = engine_->Get("r");
    if (j.ok() && j->step >= 5) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  engine_->Shutdown();  // leaves the job RUNNING with a checkpoint
  auto mid = store_->GetJob("r");
  ASSERT_TRUE(mid.ok());
  EXPECT_EQ(mid->state, JobState::kRunning);
  FakeRunner::restored_from = -1;
  Open(2, 40, 1);
  JobRecord done = WaitTerminal("r");
  EXPECT_EQ(done.state, JobState::kSucceeded);
  EXPECT_GE(FakeRunner::restored_from.load(), 5);
  EXPECT_EQ(done.result, "result-40");
}

TEST_F(JobEngineTest, RestartWithoutCheckpointFailsWithAReason) {
  JobRecord j = NewJob("orphan");
  j.state = JobState::kRunning;
  j.create_time_ms = 1;
  ASSERT_TRUE(store_->CreateJob(j).ok());
  Open();
  JobRecord done = WaitTerminal("orphan");
  EXPECT_EQ(done.state, JobState::kFailed);
  EXPECT_NE(done.error_message.find("restarted"), std::string::npos);
}

}  // namespace
}  // namespace ganserve::core
