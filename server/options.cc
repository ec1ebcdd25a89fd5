#include "server/options.h"

#include <CLI/CLI.hpp>

#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace ganserve::server {
namespace {

// Accepts HOST:PORT with a numeric port in [0, 65535] (0 picks a free port).
std::string CheckAddress(const std::string& v) {
  auto colon = v.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == v.size()) {
    return "expected HOST:PORT, e.g. 0.0.0.0:50051";
  }
  int port = 0;
  for (char c : v.substr(colon + 1)) {
    if (c < '0' || c > '9') return "the port must be a number";
    port = port * 10 + (c - '0');
    if (port > 65535) return "the port must be in [0, 65535]";
  }
  return "";
}

}  // namespace

ParsedOptions ParseServerOptions(int argc, const char* const* argv) {
  ParsedOptions out;
  ServerOptions& o = out.options;
  CLI::App app(
      "ganserve: StyleGAN2 domain adaptation, sampling, inversion and editing over gRPC.\n"
      "Every flag can also be set with the environment variable shown.");
  app.set_version_flag("--version", std::string("ganserve 0.1.0"));
  CLI::Validator addr(CheckAddress, "HOST:PORT");
  app.add_option("--listen", o.listen, "gRPC address")->envname("GANSERVE_LISTEN")->check(addr)->capture_default_str();
  app.add_option("--metrics_listen", o.metrics_listen, "Prometheus /metrics address (empty: off)")
      ->envname("GANSERVE_METRICS_LISTEN")
      ->capture_default_str();
  app.add_option("--health_listen", o.health_listen, "plaintext gRPC health-only server address (empty: off)")
      ->envname("GANSERVE_HEALTH_LISTEN")
      ->capture_default_str();
  app.add_option("--http_listen", o.http_listen,
                 "HTTP/JSON gateway address: every RPC at its REST path, OpenAPI at /v1/openapi.json (empty: off)")
      ->envname("GANSERVE_HTTP_LISTEN")
      ->capture_default_str();
  app.add_option("--max_connection_age_seconds", o.max_connection_age_seconds,
                 "close gRPC connections after this age so clients rebalance over replicas (0: never)")
      ->envname("GANSERVE_MAX_CONNECTION_AGE_SECONDS")
      ->check(CLI::Range(0, 86400 * 30))
      ->capture_default_str();
  app.add_option("--max_connection_age_grace_seconds", o.max_connection_age_grace_seconds,
                 "how long calls on an aged connection may go on before they are cut (WatchJob callers re-attach)")
      ->envname("GANSERVE_MAX_CONNECTION_AGE_GRACE_SECONDS")
      ->check(CLI::Range(0, 86400))
      ->capture_default_str();
  app.add_option("--http_workers", o.http_workers,
                 "HTTP connections served at once (each open event stream holds one); more wait their turn")
      ->envname("GANSERVE_HTTP_WORKERS")
      ->check(CLI::Range(1, 4096))
      ->capture_default_str();
  app.add_option(
         "--webhook_secret_file", o.webhook_secret_file,
         "HMAC-SHA256 key for webhook signatures (>= 16 bytes); without it requests with notify_url are refused")
      ->envname("GANSERVE_WEBHOOK_SECRET_FILE");
  app.add_option("--tls_cert_file", o.tls_cert_file, "PEM certificate chain: serve TLS on --listen")
      ->envname("GANSERVE_TLS_CERT_FILE");
  app.add_option("--tls_key_file", o.tls_key_file, "PEM private key for --tls_cert_file")
      ->envname("GANSERVE_TLS_KEY_FILE");
  app.add_option("--tls_client_ca_file", o.tls_client_ca_file, "PEM CA: require client certificates it signed (mTLS)")
      ->envname("GANSERVE_TLS_CLIENT_CA_FILE");
  app.add_option("--auth_tokens_file", o.auth_tokens_file, "bearer tokens, one 'TOKEN SCOPE[,SCOPE]' per line")
      ->envname("GANSERVE_AUTH_TOKENS_FILE");
  app.add_option("--job_store", o.app.job_store,
                 "sqlite (DATA_DIR/jobs.db) or postgresql://user@host/db (replicas sharing it claim jobs under "
                 "leases)")
      ->envname("GANSERVE_JOB_STORE")
      ->capture_default_str();
  app.add_option(
         "--roles", o.roles,
         "inference (GenerateSamples, Edit), training (runs jobs) or both, comma-separated; inference alone needs "
         "a postgresql:// job store")
      ->envname("GANSERVE_ROLES")
      ->check(CLI::IsMember({"inference", "training", "inference,training", "training,inference"}))
      ->capture_default_str();
  auto& leases = o.app.leases;
  app.add_option("--worker_id", leases.worker, "this replica's name in a shared job store (default: HOSTNAME-PID)")
      ->envname("GANSERVE_WORKER_ID");
  app.add_option("--lease_seconds", leases.lease_seconds,
                 "a claimed job's lease in a shared job store: past it without renewal, another replica takes over")
      ->envname("GANSERVE_LEASE_SECONDS")
      ->check(CLI::Range(1.0, 3600.0))
      ->capture_default_str();
  app.add_option("--lease_renew_seconds", leases.renew_seconds, "renewal period of a running job's lease")
      ->envname("GANSERVE_LEASE_RENEW_SECONDS")
      ->check(CLI::Range(0.05, 600.0))
      ->capture_default_str();
  app.add_option("--job_poll_seconds", leases.poll_seconds,
                 "shared job store: seconds between looks for claimable jobs, expired leases and other replicas' "
                 "events")
      ->envname("GANSERVE_JOB_POLL_SECONDS")
      ->check(CLI::Range(0.01, 60.0))
      ->capture_default_str();
  app.add_option("--job_max_attempts", leases.max_attempts,
                 "claims a job may have (its replica vanishing each time) before it fails")
      ->envname("GANSERVE_JOB_MAX_ATTEMPTS")
      ->check(CLI::Range(1, 100))
      ->capture_default_str();
  app.add_option("--job_retry_backoff_seconds", leases.retry_backoff_seconds,
                 "wait before a job whose lease expired may be claimed again, doubled per attempt (at most 64x)")
      ->envname("GANSERVE_JOB_RETRY_BACKOFF_SECONDS")
      ->check(CLI::Range(0.0, 3600.0))
      ->capture_default_str();
  app.add_option("--artifact_store", o.artifact_store,
                 "shared files of replicas (checkpoints, adapted models, inversions, statistics): "
                 "s3://bucket[/prefix] with AWS_ENDPOINT_URL, AWS_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, or "
                 "a folder; empty = local folders only")
      ->envname("GANSERVE_ARTIFACT_STORE");
  app.add_option("--artifact_cache_dir", o.artifact_cache_dir,
                 "local copies of shared files, by content (default DATA_DIR/artifact-cache)")
      ->envname("GANSERVE_ARTIFACT_CACHE_DIR");
  app.add_option("--artifact_cache_mb", o.artifact_cache_mb,
                 "size of --artifact_cache_dir in MiB; least recently used files go past it (0 = no limit)")
      ->envname("GANSERVE_ARTIFACT_CACHE_MB")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 30))
      ->capture_default_str();
  app.add_option("--shared_sync_seconds", o.app.shared_sync_seconds,
                 "with --artifact_store: seconds between looks for models other replicas published or deleted")
      ->envname("GANSERVE_SHARED_SYNC_SECONDS")
      ->check(CLI::Range(1, 86400))
      ->capture_default_str();
  app.add_option("--data_dir", o.app.data_dir, "job store, inversions and checkpoints")
      ->envname("GANSERVE_DATA_DIR")
      ->capture_default_str();
  app.add_option("--model_repository", o.app.model_repository, "model folders with manifest.json")
      ->envname("GANSERVE_MODEL_REPOSITORY")
      ->capture_default_str();
  app.add_option("--device", o.app.device, "auto | cpu | cuda | cuda:N")
      ->envname("GANSERVE_DEVICE")
      ->capture_default_str();
  app.add_option("--clip_precision", o.app.clip_precision,
                 "CLIP arithmetic: auto (fp16 on CUDA as OpenAI runs it, else fp32) | fp32 | fp16 (CUDA) | bf16")
      ->envname("GANSERVE_CLIP_PRECISION")
      ->check(CLI::IsMember({"auto", "fp32", "fp16", "bf16"}))
      ->capture_default_str();
  app.add_option("--styleclip_clip_model", o.app.styleclip_clip_model,
                 "CLIP model of StyleCLIP edits and statistics when a request names none (StyleCLIP uses ViT-B/32)")
      ->envname("GANSERVE_STYLECLIP_CLIP_MODEL")
      ->capture_default_str();
  app.add_option("--log_level", o.log_level, "trace | debug | info | warn | error")
      ->envname("GANSERVE_LOG_LEVEL")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error"}))
      ->capture_default_str();
  app.add_option("--log_format", o.log_format, "text | json")
      ->envname("GANSERVE_LOG_FORMAT")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
  app.add_option("--max_import_mb", o.app.limits.max_import_mb, "largest file ImportModel accepts, MiB")
      ->envname("GANSERVE_MAX_IMPORT_MB")
      ->check(CLI::Range(1, 1 << 20))
      ->capture_default_str();
  app.add_option("--max_message_mb", o.app.limits.max_message_mb, "largest request or response message, MiB")
      ->envname("GANSERVE_MAX_MESSAGE_MB")
      ->check(CLI::Range(1, 512))
      ->capture_default_str();
  app.add_option("--max_interactive_queue", o.app.max_interactive_queue, "queued Generate/Edit batches per device")
      ->envname("GANSERVE_MAX_INTERACTIVE_QUEUE")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  app.add_option("--max_batch_queue", o.app.max_batch_queue, "queued inversion steps per device")
      ->envname("GANSERVE_MAX_BATCH_QUEUE")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  app.add_option("--max_training_queue", o.app.max_training_queue, "queued training jobs")
      ->envname("GANSERVE_MAX_TRAINING_QUEUE")
      ->check(CLI::Range(1, 10000))
      ->capture_default_str();
  app.add_option("--threads", o.threads, "LibTorch intra-op threads (0: CPUs available)")
      ->envname("GANSERVE_THREADS")
      ->check(CLI::Range(0, 1024))
      ->capture_default_str();
  app.add_option("--host_threads", o.app.host_threads,
                 "threads that encode images (PNG/JPEG) and plan requests beside the device thread")
      ->envname("GANSERVE_HOST_THREADS")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  app.add_option("--retain_host_memory", o.retain_host_memory,
                 "keep freed host memory for reuse: ~1.8x faster CPU renders, resident size stays at its peak")
      ->envname("GANSERVE_RETAIN_HOST_MEMORY")
      ->capture_default_str();
  app.add_option("--shutdown_grace_seconds", o.shutdown_grace_seconds, "drain time at SIGTERM")
      ->envname("GANSERVE_SHUTDOWN_GRACE_SECONDS")
      ->check(CLI::Range(0, 3600))
      ->capture_default_str();
  app.add_option("--max_images_per_request", o.app.limits.max_images_per_request,
                 "images one Generate/Edit call may ask for")
      ->envname("GANSERVE_MAX_IMAGES_PER_REQUEST")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  app.add_option("--max_batch_size", o.app.limits.max_batch_size, "largest batch_size a request may ask for")
      ->envname("GANSERVE_MAX_BATCH_SIZE")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  app.add_option("--max_coalesced_images", o.app.max_coalesced_images,
                 "images one coalesced render of concurrent Generate/Edit batches may hold (0: no coalescing)")
      ->envname("GANSERVE_MAX_COALESCED_IMAGES")
      ->check(CLI::Range(0, 1024))
      ->capture_default_str();
  app.add_option("--checkpoint_every", o.app.checkpoint_every, "training checkpoint interval, steps (0: never)")
      ->envname("GANSERVE_CHECKPOINT_EVERY")
      ->check(CLI::Range(0, 100000))
      ->capture_default_str();
  app.add_option("--job_retention_hours", o.app.retention.job_retention_hours,
                 "events and previews of jobs that finished longer ago are deleted (0: kept forever)")
      ->envname("GANSERVE_JOB_RETENTION_HOURS")
      ->check(CLI::Range(int64_t{0}, int64_t{24} * 365 * 10))
      ->capture_default_str();
  app.add_option("--retention_interval_seconds", o.app.retention.interval_seconds,
                 "seconds between retention passes (the first runs at start-up)")
      ->envname("GANSERVE_RETENTION_INTERVAL_SECONDS")
      ->check(CLI::Range(int64_t{1}, int64_t{86400} * 7))
      ->capture_default_str();
  app.add_option("--model_memory_budget_mb", o.model_memory_budget_mb,
                 "compute-device memory resident models may hold, MiB; least recently used unpinned models are "
                 "unloaded past it (0: no limit; on a CPU device it bounds host RAM)")
      ->envname("GANSERVE_MODEL_MEMORY_BUDGET_MB")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 30))
      ->capture_default_str();
  app.add_option("--model_host_memory_budget_mb", o.model_host_memory_budget_mb,
                 "host RAM resident models may hold, MiB (0: no limit)")
      ->envname("GANSERVE_MODEL_HOST_MEMORY_BUDGET_MB")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 30))
      ->capture_default_str();
  app.add_option("--preload_models", o.preload_models,
                 "models loaded at start-up: all (while the budgets have room) | pinned | none (each on first use)")
      ->envname("GANSERVE_PRELOAD_MODELS")
      ->check(CLI::IsMember({"all", "pinned", "none"}))
      ->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    std::ostringstream os, es;
    out.exit = true;
    out.exit_code = app.exit(e, os, es);
    out.message = os.str() + es.str();
  }
  if (!out.exit) {
    o.app.inference_role = absl::StrContains(o.roles, "inference");
    o.app.training_role = absl::StrContains(o.roles, "training");
    core::JobEngine::Options::Leases leases = o.app.leases;
    leases.enabled = true;
    if (leases.worker.empty()) leases.worker = "-";  // defaulted later
    if (absl::Status st = leases.Validate(); !st.ok()) {
      out.exit = true;
      out.exit_code = 2;
      out.message = absl::StrCat(st.message(), "\n");
    }
    o.app.residency.device_budget_bytes = o.model_memory_budget_mb << 20;
    o.app.residency.host_budget_bytes = o.model_host_memory_budget_mb << 20;
    o.app.residency.preload = core::ParsePreload(o.preload_models).value_or(core::ResidencyOptions::Preload::kAll);
  }
  for (const auto& [flag, value] :
       {std::pair<const char*, std::string>{"--metrics_listen", o.metrics_listen}, {"--http_listen", o.http_listen}}) {
    if (out.exit || value.empty()) continue;
    if (std::string err = CheckAddress(value); !err.empty()) {
      out.exit = true;
      out.exit_code = 2;
      out.message = absl::StrCat(flag, ": ", err, "\n");
    }
  }
  return out;
}

}  // namespace ganserve::server
