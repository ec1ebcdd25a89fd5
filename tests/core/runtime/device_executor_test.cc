// The device executor: one thread, classes in priority order, FIFO within a class,
// bounded queues, and a shutdown that answers every queued task once.
#include "core/runtime/device_executor.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "core/util/retry_hint.h"

namespace ganserve::core {
namespace {

// Holds the executor's thread inside a task until Release().
class Gate {
 public:
  void Hold(DeviceExecutor* e) {
    ASSERT_TRUE(e->Submit(WorkClass::kInteractive, [this](bool) {
                   entered_.Notify();
                   release_.WaitForNotification();
                 }).ok());
    entered_.WaitForNotification();
  }
  void Release() { release_.Notify(); }

 private:
  absl::Notification entered_, release_;
};

class Recorder : public ExecutorObserver {
 public:
  void OnQueueDepth(WorkClass, size_t depth) override { max_depth = std::max(max_depth.load(), depth); }
  void OnQueueWait(WorkClass, double seconds) override {
    waits++;
    EXPECT_GE(seconds, 0);
  }
  std::atomic<size_t> max_depth{0};
  std::atomic<int> waits{0};
};

// A full queue's answer carries a retry delay: the running task's expected rest (from
// the class's recent run times) plus the queued tasks of higher classes. The bounds come
// from clock readings around each step, so a slow or loaded machine (sanitizers, parallel
// tests) widens them instead of failing the test.
TEST(DeviceExecutorTest, FullQueueCarriesARetryDelayFromTheRunningWork) {
  DeviceExecutor exec({"test", {1, 1, 1}, nullptr});
  absl::Notification ran;
  absl::Time task_start, task_end;
  const absl::Time submitted = absl::Now();
  ASSERT_TRUE(exec.Submit(WorkClass::kInteractive,
                          [&](bool) {
                            task_start = absl::Now();
                            absl::SleepFor(absl::Milliseconds(300));
                            task_end = absl::Now();
                            ran.Notify();
                          })
                  .ok());
  ran.WaitForNotification();
  Gate gate;
  const absl::Time hold_begin = absl::Now();
  gate.Hold(&exec);  // the executor recorded the first run time before taking this task
  const absl::Time hold_end = absl::Now();
  ASSERT_TRUE(exec.Submit(WorkClass::kInteractive, [](bool) {}).ok());
  ASSERT_TRUE(exec.Submit(WorkClass::kBatch, [](bool) {}).ok());
  const absl::Time i_begin = absl::Now();
  absl::Status interactive = exec.Submit(WorkClass::kInteractive, [](bool) {});
  const absl::Time i_end = absl::Now();
  absl::Status batch = exec.Submit(WorkClass::kBatch, [](bool) {});
  const absl::Time b_end = absl::Now();
  gate.Release();
  ASSERT_TRUE(absl::IsResourceExhausted(interactive)) << interactive;
  ASSERT_TRUE(absl::IsResourceExhausted(batch)) << batch;
  EXPECT_NE(interactive.message().find("retry in about"), std::string::npos) << interactive;
  std::optional<absl::Duration> di = RetryAfter(interactive), db = RetryAfter(batch);
  ASSERT_TRUE(di.has_value() && db.has_value());
  // The recorded run time of the 300 ms task lies between the task's own duration and
  // the span from its submission to the gate task's start.
  const absl::Duration mean_lo = task_end - task_start, mean_hi = hold_end - submitted;
  // The gate task started within [hold_begin, hold_end]; each refusal was computed
  // within its call.
  auto delay = [](absl::Duration s) {
    return absl::Milliseconds(
        std::ceil(absl::ToDoubleMilliseconds(std::clamp(s, absl::Milliseconds(50), absl::Seconds(60)))));
  };
  const absl::Duration slack = absl::Milliseconds(1);
  // Interactive: the running task's rest.
  EXPECT_GE(*di, delay(mean_lo - (i_end - hold_begin)) - slack);
  EXPECT_LE(*di, delay(mean_hi - (i_begin - hold_end)) + slack);
  // Batch: the running task's rest plus the one queued interactive task.
  EXPECT_GE(*db, delay(2 * mean_lo - (b_end - hold_begin)) - slack);
  EXPECT_LE(*db, delay(2 * mean_hi - (i_end - hold_end)) + slack);
  EXPECT_GE(mean_lo, absl::Milliseconds(300));
  exec.Shutdown();  // the gate task has returned before the gate goes away
}

// A steady stream of interactive work cannot starve training: a training task that
// waited past its class's max_wait runs ahead of the queued interactive tasks.
TEST(DeviceExecutorTest, LowerClassesRunAfterTheirMaxWaitUnderSaturatingLoad) {
  DeviceExecutor::Options o;
  o.max_queue = {1000, 16, 16};
  o.max_wait[static_cast<int>(WorkClass::kTraining)] = absl::Milliseconds(200);
  DeviceExecutor exec(o);
  std::atomic<int> interactive_done{0};
  std::atomic<bool> trained{false};
  std::atomic<int> interactive_before_training{-1};
  absl::Notification training_ran;
  // 200 interactive tasks of 5 ms each: a second of work always queued ahead.
  for (int i = 0; i < 200; ++i) {
    ASSERT_TRUE(exec.Submit(WorkClass::kInteractive,
                            [&](bool) {
                              absl::SleepFor(absl::Milliseconds(5));
                              interactive_done++;
                            })
                    .ok());
  }
  const absl::Time submitted = absl::Now();
  ASSERT_TRUE(exec.Submit(WorkClass::kTraining,
                          [&](bool) {
                            interactive_before_training = interactive_done.load();
                            trained = true;
                            training_ran.Notify();
                          })
                  .ok());
  ASSERT_TRUE(training_ran.WaitForNotificationWithTimeout(absl::Seconds(10)));
  const absl::Duration waited = absl::Now() - submitted;
  // It ran past its max_wait but long before the interactive backlog drained.
  EXPECT_GE(waited, absl::Milliseconds(200));
  EXPECT_LT(interactive_before_training.load(), 150) << "waited " << waited;
  exec.Shutdown();
}

TEST(DeviceExecutorTest, HigherClassesRunFirstAndEachClassIsFifo) {
  Recorder rec;
  DeviceExecutor exec({"test", {16, 16, 16}, &rec});
  Gate gate;
  gate.Hold(&exec);
  absl::Mutex mu;
  std::vector<std::string> order;
  auto record = [&](const std::string& name) {
    return [&, name](bool cancelled) {
      EXPECT_FALSE(cancelled);
      absl::MutexLock lock(&mu);
      order.push_back(name);
    };
  };
  ASSERT_TRUE(exec.Submit(WorkClass::kTraining, record("train1")).ok());
  ASSERT_TRUE(exec.Submit(WorkClass::kBatch, record("batch1")).ok());
  ASSERT_TRUE(exec.Submit(WorkClass::kInteractive, record("ui1")).ok());
  ASSERT_TRUE(exec.Submit(WorkClass::kTraining, record("train2")).ok());
  ASSERT_TRUE(exec.Submit(WorkClass::kInteractive, record("ui2")).ok());
  EXPECT_EQ(exec.QueueDepth(WorkClass::kInteractive), 2u);
  EXPECT_EQ(exec.QueueDepth(WorkClass::kTraining), 2u);
  absl::Notification done;
  ASSERT_TRUE(exec.Submit(WorkClass::kTraining, [&](bool) { done.Notify(); }).ok());
  gate.Release();
  done.WaitForNotification();
  EXPECT_EQ(order, (std::vector<std::string>{"ui1", "ui2", "batch1", "train1", "train2"}));
  EXPECT_GE(rec.max_depth.load(), 2u);
  EXPECT_GE(rec.waits.load(), 5);
}

TEST(DeviceExecutorTest, FullQueueIsResourceExhaustedAndDropsTheTask) {
  DeviceExecutor exec({"test", {2, 1, 1}, nullptr});
  Gate gate;
  gate.Hold(&exec);
  std::atomic<int> ran{0};
  auto task = [&ran](bool) { ran++; };
  ASSERT_TRUE(exec.Submit(WorkClass::kInteractive, task).ok());
  ASSERT_TRUE(exec.Submit(WorkClass::kInteractive, task).ok());
  absl::Status full = exec.Submit(WorkClass::kInteractive, task);
  EXPECT_EQ(full.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(full.message().find("2"), std::string::npos) << full.message();
  // Another class has its own limit.
  EXPECT_TRUE(exec.Submit(WorkClass::kBatch, task).ok());
  gate.Release();
  exec.Shutdown();
  EXPECT_EQ(ran.load(), 3);
}

TEST(DeviceExecutorTest, ShutdownFinishesTheRunningTaskAndCancelsTheQueuedOnes) {
  DeviceExecutor exec({});
  Gate gate;
  gate.Hold(&exec);
  std::atomic<int> cancelled{0}, ran{0};
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(exec.Submit(WorkClass::kBatch, [&](bool c) { (c ? cancelled : ran)++; }).ok());
  }
  std::thread stopper([&] { exec.Shutdown(); });
  // Shutdown waits for the task in progress.
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  gate.Release();
  stopper.join();
  EXPECT_EQ(ran.load(), 0);
  EXPECT_EQ(cancelled.load(), 3);
  EXPECT_EQ(exec.Submit(WorkClass::kInteractive, [](bool) {}).code(), absl::StatusCode::kUnavailable);
  exec.Shutdown();  // idempotent
}

TEST(DeviceExecutorTest, TasksRunOnOneThread) {
  DeviceExecutor exec({});
  absl::Mutex mu;
  std::vector<std::thread::id> ids;
  absl::Notification done;
  std::vector<std::thread> posters;
  std::atomic<int> left{40};
  posters.reserve(4);
  for (int t = 0; t < 4; ++t) {
    posters.emplace_back([&] {
      for (int i = 0; i < 10; ++i) {
        while (!exec.Submit(WorkClass::kInteractive,
                            [&](bool) {
                              absl::MutexLock lock(&mu);
                              ids.push_back(std::this_thread::get_id());
                              if (--left == 0) done.Notify();
                            })
                    .ok()) {
          std::this_thread::yield();
        }
      }
    });
  }
  for (auto& p : posters) p.join();
  done.WaitForNotification();
  absl::MutexLock lock(&mu);
  ASSERT_EQ(ids.size(), 40u);
  for (const auto& id : ids) EXPECT_EQ(id, ids[0]);
  EXPECT_NE(ids[0], std::this_thread::get_id());
}

}  // namespace
}  // namespace ganserve::core
