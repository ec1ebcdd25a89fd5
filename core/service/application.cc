#include "core/service/application.h"

#include <spdlog/spdlog.h>

#include <unistd.h>

#include <cstdio>
#include <filesystem>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/jobs/postgres_job_store.h"
#include "core/jobs/sqlite_job_store.h"
#include "core/service/job_runners.h"
#include "core/util/file_util.h"
#include "core/util/status_macros.h"

namespace ganserve::core::service {
namespace {

// Training snapshots expire with their job.
class RepositorySnapshots : public JobArtifacts {
 public:
  explicit RepositorySnapshots(ModelRepository* repo) : repo_(repo) {}
  const char* what() const override { return "snapshots"; }
  std::vector<std::string> JobsWithArtifacts() override { return repo_->SnapshotJobs(); }
  int64_t ExpireArtifacts(const std::string& job_id) override { return repo_->ExpireSnapshots(job_id); }

 private:
  ModelRepository* const repo_;
};

}  // namespace

namespace {
// HOSTNAME-PID: a Kubernetes pod's name, and unique among processes on one machine.
std::string DefaultWorkerName() {
  char host[256] = {};
  if (gethostname(host, sizeof(host) - 1) != 0 || host[0] == '\0') std::snprintf(host, sizeof(host), "ganserve");
  return absl::StrCat(host, "-", getpid());
}
}  // namespace

absl::StatusOr<std::unique_ptr<Application>> Application::Create(const ApplicationOptions& o) {
  std::unique_ptr<Application> app(new Application());
  RETURN_IF_ERROR(MakeDirs(o.data_dir));
  const bool shared = absl::StartsWith(o.job_store, "postgresql://") || absl::StartsWith(o.job_store, "postgres://");
  if (!o.inference_role && !o.training_role) return absl::InvalidArgumentError("give a replica at least one role");
  if (!o.training_role && !shared) {
    return absl::InvalidArgumentError(
        "a replica without the training role needs a shared job store (--job_store postgresql://...) whose other "
        "replicas run the jobs; with sqlite this server runs every job itself");
  }
  if (o.job_store.empty() || o.job_store == "sqlite") {
    ASSIGN_OR_RETURN(app->store_, SqliteJobStore::Open((std::filesystem::path(o.data_dir) / "jobs.db").string()));
  } else if (shared) {
    ASSIGN_OR_RETURN(app->store_, PostgresJobStore::Open(o.job_store));
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("--job_store must be 'sqlite' or a postgresql:// URL, not '", o.job_store, "'"));
  }
  if (o.legacy_decoder) {
    ASSIGN_OR_RETURN(UpgradeReport up, UpgradeStoredRequests(app->store_.get(), o.legacy_decoder));
    if (up.converted > 0 || up.failed > 0) {
      spdlog::info("job store upgraded: {} stored request(s) converted to specs, {} could not be", up.converted,
                   up.failed);
    }
  }
  stylegan2::LoadOptions load;
  load.device = o.device;
  ASSIGN_OR_RETURN(auto clip_precision, clip::ParseClipPrecision(o.clip_precision));
  ASSIGN_OR_RETURN(app->repository_, ModelRepository::Create(o.model_repository, load, clip_precision, o.residency,
                                                             o.repository_observer));
  app->repository_->SetStyleClipDefault(o.styleclip_clip_model);
  app->repository_->SetSharedFiles(o.shared);
  app->shared_ = o.shared;
  app->shared_sync_seconds_ = o.shared_sync_seconds;

  DeviceExecutor::Options exec;
  exec.name = o.device;
  exec.max_queue = {static_cast<size_t>(o.max_interactive_queue), static_cast<size_t>(o.max_batch_queue),
                    static_cast<size_t>(o.max_training_queue)};
  exec.observer = o.executor_observer;
  app->executor_ = std::make_unique<DeviceExecutor>(exec);
  HostPool::Options host;
  host.threads = o.host_threads;
  app->host_pool_ = std::make_unique<HostPool>(host);
  RenderBatcher::Options batching;
  batching.max_images = o.max_coalesced_images;
  batching.max_waiting = static_cast<size_t>(o.max_interactive_queue);
  app->batcher_ = std::make_unique<RenderBatcher>(app->executor_.get(), batching, o.batch_observer);

  app->text_cache_ = std::make_unique<clip::TextEmbeddingCache>(8192);
  app->stats_cache_ = std::make_unique<GlobalStatsCache>();
  JobEngine::Options eng;
  eng.checkpoint_dir = (std::filesystem::path(o.data_dir) / "checkpoints").string();
  eng.checkpoint_every = o.checkpoint_every;
  eng.max_queued = static_cast<size_t>(o.max_training_queue);
  eng.observer = o.job_observer;
  eng.shared = o.shared;
  if (shared) {  // replicas share the jobs: each claims them under leases
    eng.leases = o.leases;
    eng.leases.enabled = true;
    eng.leases.claims = o.training_role;
    if (eng.leases.worker.empty()) eng.leases.worker = DefaultWorkerName();
  }
  app->engine_ = std::make_unique<JobEngine>(eng, app->store_.get(), app->executor_.get(), o.event_encoder);
  RegisterJobRunners(app->engine_.get(), app->repository_.get(), app->text_cache_.get(), o.data_dir);

  ServiceDeps deps;
  deps.repository = app->repository_.get();
  deps.store = app->store_.get();
  deps.engine = app->engine_.get();
  deps.text_cache = app->text_cache_.get();
  deps.stats_cache = app->stats_cache_.get();
  deps.observer = o.service_observer;
  deps.limits = o.limits;
  deps.data_dir = o.data_dir;
  deps.inference = o.inference_role;
  app->service_ = std::make_unique<Service>(std::move(deps));
  app->snapshots_ = std::make_unique<RepositorySnapshots>(app->repository_.get());
  app->inversions_ = std::make_unique<StoredInversions>(o.data_dir, o.shared);
  app->retention_ = std::make_unique<RetentionLoop>(
      app->store_.get(), eng.checkpoint_dir, o.retention, o.retention_observer,
      std::vector<JobArtifacts*>{app->snapshots_.get(), app->inversions_.get()}, o.shared);
  return app;
}

Application::~Application() { Shutdown(); }

int Application::LoadModelsAndStartJobs() {
  // No job runs yet: hidden work folders are leftovers of a crash mid-write.
  if (int stale = repository_->RemoveStaleWorkFolders(); stale > 0) {
    spdlog::warn("removed {} half-written model folder(s) left by an interrupted job", stale);
  }
  const int ready = repository_->LoadAll();
  if (shared_ != nullptr) {
    const auto synced = repository_->SyncShared();
    if (!synced.added.empty()) {
      spdlog::info("fetched {} model(s) other replicas published to {}", synced.added.size(), shared_->url());
    }
    sync_thread_ = std::thread([this, period = shared_sync_seconds_] { SyncSharedModels(period); });
  }
  if (absl::Status st = engine_->Start(); !st.ok()) spdlog::error("job engine did not start: {}", st.ToString());
  retention_->Start();
  return ready;
}

absl::Status Application::CheckDependencies() {
  if (absl::Status st = store_->CountQueued().status(); !st.ok()) {
    return absl::UnavailableError(absl::StrCat("the job store does not answer: ", st.message()));
  }
  if (shared_ != nullptr) {
    if (absl::Status st = shared_->Check(); !st.ok()) {
      return absl::UnavailableError(
          absl::StrCat("the artifact store ", shared_->url(), " does not answer: ", st.message()));
    }
  }
  return absl::OkStatus();
}

void Application::SyncSharedModels(int period_seconds) {
  while (!stop_sync_.WaitForNotificationWithTimeout(absl::Seconds(period_seconds))) repository_->SyncShared();
}

void Application::Shutdown() {
  if (shut_down_) return;
  shut_down_ = true;
  stop_sync_.Notify();
  if (sync_thread_.joinable()) sync_thread_.join();
  if (retention_ != nullptr) retention_->Stop();
  if (engine_ != nullptr) engine_->Shutdown();
  if (executor_ != nullptr) executor_->Shutdown();
  if (host_pool_ != nullptr) host_pool_->Shutdown();
}

}  // namespace ganserve::core::service
