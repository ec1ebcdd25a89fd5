#include "server/server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <spdlog/spdlog.h>

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "core/jobs/job_engine.h"
#include "core/jobs/sqlite_job_store.h"
#include "core/models/clip/text_embedding_cache.h"
#include "core/registry/model_repository.h"
#include "core/runtime/device_executor.h"
#include "core/util/file_util.h"
#include "core/util/status_macros.h"
#include "server/adapt_job.h"
#include "server/gan_service.h"
#include "server/invert_job.h"
#include "server/job_stream.h"
#include "server/metrics.h"

namespace ganserve::server {
namespace {

// Plaintext, TLS, or mutual TLS for the main port, from the options.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> ServerCredentials(const ServerOptions& o) {
  if (o.tls_cert_file.empty() != o.tls_key_file.empty()) {
    return absl::InvalidArgumentError("TLS needs both --tls_cert_file and --tls_key_file");
  }
  if (o.tls_cert_file.empty()) {
    if (!o.tls_client_ca_file.empty()) {
      return absl::InvalidArgumentError("--tls_client_ca_file (mutual TLS) needs --tls_cert_file and --tls_key_file");
    }
    return grpc::InsecureServerCredentials();
  }
  auto read = [](const std::string& path, const char* what) -> absl::StatusOr<std::string> {
    auto pem = core::ReadFile(path, 1 << 20);
    if (!pem.ok()) return absl::Status(pem.status().code(), absl::StrCat(what, ": ", pem.status().message()));
    if (pem->find("-----BEGIN") == std::string::npos) {
      return absl::InvalidArgumentError(absl::StrCat(what, " ", path, " is not PEM"));
    }
    return pem;
  };
  grpc::SslServerCredentialsOptions ssl(o.tls_client_ca_file.empty()
                                            ? GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE
                                            : GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  ASSIGN_OR_RETURN(std::string cert, read(o.tls_cert_file, "TLS certificate"));
  ASSIGN_OR_RETURN(std::string key, read(o.tls_key_file, "TLS key"));
  ssl.pem_key_cert_pairs.push_back({key, cert});
  if (!o.tls_client_ca_file.empty()) {
    ASSIGN_OR_RETURN(ssl.pem_root_certs, read(o.tls_client_ca_file, "TLS client CA"));
  }
  spdlog::info("TLS on the main port{}", o.tls_client_ca_file.empty() ? "" : " with client certificates (mTLS)");
  return grpc::SslServerCredentials(ssl);
}

}  // namespace

struct GanServer::State {
  absl::Notification loaded;
  absl::Mutex mu;
  bool shut_down ABSL_GUARDED_BY(mu) = false;
  absl::Notification finished;
  std::atomic<bool> ready{false};
};

GanServer::GanServer() : state_(std::make_unique<State>()) {}

GanServer::~GanServer() { Shutdown(absl::Seconds(1)); }

bool GanServer::ready() const { return state_->ready.load(); }
void GanServer::WaitUntilLoaded() { state_->loaded.WaitForNotification(); }
void GanServer::Wait() { state_->finished.WaitForNotification(); }

absl::StatusOr<std::unique_ptr<GanServer>> GanServer::Start(const ServerOptions& options) {
  std::unique_ptr<GanServer> s(new GanServer());
  s->metrics_ = std::make_unique<Metrics>();
  RETURN_IF_ERROR(core::MakeDirs(options.data_dir));
  ASSIGN_OR_RETURN(auto store, core::SqliteJobStore::Open((std::filesystem::path(options.data_dir) / "jobs.db").string()));
  s->job_store_ = std::move(store);
  core::stylegan2::LoadOptions load;
  load.device = options.device;
  ASSIGN_OR_RETURN(auto clip_precision, core::clip::ParseClipPrecision(options.clip_precision));
  ASSIGN_OR_RETURN(s->repository_, core::ModelRepository::Create(options.model_repository, load, clip_precision));

  core::DeviceExecutor::Options exec;
  exec.name = options.device;
  exec.max_queue = {static_cast<size_t>(options.max_interactive_queue), static_cast<size_t>(options.max_batch_queue),
                    static_cast<size_t>(options.max_training_queue)};
  exec.observer = s->metrics_.get();
  s->executor_ = std::make_unique<core::DeviceExecutor>(exec);
  RenderBatcher::Options batching;
  batching.max_images = options.max_coalesced_images;
  Metrics* metrics = s->metrics_.get();
  s->batcher_ = std::make_unique<RenderBatcher>(
      s->executor_.get(), batching, [metrics](int images, int requests) { metrics->RecordRenderBatch(images, requests); });

  s->text_cache_ = std::make_unique<core::clip::TextEmbeddingCache>(8192);
  s->stats_cache_ = std::make_unique<GlobalStatsCache>();
  s->streams_ = std::make_unique<JobStreamRegistry>();
  core::JobEngine::Options eng;
  eng.checkpoint_dir = (std::filesystem::path(options.data_dir) / "checkpoints").string();
  eng.checkpoint_every = options.checkpoint_every;
  eng.max_queued = static_cast<size_t>(options.max_training_queue);
  eng.observer = s->metrics_.get();
  s->engine_ = std::make_unique<core::JobEngine>(eng, s->job_store_.get(), s->executor_.get(), EncodeJobEvent);
  s->engine_->RegisterFactory(core::JobKind::kAdapt, AdaptRunnerFactory(s->repository_.get(), s->text_cache_.get()));
  s->engine_->RegisterFactory(core::JobKind::kEditStats, EditStatsRunnerFactory(s->repository_.get()));
  s->engine_->RegisterFactory(core::JobKind::kInvert,
                              InvertRunnerFactory(s->repository_.get(),
                                                  (std::filesystem::path(options.data_dir) / "inversions").string()));

  s->context_ = std::make_unique<ServiceContext>();
  s->context_->options = options;
  s->context_->repository = s->repository_.get();
  s->context_->job_store = s->job_store_.get();
  s->context_->executor = s->executor_.get();
  s->context_->batcher = s->batcher_.get();
  s->context_->metrics = s->metrics_.get();
  s->context_->engine = s->engine_.get();
  s->context_->text_cache = s->text_cache_.get();
  s->context_->stats_cache = s->stats_cache_.get();
  s->context_->streams = s->streams_.get();
  s->service_ = std::make_unique<GanServiceImpl>(s->context_.get());

  if (!options.auth_tokens_file.empty()) {
    ASSIGN_OR_RETURN(s->auth_, TokenAuth::FromFile(options.auth_tokens_file));
    s->context_->auth = s->auth_.get();
    spdlog::info("bearer tokens required: {} token(s) from {}", s->auth_->size(), options.auth_tokens_file);
  }
  ASSIGN_OR_RETURN(std::shared_ptr<grpc::ServerCredentials> creds, ServerCredentials(options));

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  builder.AddListeningPort(options.listen, creds, &s->port_);
  builder.SetMaxReceiveMessageSize(options.max_message_mb << 20);
  builder.SetMaxSendMessageSize(options.max_message_mb << 20);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, 60000);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 10000);
  builder.RegisterService(s->service_.get());
  s->server_ = builder.BuildAndStart();
  if (s->server_ == nullptr || s->port_ == 0) {
    s->executor_->Shutdown();
    return absl::UnavailableError(absl::StrCat("cannot listen on ", options.listen,
                                               " (address in use or not available?)"));
  }
  if (!options.health_listen.empty()) {
    grpc::ServerBuilder hb;
    hb.AddListeningPort(options.health_listen, grpc::InsecureServerCredentials(), &s->health_port_);
    s->health_server_ = hb.BuildAndStart();
    if (s->health_server_ == nullptr || s->health_port_ == 0) {
      s->server_->Shutdown();
      s->executor_->Shutdown();
      return absl::UnavailableError(absl::StrCat("cannot listen on ", options.health_listen, " (health port)"));
    }
  }
  s->SetHealth("liveness", true);
  s->SetHealth("readiness", false);
  s->SetHealth("", false);  // overall: follows readiness
  if (!options.metrics_listen.empty()) {
    auto port = s->metrics_->StartExposer(options.metrics_listen);
    if (!port.ok()) {
      s->server_->Shutdown();
      s->executor_->Shutdown();
      return port.status();
    }
    s->metrics_port_ = *port;
  }
  spdlog::info("listening on {} (port {}), metrics on {} (port {}), health on {} (port {})", options.listen, s->port_,
               options.metrics_listen.empty() ? "off" : options.metrics_listen, s->metrics_port_,
               options.health_listen.empty() ? "the main port" : options.health_listen, s->health_port_);

  GanServer* self = s.get();
  s->loader_ = std::thread([self] {
    const auto t0 = std::chrono::steady_clock::now();
    // No job runs yet: hidden work folders are leftovers of a crash mid-write.
    if (int stale = self->repository_->RemoveStaleWorkFolders(); stale > 0) {
      spdlog::warn("removed {} half-written model folder(s) left by an interrupted job", stale);
    }
    int ready = self->repository_->LoadAll();
    int failed = 0;
    for (const auto& m : self->repository_->List()) {
      if (m.state == core::ModelState::kFailed) {
        ++failed;
        spdlog::error("model '{}' failed to load: {}", m.name, m.error);
      } else {
        spdlog::info("model '{}' ready: {} {} px", m.name, core::ModelKindName(m.kind), m.resolution);
      }
    }
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    self->metrics_->SetModelsLoaded(ready, failed);
    self->metrics_->RecordModelLoad(secs);
    spdlog::info("model repository loaded in {:.2f} s: {} ready, {} failed", secs, ready, failed);
    // Jobs need their models: recover and start running them only now.
    if (absl::Status st = self->engine_->Start(); !st.ok()) {
      spdlog::error("job engine did not start: {}", st.ToString());
    }
    absl::MutexLock lock(&self->state_->mu);
    if (!self->state_->shut_down) {
      self->SetHealth("readiness", true);
      self->SetHealth("", true);
      self->state_->ready = true;
    }
    self->state_->loaded.Notify();
  });
  return s;
}

void GanServer::SetHealth(const std::string& service, bool serving) {
  for (grpc::Server* srv : {server_.get(), health_server_.get()}) {
    if (srv == nullptr) continue;
    if (service.empty()) {
      srv->GetHealthCheckService()->SetServingStatus(serving);
    } else {
      srv->GetHealthCheckService()->SetServingStatus(service, serving);
    }
  }
}

void GanServer::Shutdown(absl::Duration grace) {
  {
    absl::MutexLock lock(&state_->mu);
    if (state_->shut_down) return;
    state_->shut_down = true;
    state_->ready = false;
    // Everything NOT_SERVING, on both ports.
    if (server_ != nullptr) server_->GetHealthCheckService()->Shutdown();
    if (health_server_ != nullptr) health_server_->GetHealthCheckService()->Shutdown();
  }
  spdlog::info("shutting down: draining calls for up to {}", absl::FormatDuration(grace));
  if (context_ != nullptr) context_->shutting_down = true;
  if (loader_.joinable()) loader_.join();
  // Job streams would never end by themselves: close them so callers re-attach elsewhere.
  if (streams_ != nullptr) streams_->CloseAll();
  if (server_ != nullptr) server_->Shutdown(std::chrono::system_clock::now() + absl::ToChronoMilliseconds(grace));
  // The running job stops after its current step, checkpointed, and resumes at the next start.
  if (engine_ != nullptr) engine_->Shutdown();
  if (executor_ != nullptr) executor_->Shutdown();
  if (health_server_ != nullptr) health_server_->Shutdown(std::chrono::system_clock::now());
  spdlog::info("shutdown complete");
  state_->finished.Notify();
}

}  // namespace ganserve::server
