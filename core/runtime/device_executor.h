// One thread per device that owns the device's work: request threads only post tasks
// and wait for results, so model code needs no locks and work classes can be ordered
// (interactive before batch before training).
#ifndef GANSERVE_CORE_RUNTIME_DEVICE_EXECUTOR_H_
#define GANSERVE_CORE_RUNTIME_DEVICE_EXECUTOR_H_

#include <array>
#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace ganserve::core {

enum class WorkClass { kInteractive = 0, kBatch = 1, kTraining = 2 };
inline constexpr int kNumWorkClasses = 3;
const char* WorkClassName(WorkClass c);

// Observer for queue metrics; called on the executor's threads, must be cheap.
class ExecutorObserver {
 public:
  virtual ~ExecutorObserver() = default;
  virtual void OnQueueDepth(WorkClass c, size_t depth) = 0;
  virtual void OnQueueWait(WorkClass c, double seconds) = 0;
};

// Thread-safe. Tasks of a higher class (lower enum value) run first; within a class,
// FIFO. A training job posts one step per task, so interactive work runs between its
// steps. So that a steady stream of interactive work cannot starve the lower classes,
// a task that has waited longer than its class's `max_wait` runs next (the oldest such
// task first): under saturating load a job still advances about once per max_wait.
class DeviceExecutor {
 public:
  // A task gets `cancelled` = true when it is dropped at shutdown without running its
  // work; it must still release what it holds (answer its caller).
  using Task = std::function<void(bool cancelled)>;

  struct Options {
    std::string name = "cpu";
    // Queue limit per work class; past it Submit answers ResourceExhausted.
    std::array<size_t, kNumWorkClasses> max_queue = {256, 64, 16};
    ExecutorObserver* observer = nullptr;  // not owned; may be null
    // Longest wait before a task runs ahead of higher classes (the interactive class
    // has none above it).
    std::array<absl::Duration, kNumWorkClasses> max_wait = {absl::InfiniteDuration(), absl::Seconds(2),
                                                            absl::Seconds(2)};
  };

  explicit DeviceExecutor(Options options);
  // Calls Shutdown().
  ~DeviceExecutor();
  DeviceExecutor(const DeviceExecutor&) = delete;
  DeviceExecutor& operator=(const DeviceExecutor&) = delete;

  // Queues `task`. ResourceExhausted (with the queue limit in the message) when the
  // class's queue is full, carrying a retry delay (core/util/retry_hint.h): the
  // expected rest of the running task plus the queued tasks that run before this
  // class, from each class's recent task durations. Unavailable after Shutdown. On
  // error the task is not run and is destroyed before returning.
  absl::Status Submit(WorkClass c, Task task);

  size_t QueueDepth(WorkClass c) const;
  // When a slot of class `c` is expected to free (the retry delay a full queue reports).
  absl::Duration RetryDelay(WorkClass c) const;
  const std::string& name() const { return options_.name; }

  // Stops taking tasks, runs the one in progress to its end, calls the queued ones with
  // cancelled = true, and joins the thread. Idempotent.
  void Shutdown();

 private:
  struct Item {
    Task task;
    int64_t enqueue_ns;
  };
  void Loop();
  absl::Duration RetryDelayLocked(WorkClass c) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const Options options_;
  mutable absl::Mutex mu_;
  std::array<std::deque<Item>, kNumWorkClasses> queues_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  // Exponential moving average of task run times per class (0 = none seen yet).
  std::array<double, kNumWorkClasses> mean_task_s_ ABSL_GUARDED_BY(mu_) = {};
  // The task in progress: its class and start (0 = idle).
  WorkClass running_class_ ABSL_GUARDED_BY(mu_) = WorkClass::kInteractive;
  int64_t running_start_ns_ ABSL_GUARDED_BY(mu_) = 0;
  std::thread thread_;
};

}  // namespace ganserve::core

#endif  // GANSERVE_CORE_RUNTIME_DEVICE_EXECUTOR_H_
