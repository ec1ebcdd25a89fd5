#include "core/runtime/host_pool.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"

namespace ganserve::core {

HostPool::HostPool(Options options) : options_(std::move(options)) {
  const int n = std::max(1, options_.threads);
  threads_.reserve(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) threads_.emplace_back([this] { Loop(); });
}

HostPool::~HostPool() { Shutdown(); }

absl::Status HostPool::Submit(Task task) {
  absl::MutexLock lock(&mu_);
  if (stopping_) return absl::UnavailableError("the server is shutting down; retry on another replica");
  if (queue_.size() >= options_.max_queue) {
    return absl::ResourceExhaustedError(absl::StrCat("the ", options_.name, " worker queue is full (",
                                                     options_.max_queue, " tasks waiting); retry shortly"));
  }
  queue_.push_back(std::move(task));
  return absl::OkStatus();
}

size_t HostPool::QueueDepth() const {
  absl::MutexLock lock(&mu_);
  return queue_.size();
}

void HostPool::Loop() {
  while (true) {
    Task task;
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_ || !queue_.empty(); };
      mu_.Await(absl::Condition(&ready));
      if (stopping_) return;
      task = std::move(queue_.front());
      queue_.pop_front();
    }
    task(false);
  }
}

void HostPool::Shutdown() {
  std::deque<Task> dropped;
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    dropped.swap(queue_);
  }
  for (std::thread& t : threads_) {
    if (t.joinable()) t.join();
  }
  for (Task& t : dropped) t(true);
}

}  // namespace ganserve::core
