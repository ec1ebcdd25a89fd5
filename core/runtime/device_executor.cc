#include "core/runtime/device_executor.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "core/util/retry_hint.h"

namespace ganserve::core {

const char* WorkClassName(WorkClass c) {
  switch (c) {
    case WorkClass::kInteractive: return "interactive";
    case WorkClass::kBatch: return "batch";
    case WorkClass::kTraining: return "training";
  }
  return "unknown";
}

DeviceExecutor::DeviceExecutor(Options options) : options_(std::move(options)) {
  thread_ = std::thread([this] { Loop(); });
}

DeviceExecutor::~DeviceExecutor() { Shutdown(); }

absl::Status DeviceExecutor::Submit(WorkClass c, Task task) {
  size_t depth;
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return absl::UnavailableError("the server is shutting down; retry on another replica");
    auto& q = queues_[static_cast<int>(c)];
    if (q.size() >= options_.max_queue[static_cast<int>(c)]) {
      const absl::Duration delay = RetryDelayLocked(c);
      return WithRetryAfter(
          absl::ResourceExhaustedError(absl::StrCat("the ", WorkClassName(c), " queue of device ", options_.name,
                                                    " is full (", options_.max_queue[static_cast<int>(c)],
                                                    " waiting); retry in about ", absl::FormatDuration(delay))),
          delay);
    }
    q.push_back({std::move(task), absl::GetCurrentTimeNanos()});
    depth = q.size();
  }
  if (options_.observer != nullptr) options_.observer->OnQueueDepth(c, depth);
  return absl::OkStatus();
}

absl::Duration DeviceExecutor::RetryDelayLocked(WorkClass c) const {
  // A slot of class c frees when the executor takes c's first task: after the running
  // task and every queued task of a higher class.
  double s = 0;
  if (running_start_ns_ != 0) {
    const double elapsed = (absl::GetCurrentTimeNanos() - running_start_ns_) * 1e-9;
    const double expected = mean_task_s_[static_cast<int>(running_class_)];
    // With no history, a task is assumed to be half done.
    s += expected > 0 ? std::max(0.0, expected - elapsed) : elapsed;
  }
  for (int k = 0; k < static_cast<int>(c); ++k) s += queues_[k].size() * mean_task_s_[k];
  constexpr double kMinS = 0.05, kMaxS = 60;
  return absl::Milliseconds(std::ceil(1000 * std::clamp(s, kMinS, kMaxS)));
}

absl::Duration DeviceExecutor::RetryDelay(WorkClass c) const {
  absl::MutexLock lock(&mu_);
  return RetryDelayLocked(c);
}

size_t DeviceExecutor::QueueDepth(WorkClass c) const {
  absl::MutexLock lock(&mu_);
  return queues_[static_cast<int>(c)].size();
}

void DeviceExecutor::Loop() {
  while (true) {
    Item item;
    WorkClass cls = WorkClass::kInteractive;
    size_t depth = 0;
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        if (stopping_) return true;
        for (const auto& q : queues_) {
          if (!q.empty()) return true;
        }
        return false;
      };
      mu_.Await(absl::Condition(&ready));
      if (stopping_) return;
      // The highest non-empty class, unless a task of a lower one waited past its
      // class's max_wait (then the longest-waiting of those).
      int pick = -1;
      const int64_t now = absl::GetCurrentTimeNanos();
      int64_t oldest = now;
      for (int i = 0; i < kNumWorkClasses; ++i) {
        if (queues_[i].empty()) continue;
        if (pick < 0) pick = i;
        const int64_t since = queues_[i].front().enqueue_ns;
        if (i > 0 && absl::Nanoseconds(now - since) > options_.max_wait[i] && since < oldest) {
          oldest = since;
          pick = i;
        }
      }
      item = std::move(queues_[pick].front());
      queues_[pick].pop_front();
      cls = static_cast<WorkClass>(pick);
      depth = queues_[pick].size();
      running_class_ = cls;
      running_start_ns_ = absl::GetCurrentTimeNanos();
    }
    if (options_.observer != nullptr) {
      options_.observer->OnQueueDepth(cls, depth);
      options_.observer->OnQueueWait(cls, (absl::GetCurrentTimeNanos() - item.enqueue_ns) * 1e-9);
    }
    item.task(false);
    absl::MutexLock lock(&mu_);
    const double took = (absl::GetCurrentTimeNanos() - running_start_ns_) * 1e-9;
    double& mean = mean_task_s_[static_cast<int>(cls)];
    mean = mean == 0 ? took : 0.8 * mean + 0.2 * took;
    running_start_ns_ = 0;
  }
}

void DeviceExecutor::Shutdown() {
  std::array<std::deque<Item>, kNumWorkClasses> dropped;
  {
    absl::MutexLock lock(&mu_);
    if (stopping_ && !thread_.joinable()) return;
    stopping_ = true;
    dropped.swap(queues_);
  }
  if (thread_.joinable()) thread_.join();
  for (auto& q : dropped) {
    for (auto& item : q) item.task(true);
  }
}

}  // namespace ganserve::core
