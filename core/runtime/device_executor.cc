#include "core/runtime/device_executor.h"

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

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
      return absl::ResourceExhaustedError(absl::StrCat("the ", WorkClassName(c), " queue of device ", options_.name,
                                                       " is full (", options_.max_queue[static_cast<int>(c)],
                                                       " waiting); retry after a short backoff"));
    }
    q.push_back({std::move(task), absl::GetCurrentTimeNanos()});
    depth = q.size();
  }
  if (options_.observer != nullptr) options_.observer->OnQueueDepth(c, depth);
  return absl::OkStatus();
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
      for (int i = 0; i < kNumWorkClasses; ++i) {
        if (!queues_[i].empty()) {
          item = std::move(queues_[i].front());
          queues_[i].pop_front();
          cls = static_cast<WorkClass>(i);
          depth = queues_[i].size();
          break;
        }
      }
    }
    if (options_.observer != nullptr) {
      options_.observer->OnQueueDepth(cls, depth);
      options_.observer->OnQueueWait(cls, (absl::GetCurrentTimeNanos() - item.enqueue_ns) * 1e-9);
    }
    item.task(false);
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
