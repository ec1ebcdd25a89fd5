// A few threads for the host-side work of serving (PNG/JPEG encoding of rendered
// batches, request planning that reads files), so that the device executor's thread
// only runs device work. Tasks are small and independent; FIFO, no classes.
#ifndef GANSERVE_CORE_RUNTIME_HOST_POOL_H_
#define GANSERVE_CORE_RUNTIME_HOST_POOL_H_

#include <cstddef>
#include <deque>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"

namespace ganserve::core {

// Thread-safe.
class HostPool {
 public:
  // As DeviceExecutor::Task: `cancelled` = true when the task is dropped at shutdown
  // without running; it must still answer its caller.
  using Task = std::function<void(bool cancelled)>;

  struct Options {
    std::string name = "host";
    int threads = 2;
    // Tasks waiting; past it Submit answers ResourceExhausted. Each stream has at most
    // one batch in flight, so this bounds concurrent streams, not their length.
    size_t max_queue = 1024;
  };

  explicit HostPool(Options options);
  // Calls Shutdown().
  ~HostPool();
  HostPool(const HostPool&) = delete;
  HostPool& operator=(const HostPool&) = delete;

  // Queues `task`: ResourceExhausted when the queue is full, Unavailable after
  // Shutdown; on error the task is destroyed unrun before returning.
  absl::Status Submit(Task task);
  size_t QueueDepth() const;
  int threads() const { return static_cast<int>(threads_.size()); }

  // Stops taking tasks, lets running ones finish, calls the queued ones with
  // cancelled = true, joins the threads. Idempotent.
  void Shutdown();

 private:
  void Loop();

  const Options options_;
  mutable absl::Mutex mu_;
  std::deque<Task> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

}  // namespace ganserve::core

#endif  // GANSERVE_CORE_RUNTIME_HOST_POOL_H_
