#include "server/server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <spdlog/spdlog.h>

#include <filesystem>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "core/service/application.h"
#include "core/storage/artifact_cache.h"
#include "core/storage/artifact_store.h"
#include "core/storage/shared_files.h"
#include "core/util/file_util.h"
#include "core/util/status_macros.h"
#include "server/api/api.h"
#include "server/gan_service.h"
#include "server/http_gateway.h"
#include "server/metrics.h"
#include "server/parse_failure_interceptor.h"
#include "server/streams/job_stream.h"
#include "server/webhooks.h"

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
  absl::Notification stopping;  // ends the readiness checks
  absl::Mutex mu;
  bool shut_down ABSL_GUARDED_BY(mu) = false;
  absl::Notification finished;
  std::atomic<bool> ready{false};
};

GanServer::GanServer() : state_(std::make_unique<State>()) {}

GanServer::~GanServer() { Shutdown(absl::Seconds(1)); }

int GanServer::http_port() const { return http_ != nullptr ? http_->port() : 0; }

bool GanServer::ready() const { return state_->ready.load(); }
void GanServer::WaitUntilLoaded() { state_->loaded.WaitForNotification(); }
void GanServer::Wait() { state_->finished.WaitForNotification(); }

absl::StatusOr<std::unique_ptr<GanServer>> GanServer::Start(const ServerOptions& options) {
  std::unique_ptr<GanServer> s(new GanServer());
  s->metrics_ = std::make_unique<Metrics>();
  Metrics* metrics = s->metrics_.get();
  core::service::ApplicationOptions app = options.app;
  app.executor_observer = metrics;
  app.job_observer = metrics;
  if (!options.webhook_secret_file.empty()) {
    WebhookOptions w;
    ASSIGN_OR_RETURN(w.secret, ReadWebhookSecret(options.webhook_secret_file));
    s->webhooks_ = std::make_unique<Webhooks>(std::move(w), metrics, metrics);
    app.job_observer = s->webhooks_.get();
  }
  if (!options.artifact_store.empty()) {
    ASSIGN_OR_RETURN(s->artifact_store_, core::storage::OpenArtifactStore(options.artifact_store));
    const std::string cache_dir = options.artifact_cache_dir.empty()
                                      ? (std::filesystem::path(options.app.data_dir) / "artifact-cache").string()
                                      : options.artifact_cache_dir;
    s->artifact_cache_ = std::make_unique<core::storage::ArtifactCache>(s->artifact_store_.get(), cache_dir,
                                                                        options.artifact_cache_mb << 20);
    s->shared_files_ = core::storage::NewSharedFiles(s->artifact_store_.get(), s->artifact_cache_.get());
    if (absl::Status st = s->shared_files_->Check(); !st.ok()) {
      spdlog::warn("artifact store {} does not answer yet: {}", s->shared_files_->url(), st.ToString());
    }
    app.shared = s->shared_files_.get();
    spdlog::info("shared files in {} (local copies in {}, up to {} MiB)", s->shared_files_->url(), cache_dir,
                 options.artifact_cache_mb);
  }
  app.service_observer = metrics;
  app.retention_observer = metrics;
  app.repository_observer = metrics;
  app.batch_observer = [metrics](int images, int requests) { metrics->RecordRenderBatch(images, requests); };
  app.event_encoder = api::EncodeJobEvent;
  app.legacy_decoder = api::DecodeLegacyRequest;
  ASSIGN_OR_RETURN(s->app_, core::service::Application::Create(app));
  s->streams_ = std::make_unique<JobStreamRegistry>();
  s->context_ = std::make_unique<ServiceContext>();
  s->context_->options = options;
  s->context_->app = s->app_.get();
  s->context_->metrics = metrics;
  s->context_->streams = s->streams_.get();
  s->context_->webhooks = s->webhooks_ != nullptr;
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
  builder.SetMaxReceiveMessageSize(options.app.limits.max_message_mb << 20);
  builder.SetMaxSendMessageSize(options.app.limits.max_message_mb << 20);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, 60000);
  if (options.max_connection_age_seconds > 0) {
    // Behind a headless Service with client-side round_robin, clients re-resolve only
    // when a connection closes: ending connections after an age spreads them over new
    // replicas. Open streams get the grace to finish; WatchJob callers re-attach.
    builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_MS, options.max_connection_age_seconds * 1000);
    builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_GRACE_MS, options.max_connection_age_grace_seconds * 1000);
  }
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 10000);
  builder.RegisterService(s->service_.get());
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> interceptors;
  interceptors.push_back(std::make_unique<ParseFailureInterceptorFactory>(metrics));
  builder.experimental().SetInterceptorCreators(std::move(interceptors));
  s->server_ = builder.BuildAndStart();
  if (s->server_ == nullptr || s->port_ == 0) {
    s->app_->Shutdown();
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", options.listen, " (address in use or not available?)"));
  }
  if (!options.http_listen.empty()) {
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(static_cast<int>(options.app.limits.max_message_mb << 20));
    args.SetMaxSendMessageSize(static_cast<int>(options.app.limits.max_message_mb << 20));
    HttpGatewayOptions h;
    h.listen = options.http_listen;
    h.max_body_bytes = static_cast<size_t>(options.app.limits.max_message_mb) << 20;
    h.workers = static_cast<size_t>(options.http_workers);
    h.tls_cert_file = options.tls_cert_file;
    h.tls_key_file = options.tls_key_file;
    auto gateway = HttpGateway::Start(h, s->server_->InProcessChannel(args));
    if (!gateway.ok()) {
      s->server_->Shutdown();
      s->app_->Shutdown();
      return gateway.status();
    }
    s->http_ = std::move(*gateway);
    spdlog::info("HTTP/JSON gateway on {} (port {})", options.http_listen, s->http_->port());
  }
  if (!options.health_listen.empty()) {
    grpc::ServerBuilder hb;
    hb.AddListeningPort(options.health_listen, grpc::InsecureServerCredentials(), &s->health_port_);
    s->health_server_ = hb.BuildAndStart();
    if (s->health_server_ == nullptr || s->health_port_ == 0) {
      s->server_->Shutdown();
      s->app_->Shutdown();
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
      s->app_->Shutdown();
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
    // Jobs need their models: they are recovered and started once the models loaded.
    const int ready = self->app_->LoadModelsAndStartJobs();
    int failed = 0;
    int unloaded = 0;
    for (const auto& m : self->app_->repository().List()) {
      if (m.state == core::ModelState::kFailed) {
        ++failed;
        spdlog::error("model '{}' failed to load: {}", m.name, m.error);
      } else if (m.state == core::ModelState::kReady) {
        spdlog::info("model '{}' ready: {} {} px{}", m.name, core::ModelKindName(m.kind), m.resolution,
                     m.pinned ? " (pinned)" : "");
      } else {
        ++unloaded;
      }
    }
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    spdlog::info("model repository scanned in {:.2f} s: {} resident, {} load on first use, {} failed", secs, ready,
                 unloaded, failed);
    {
      absl::MutexLock lock(&self->state_->mu);
      if (!self->state_->shut_down) {
        self->SetHealth("readiness", true);
        self->SetHealth("", true);
        self->state_->ready = true;
      }
    }
    self->state_->loaded.Notify();
  });
  const bool shared_store = !absl::StartsWith(options.app.job_store, "sqlite") && !options.app.job_store.empty();
  if (shared_store || s->shared_files_ != nullptr) {
    s->readiness_ = std::thread([self] { self->FollowDependencies(); });
  }
  return s;
}

void GanServer::FollowDependencies() {
  state_->loaded.WaitForNotification();
  bool up = true;
  while (!state_->stopping.WaitForNotificationWithTimeout(kDependencyCheckPeriod)) {
    const absl::Status st = app_->CheckDependencies();
    absl::MutexLock lock(&state_->mu);
    if (state_->shut_down) return;
    if (st.ok() != up) {
      up = st.ok();
      if (up) {
        spdlog::info("the job store and the artifact store answer again: ready");
      } else {
        spdlog::warn("not ready: {}", st.ToString());
      }
      SetHealth("readiness", up);
      SetHealth("", up);
      state_->ready = up;
    }
  }
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
  state_->stopping.Notify();
  if (readiness_.joinable()) readiness_.join();
  // Job streams would never end by themselves: close them so callers re-attach elsewhere.
  if (streams_ != nullptr) streams_->CloseAll();
  // HTTP callers go through the gRPC server: stop taking them first.
  if (http_ != nullptr) http_.reset();
  if (server_ != nullptr) server_->Shutdown(std::chrono::system_clock::now() + absl::ToChronoMilliseconds(grace));
  // The running job stops after its current step, checkpointed, and resumes at the next start.
  if (app_ != nullptr) app_->Shutdown();
  if (health_server_ != nullptr) health_server_->Shutdown(std::chrono::system_clock::now());
  spdlog::info("shutdown complete");
  state_->finished.Notify();
}

}  // namespace ganserve::server
