// ganserve's command-line flags, each with a GANSERVE_* environment twin.
#ifndef GANSERVE_SERVER_OPTIONS_H_
#define GANSERVE_SERVER_OPTIONS_H_

#include <string>

#include "absl/status/statusor.h"
#include "core/service/application.h"

namespace ganserve::server {

struct ServerOptions {
  std::string listen = "127.0.0.1:50051";
  // Prometheus /metrics; empty disables the exposer.
  std::string metrics_listen = "127.0.0.1:9464";
  // A second, plaintext gRPC server with only the health service (Kubernetes probes
  // cannot speak TLS); empty = health only on the main port.
  std::string health_listen;
  // HTTP/JSON gateway (server/http_gateway.h); empty = off. TLS with the main port's
  // certificate when one is set.
  std::string http_listen;
  // gRPC connections are closed (GOAWAY) after this many seconds, open calls after the
  // grace more; 0 = never. For client-side load balancing over many replicas.
  int max_connection_age_seconds = 0;
  int max_connection_age_grace_seconds = 30;
  // HTTP connections served at once (an open event stream holds one).
  int http_workers = 64;
  // The HMAC key of webhook signatures (server/webhooks.h); empty = requests with a
  // notify_url are refused.
  std::string webhook_secret_file;
  // TLS for the main port: certificate chain and key (PEM). With a client CA, mutual TLS:
  // clients must present a certificate it signed.
  std::string tls_cert_file, tls_key_file, tls_client_ca_file;
  // Bearer tokens with scopes (server/auth.h); empty = no token checks.
  std::string auth_tokens_file;
  // Shared files of replicas that share no folder (README "Scaling out"): checkpoints,
  // adapted models, inversions, statistics. s3://bucket[/prefix] (endpoint, region and
  // keys from the AWS_* environment) or a folder; empty = none (the local folders only).
  std::string artifact_store;
  // Downloads from it, by content, on local disk (default DATA_DIR/artifact-cache);
  // least recently used files go past the size.
  std::string artifact_cache_dir;
  int64_t artifact_cache_mb = 20480;
  // Data and model folders, device, queues, request limits: the core's settings.
  core::service::ApplicationOptions app;
  std::string log_level = "info";   // trace debug info warn error
  std::string log_format = "text";  // text | json
  // inference, training or both (comma-separated): sets app.inference_role / training_role.
  std::string roles = "inference,training";
  // LibTorch intra-op threads; 0 = the CPUs available to the process (cgroup-aware).
  int threads = 0;
  // glibc keeps freed host memory for reuse (faster CPU inference, RSS stays at its peak).
  bool retain_host_memory = true;
  // Model memory budgets in MiB (0 = no limit) and what loads at start-up; they become
  // app.residency.
  int64_t model_memory_budget_mb = 0, model_host_memory_budget_mb = 0;
  std::string preload_models = "all";
  // How long in-flight calls may drain at SIGTERM before they are cancelled.
  int shutdown_grace_seconds = 20;
};

struct ParsedOptions {
  ServerOptions options;
  // Set when parsing ended the program (--help, --version, or an error): exit with
  // `exit_code` after printing `message`.
  bool exit = false;
  int exit_code = 0;
  std::string message;
};

// Parses flags; environment variables fill flags not given on the command line.
ParsedOptions ParseServerOptions(int argc, const char* const* argv);

}  // namespace ganserve::server

#endif  // GANSERVE_SERVER_OPTIONS_H_
