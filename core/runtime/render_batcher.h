// Coalesces compatible render work from concurrent GenerateSamples / Edit streams into
// one generator call on the device executor.
//
// Every Submit posts one executor task, so queue limits and work-class priorities hold
// as before. When a task runs it takes every pending piece of work with the same key
// (same generator, latent space, truncation, noise mode, mixing, outputs), oldest
// first, up to `max_images`, and renders them as one batch. Tasks whose work was taken
// by an earlier one do nothing. A request's images are bit-identical to a solo render
// only when the batch composition is the same: batched kernels may round differently
// by float epsilon (set max_images to 0 to render every request alone).
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

  // Queues `work`. On error (the executor's queue is full, or it shut down) `done` is
  // not called and the status says why.
  absl::Status Submit(Work work);

 private:
  // Work with the same key can share a generator call.
  std::string Key(const Work& w);
  void Run(const std::string& key, bool dropped);

  DeviceExecutor* const executor_;
  const Options options_;
  const BatchObserver observer_;
  absl::Mutex mu_;
  std::map<std::string, std::deque<Work>> pending_ ABSL_GUARDED_BY(mu_);
  uint64_t solo_counter_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace ganserve::core

#endif  // GANSERVE_CORE_RUNTIME_RENDER_BATCHER_H_
