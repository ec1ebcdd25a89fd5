// The composition of ganserve's core for one process: job store, model repository,
// device executor, host pool, render batcher, caches, job engine with its runners, and the
// Service facade. Edges (the gRPC server, later HTTP) hold one Application and call its
// Service; they own no state of their own beyond their connections.
#ifndef GANSERVE_CORE_SERVICE_APPLICATION_H_
#define GANSERVE_CORE_SERVICE_APPLICATION_H_

#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/synchronization/notification.h"
#include "core/jobs/job_engine.h"
#include "core/jobs/job_store.h"
#include "core/jobs/retention.h"
#include "core/models/clip/text_embedding_cache.h"
#include "core/registry/model_repository.h"
#include "core/runtime/device_executor.h"
#include "core/runtime/host_pool.h"
#include "core/runtime/render_batcher.h"
#include "core/service/request_upgrade.h"
#include "core/service/service.h"
#include "core/service/storage.h"

namespace ganserve::core::service {

// The process's settings (the server's flags bind to these fields). Component
// defaults are the components' own.
struct ApplicationOptions {
  std::string data_dir = "./data";  // job store, inversions, checkpoints
  // "sqlite" (data_dir/jobs.db) or a PostgreSQL URL (postgresql://user@host/db;
  // "postgresql://" alone = the PG* environment variables).
  std::string job_store = "sqlite";
  std::string model_repository = "./models";  // one folder per model
  std::string device = "auto";                // auto | cpu | cuda[:N]
  // CLIP arithmetic: auto (fp16 on CUDA, as OpenAI runs CLIP; fp32 elsewhere) | fp32 |
  // fp16 (CUDA only) | bf16.
  std::string clip_precision = "auto";
  // The CLIP model StyleCLIP's methods use when a request names none: the repository
  // name scripts/fetch-weights.sh gives ViT-B/32 (StyleCLIP's model).
  std::string styleclip_clip_model = Defaults::kStyleClipClipModel;
  Limits limits;
  // Model memory budgets and preloading (0 = no limit: every model stays resident).
  ResidencyOptions residency;
  RepositoryObserver* repository_observer = nullptr;
  // Queued device tasks per work class (interactive renders, inversion steps, training
  // jobs); past them requests are RESOURCE_EXHAUSTED.
  int max_interactive_queue = static_cast<int>(DeviceExecutor::Options{}.max_queue[0]);
  int max_batch_queue = static_cast<int>(DeviceExecutor::Options{}.max_queue[1]);
  int max_training_queue = static_cast<int>(JobEngine::Options{}.max_queued);
  // Concurrent GenerateSamples / Edit batches for the same model and settings render
  // as one generator call of up to this many images (0 = every request alone).
  int max_coalesced_images = RenderBatcher::Options{}.max_images;
  // Threads that encode rendered images and plan requests, beside the device's thread.
  int host_threads = HostPool::Options{}.threads;
  // What this replica does: serves GenerateSamples / Edit (inference) and runs jobs
  // (training: with a PostgreSQL job store it claims them under leases, as `leases`
  // says; the worker name defaults to HOSTNAME-PID).
  bool inference_role = true;
  bool training_role = true;
  JobEngine::Options::Leases leases;
  // Where checkpoints, adapted models, inversions and statistics go so that every
  // replica reaches them (not owned; null = only the local folders).
  SharedFiles* shared = nullptr;
  // Seconds between looks at the shared models (ModelRepository::SyncShared: fetch what
  // other replicas published, drop what they deleted).
  int shared_sync_seconds = 30;
  // Training checkpoint interval in steps (0 = never).
  int checkpoint_every = JobEngine::Options{}.checkpoint_every;
  // What finished jobs leave behind: events kept this long, passes this often.
  RetentionOptions retention;
  RetentionObserver* retention_observer = nullptr;
  // Observers (not owned; may be null) and the edge's event encoding for the store.
  ExecutorObserver* executor_observer = nullptr;
  JobObserver* job_observer = nullptr;
  ServiceObserver* service_observer = nullptr;
  RenderBatcher::BatchObserver batch_observer;
  JobEngine::Encoder event_encoder;
  // Converts requests stored by older versions; null leaves them (they then fail).
  LegacyRequestDecoder legacy_decoder;
};

// Thread-safe after Create. Shutdown is idempotent.
class Application {
 public:
  // Opens (and upgrades) the job store and prepares everything; loads no model yet.
  static absl::StatusOr<std::unique_ptr<Application>> Create(const ApplicationOptions& options);
  ~Application();

  // Removes work folders a crash left, scans the repository and preloads models (as
  // many as the memory budgets hold), then recovers and starts the jobs. Returns the
  // number of resident models.
  int LoadModelsAndStartJobs();
  // The running job stops after its current step (checkpointed; it resumes at the next
  // start); queued device work is answered UNAVAILABLE; threads are joined.
  void Shutdown();

  // OK when what this replica shares with others answers: the job store and the
  // shared files; else the first failure, saying which.
  absl::Status CheckDependencies();

  Service& service() { return *service_; }
  JobEngine& engine() { return *engine_; }
  JobStore& store() { return *store_; }
  DeviceExecutor& executor() { return *executor_; }
  RenderBatcher& batcher() { return *batcher_; }
  HostPool& host_pool() { return *host_pool_; }
  ModelRepository& repository() { return *repository_; }

 private:
  Application() = default;
  std::unique_ptr<JobStore> store_;
  std::unique_ptr<ModelRepository> repository_;
  // Declared before the executor so that they outlive it: the executor's shutdown
  // answers queued work through the batcher, whose callers may post to the pool.
  std::unique_ptr<HostPool> host_pool_;
  std::unique_ptr<RenderBatcher> batcher_;
  std::unique_ptr<DeviceExecutor> executor_;
  std::unique_ptr<clip::TextEmbeddingCache> text_cache_;
  std::unique_ptr<GlobalStatsCache> stats_cache_;
  std::unique_ptr<JobEngine> engine_;
  std::unique_ptr<Service> service_;
  // What expires with finished jobs: training snapshots, unpinned inversions.
  std::unique_ptr<JobArtifacts> snapshots_;
  std::unique_ptr<JobArtifacts> inversions_;
  std::unique_ptr<RetentionLoop> retention_;
  SharedFiles* shared_ = nullptr;
  int shared_sync_seconds_ = 30;
  // With shared files: ModelRepository::SyncShared every shared_sync_seconds.
  void SyncSharedModels(int period_seconds);
  std::thread sync_thread_;
  absl::Notification stop_sync_;
  bool shut_down_ = false;
};

}  // namespace ganserve::core::service

#endif  // GANSERVE_CORE_SERVICE_APPLICATION_H_
