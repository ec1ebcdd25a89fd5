// Coalesces compatible render work from concurrent GenerateSamples / Edit streams into
// one generator call on the device executor.
//
// Work is grouped by key (same generator weights, latent space, truncation, noise mode,
// mixing, outputs): requests for a base and any of its lightweight domains share a call,
// each row rendered in its own domain. A key has at most one executor task queued: work arriving while it waits
// joins it. When the task runs it takes the key's pending work, oldest first, up to
// `max_images`, renders it as one batch, and queues the key's next task if work is
// left. So the executor's queue holds one task per waiting batch, not one per request
// (a task per request would leave tasks whose work an earlier one took, and those would
// fill the queue limit under load); the limit on waiting requests is `max_waiting`,
// answered like the executor's (ResourceExhausted with its retry delay). A request's
// images are bit-identical to a solo render only when the batch composition is the
// same: batched kernels may round differently by float epsilon (set max_images to 0 to
// render every request alone).
#ifndef GANSERVE_CORE_RUNTIME_RENDER_BATCHER_H_
#define GANSERVE_CORE_RUNTIME_RENDER_BATCHER_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "core/models/stylegan2/generator.h"
#include "core/runtime/device_executor.h"

namespace ganserve::core {

class RenderBatcher {
 public:
  struct Options {
    // Most images rendered by one coalesced call; 0 or 1 renders each request alone.
    // One piece of work larger than this still runs, by itself.
    int max_images = 32;
    WorkClass work_class = WorkClass::kInteractive;
    // Pieces of work waiting (all keys) before Submit answers ResourceExhausted.
    size_t max_waiting = 256;
  };
  // Called on the executor thread for every coalesced call: images rendered and the
  // number of requests they came from.
  using BatchObserver = std::function<void(int images, int requests)>;

  struct Work {
    std::shared_ptr<const stylegan2::Generator> generator;
    stylegan2::GenerateParams params;
    // Checked just before rendering; false skips the work (answered CANCELLED). May be null.
    std::function<bool()> wanted;
    // Receives this work's slice of the result (rows in the order of params.latents),
    // or the error; UNAVAILABLE when the executor shut down first. Runs on the executor
    // thread.
    std::function<void(absl::StatusOr<stylegan2::GenerateResult>)> done;
  };

  RenderBatcher(DeviceExecutor* executor, Options options, BatchObserver observer = nullptr);

  // Queues `work`. On error (`max_waiting` pieces wait, the executor's queue is full,
  // or it shut down) `done` is not called and the status says why.
  absl::Status Submit(Work work);

 private:
  // Work with the same key can share a generator call.
  std::string Key(const Work& w);
  void Run(const std::string& key, bool dropped);
  // Queues the executor task of `key`'s pending work.
  absl::Status PostLocked(const std::string& key) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  struct Pending {
    std::deque<Work> work;
    bool task_queued = false;
  };

  DeviceExecutor* const executor_;
  const Options options_;
  const BatchObserver observer_;
  absl::Mutex mu_;
  std::map<std::string, Pending> pending_ ABSL_GUARDED_BY(mu_);
  size_t waiting_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t solo_counter_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace ganserve::core

#endif  // GANSERVE_CORE_RUNTIME_RENDER_BATCHER_H_
