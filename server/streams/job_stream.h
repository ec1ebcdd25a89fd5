// Streaming a job's events to a caller: replay from the store after `after_seq`, then
// live events from the engine, through a bounded per-stream queue (progress events are
// coalesced when a reader is slow), ending after the terminal state.
#ifndef GANSERVE_SERVER_STREAMS_JOB_STREAM_H_
#define GANSERVE_SERVER_STREAMS_JOB_STREAM_H_

#include <grpcpp/grpcpp.h>

#include <deque>
#include <memory>
#include <set>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "core/jobs/job_engine.h"
#include "ganserve/v1/ganserve.pb.h"

namespace ganserve::server {

struct ServiceContext;
class RpcScope;
struct JobStreamState;

// Tracks open job streams so that shutdown can end them promptly. Thread-safe.
class JobStreamRegistry {
 public:
  void Add(std::shared_ptr<JobStreamState> s);
  void Remove(const JobStreamState* s);
  // Ends every open stream with UNAVAILABLE (callers re-attach with WatchJob).
  void CloseAll();

 private:
  absl::Mutex mu_;
  std::set<std::shared_ptr<JobStreamState>> streams_ ABSL_GUARDED_BY(mu_);
};

// Creates the reactor for AdaptDomain / WatchJob. `job` is the current snapshot.
grpc::ServerWriteReactor<v1::JobEvent>* StartJobStream(ServiceContext* ctx, const core::JobRecord& job,
                                                       int64_t after_seq, bool skip_preview_replay,
                                                       std::unique_ptr<RpcScope> scope);

}  // namespace ganserve::server

#endif  // GANSERVE_SERVER_STREAMS_JOB_STREAM_H_
