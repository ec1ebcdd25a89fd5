// ganserve's command-line flags, each with a GANSERVE_* environment twin.
#ifndef GANSERVE_SERVER_OPTIONS_H_
#define GANSERVE_SERVER_OPTIONS_H_

#include <string>

#include "absl/status/statusor.h"

namespace ganserve::server {

struct ServerOptions {
  std::string listen = "127.0.0.1:50051";
  // Prometheus /metrics; empty disables the exposer.
  std::string metrics_listen = "127.0.0.1:9464";
  // A second, plaintext gRPC server with only the health service (Kubernetes probes
  // cannot speak TLS); empty = health only on the main port.
  std::string health_listen;
  // TLS for the main port: certificate chain and key (PEM). With a client CA, mutual TLS:
  // clients must present a certificate it signed.
  std::string tls_cert_file, tls_key_file, tls_client_ca_file;
  // Bearer tokens with scopes (server/auth.h); empty = no token checks.
  std::string auth_tokens_file;
  std::string data_dir = "./data";
  std::string model_repository = "./models";
  std::string device = "auto";
  // CLIP arithmetic: auto (fp16 on CUDA, as OpenAI runs CLIP; fp32 elsewhere) | fp32 |
  // fp16 (CUDA only) | bf16.
  std::string clip_precision = "auto";
  std::string log_level = "info";   // trace debug info warn error
  std::string log_format = "text";  // text | json
  int max_message_mb = 32;
  int max_interactive_queue = 256;
  int max_batch_queue = 64;
  int max_training_queue = 16;
  // LibTorch intra-op threads; 0 = the CPUs available to the process (cgroup-aware).
  int threads = 0;
  // glibc keeps freed host memory for reuse (faster CPU inference, RSS stays at its peak).
  bool retain_host_memory = true;
  // How long in-flight calls may drain at SIGTERM before they are cancelled.
  int shutdown_grace_seconds = 20;
  // Per-request limits.
  int max_images_per_request = 1024;
  int max_batch_size = 64;
  // Concurrent GenerateSamples / Edit batches for the same model and settings render
  // as one generator call of up to this many images (0 = every request alone).
  int max_coalesced_images = 32;
  // Training checkpoint interval in steps (0 = never).
  int checkpoint_every = 50;
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
