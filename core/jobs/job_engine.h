// Runs long jobs (adaptation, inversion) step by step on a device executor, with a
// durable job store, live event fan-out, cancellation, time limits, checkpoints and
// crash recovery. Knows nothing of gRPC: requests are opaque documents that a
// RunnerFactory turns into runners, and events leave through an encoder and callbacks.
#ifndef GANSERVE_CORE_JOBS_JOB_ENGINE_H_
#define GANSERVE_CORE_JOBS_JOB_ENGINE_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "core/jobs/job_store.h"
#include "core/runtime/device_executor.h"
#include "core/util/shared_files.h"
#include "core/util/tensor_data.h"

namespace ganserve::core {

struct EncodedImage {
  std::string png;
  int width = 0;
  int height = 0;
};

// One event of a job, before serialisation.
struct JobEvent {
  enum class Type { kState, kProgress, kPreview, kHeartbeat };
  Type type = Type::kState;
  int64_t seq = 0;  // 0 for heartbeats (not stored)
  int64_t time_ms = 0;
  JobRecord job;
  std::map<std::string, float> losses;                        // kProgress
  float steps_per_second = 0;                                 // kProgress
  std::string phase;                                          // kProgress: the runner's phase, if it has phases
  std::vector<EncodedImage> preview_source, preview_current;  // kPreview
  // An event another replica wrote, read back from the store: the encoder's bytes as
  // stored (only seq and type are set besides).
  std::string stored;
};

// The work of one job. Every method but the constructor runs on the device executor's
// thread, one at a time.
class JobRunner {
 public:
  virtual ~JobRunner() = default;
  virtual int64_t total_steps() const = 0;
  virtual int64_t step() const = 0;
  // One unit of work; returns its loss terms.
  virtual absl::StatusOr<std::map<std::string, float>> Step() = 0;
  // The phase the next Step() runs, for jobs with several ("reference_search",
  // "fine_tune"); empty for single-phase jobs.
  virtual std::string phase() const { return {}; }
  // Preview images [P, 3, H, W] in [-1, 1]: the source grid (asked once) and the current one.
  virtual absl::StatusOr<FloatTensor> PreviewImages(bool source) = 0;
  virtual absl::Status SaveCheckpoint(const std::string& path) = 0;
  virtual absl::Status RestoreCheckpoint(const std::string& path) = 0;
  // After the last step: stores the result and returns its id (a model name, ...).
  virtual absl::StatusOr<std::string> Finish() = 0;
};

// Receives job metrics; called on engine threads, must be cheap. Thread-safe.
class JobObserver {
 public:
  virtual ~JobObserver() = default;
  virtual void OnJobEnded(JobKind kind, JobState state, double seconds) = 0;
  virtual void OnStep(JobKind kind, double seconds) = 0;
  virtual void OnJobsQueued(size_t depth) = 0;
  // The final record of a job that just ended (after its terminal event is stored).
  virtual void OnJobFinished(const JobRecord& /*job*/) {}
};

// Builds the runner of a stored job (from JobRecord.request). Runs on the executor.
using RunnerFactory = std::function<absl::StatusOr<std::unique_ptr<JobRunner>>(const JobRecord& job)>;

// Thread-safe.
class JobEngine {
 public:
  struct Options {
    std::string checkpoint_dir;  // training checkpoints (under the data directory)
    int checkpoint_every = 50;   // steps; 0 = never
    int preview_every = 50;      // steps; 0 = never (per-job override in the record)
    size_t max_queued = 16;      // queued jobs; past it Submit is ResourceExhausted
    double heartbeat_seconds = 15;
    int default_max_run_seconds = 6 * 3600;
    JobObserver* observer = nullptr;  // not owned; may be null
    // Not owned; may be null. When set, every checkpoint is uploaded there too and the
    // job's record points at it (JobRecord::checkpoint, under the lease's fence), so a
    // replica that takes the job over resumes from it without a shared folder.
    SharedFiles* shared = nullptr;
    // Replicas sharing one store: jobs are claimed from it under leases instead of run
    // by the engine they were submitted to (README "Scaling out").
    struct Leases {
      bool enabled = false;
      std::string worker;         // this replica's name in the store
      double lease_seconds = 60;  // a claim's lease, renewed while the job runs
      double renew_seconds = 10;  // renewal period of the running job's lease
      double poll_seconds = 1;    // claims, reaps and other replicas' events
      int max_attempts = 3;       // claims a job may have before it fails
      double retry_backoff_seconds = 10;
      std::vector<JobKind> kinds;  // the kinds this replica claims; empty = all
      bool claims = true;          // false: it claims none (an inference-only replica)
      bool announcements = true;   // follow the store's announcements (when it has them)
      // InvalidArgument naming the flag's rule that these break (when enabled).
      absl::Status Validate() const;
    };
    Leases leases;
  };
  // Serialises an event for the store (the edge's wire format).
  using Encoder = std::function<std::string(const JobEvent&)>;
  using Listener = std::function<void(const JobEvent&)>;

  // Does not start running; call Start() after registering factories.
  JobEngine(Options options, JobStore* store, DeviceExecutor* executor, Encoder encoder);
  ~JobEngine();

  void RegisterFactory(JobKind kind, RunnerFactory factory);
  // Recovers unfinished jobs (queued ones run again, running ones resume from their
  // checkpoint or end FAILED with the reason) and starts the scheduler thread. With
  // leases: recovers nothing (the store's reaper requeues jobs whose holder vanished)
  // and starts claiming.
  absl::Status Start();
  // Stops after the current step (the job stays RUNNING in the store, with its
  // checkpoint, so the next start resumes it; with leases, its lease is released so
  // another replica takes it over) and joins the thread.
  void Shutdown();

  // Creates and queues a job (job.id, kind, model, request, request_id, request_hash,
  // total_steps set by the caller). With a request_id already used: the existing job if
  // the hash matches, else AlreadyExists. ResourceExhausted when the queue is full.
  // `existed` tells which happened.
  absl::StatusOr<JobRecord> Submit(JobRecord job, bool* existed = nullptr);
  // The idempotency rule, once: the job an earlier request with this request_id created
  // (its current snapshot) when its stored hash is `request_hash`, or `legacy_hash` when
  // given (the digest an older version stored for the same request); AlreadyExists when
  // it is neither; nullopt when the id is empty or unused.
  absl::StatusOr<std::optional<JobRecord>> FindRetry(const std::string& request_id, const std::string& request_hash,
                                                     const std::string& legacy_hash = "");
  // Idempotent. Queued jobs end CANCELLED at once; a running job within one step (with
  // leases, on another replica: within one lease renewal and one step).
  absl::StatusOr<JobRecord> Cancel(const std::string& id);
  // The current snapshot, with the live queue position (with leases: in the store's
  // queue, oldest first; a job retried after a lost lease may wait out its backoff).
  absl::StatusOr<JobRecord> Get(const std::string& id);

  // Live events of one job from now on (heartbeats included; with leases also those
  // other replicas store, within poll_seconds, as JobEvent::stored). Returns a token for
  // Unsubscribe. Listeners run on engine threads and must not block.
  int64_t Subscribe(const std::string& job_id, Listener listener);
  void Unsubscribe(int64_t token);

  size_t queue_depth() const;

 private:
  struct Running;
  struct Subscription {
    std::string job_id;
    Listener listener;
    int64_t stored_seq = 0;  // with leases: the newest stored event it has been given
  };
  void Loop();
  // With leases: reaps, claims and runs, waking on Submit or every poll_seconds.
  void ClaimLoop();
  // With leases, once per poll period: the shared queue's depth to the observer, and the
  // reaper (expired leases requeued or failed).
  void LookAfterTheQueue();
  // With leases: renews the running job's lease; a lost lease or a cancel request made
  // on another replica reaches the running job through the flags it checks every step.
  void RenewLeases();
  // With leases: hands subscribers the events other replicas stored.
  void TailStoredEvents();
  // With leases on a store that announces claimable work: claims at once.
  void FollowAnnouncements();
  void RunJob(JobRecord job);
  // LeaseLost when the job's lease moved on (nothing was written or fanned out).
  absl::Status Emit(JobRecord& job, JobEvent::Type type, JobEvent ev = {});
  void Heartbeats();
  absl::Status RunOnExecutor(const std::function<absl::Status()>& fn);
  std::string CheckpointPath(const std::string& id) const;
  // Saves the runner's checkpoint; with shared files also uploads it and points the
  // record at it. LeaseLost when the pointer's write was fenced off; an upload or a
  // pointer write that fails otherwise is logged and skipped (the previous pointer
  // stays, the job goes on).
  absl::Status SaveCheckpoint(JobRecord& job, JobRunner& runner, const std::string& path);
  // With shared files: the job's shared checkpoint at `path` unless the file there is it.
  void FetchCheckpoint(const JobRecord& job, const std::string& path);

  const Options options_;
  JobStore* const store_;
  DeviceExecutor* const executor_;
  const Encoder encoder_;
  std::map<JobKind, RunnerFactory> factories_;

  absl::Mutex emit_mu_;  // orders the store writes of events
  mutable absl::Mutex mu_;
  // Without leases: the queued jobs in claim order (higher priority first, then as
  // submitted).
  struct Queued {
    std::string id;
    int priority = 0;
  };
  void Enqueue(const JobRecord& job) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::deque<Queued> queue_ ABSL_GUARDED_BY(mu_);
  std::string running_id_ ABSL_GUARDED_BY(mu_);
  int64_t running_epoch_ ABSL_GUARDED_BY(mu_) = 0;
  bool cancel_running_ ABSL_GUARDED_BY(mu_) = false;
  bool lease_lost_ ABSL_GUARDED_BY(mu_) = false;
  bool wake_ ABSL_GUARDED_BY(mu_) = false;  // a job was submitted or announced: claim now
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  int64_t next_token_ ABSL_GUARDED_BY(mu_) = 1;
  std::map<int64_t, Subscription> listeners_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
  std::thread heartbeat_thread_;
  std::thread lease_thread_;
  std::thread announce_thread_;
};

}  // namespace ganserve::core

#endif  // GANSERVE_CORE_JOBS_JOB_ENGINE_H_
