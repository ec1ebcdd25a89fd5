#include "server/metrics.h"

#include "core/util/oom_counter.h"
#include "server/device_memory.h"

#include <prometheus/counter.h>
#include <unistd.h>

#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>
#include <fstream>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "server/metrics_http.h"

namespace ganserve::server {
namespace {

const prometheus::Histogram::BucketBoundaries kLatencyBuckets = {0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                                                 1,     2.5,   5,    10,    30,   60,  300};

}  // namespace

Metrics::Metrics() : registry_(std::make_shared<prometheus::Registry>()) {
  auto& build = prometheus::BuildGauge()
                    .Name("ganserve_build_info")
                    .Help("Build information; the value is always 1.")
                    .Register(*registry_);
  build.Add({{"version", "0.1.0"}}).Set(1);
  rpc_requests_ = &prometheus::BuildCounter()
                       .Name("ganserve_rpc_requests_total")
                       .Help("RPCs finished, by method and gRPC status code.")
                       .Register(*registry_);
  rpc_duration_ = &prometheus::BuildHistogram()
                       .Name("ganserve_rpc_duration_seconds")
                       .Help("Time from the start of an RPC to its status, by method.")
                       .Register(*registry_);
  images_ = &prometheus::BuildCounter()
                 .Name("ganserve_images_generated_total")
                 .Help("Images rendered, by operation.")
                 .Register(*registry_);
  render_batch_images_ = &prometheus::BuildHistogram()
                              .Name("ganserve_render_batch_images")
                              .Help("Images per generator call of GenerateSamples/Edit (after coalescing).")
                              .Register(*registry_)
                              .Add({}, prometheus::Histogram::BucketBoundaries{1, 2, 4, 8, 16, 32, 64, 128});
  render_batch_requests_ = &prometheus::BuildHistogram()
                                .Name("ganserve_render_batch_requests")
                                .Help("Requests sharing one generator call of GenerateSamples/Edit.")
                                .Register(*registry_)
                                .Add({}, prometheus::Histogram::BucketBoundaries{1, 2, 4, 8, 16, 32});
  device_used_ = &prometheus::BuildGauge()
                      .Name("ganserve_device_memory_used_bytes")
                      .Help("GPU memory in use by all processes (NVML), by device index; absent without a GPU.")
                      .Register(*registry_);
  device_total_ = &prometheus::BuildGauge()
                       .Name("ganserve_device_memory_total_bytes")
                       .Help("GPU memory size (NVML), by device index; absent without a GPU.")
                       .Register(*registry_);
  oom_ = &prometheus::BuildCounter()
              .Name("ganserve_out_of_memory_total")
              .Help("Device out-of-memory errors answered with RESOURCE_EXHAUSTED.")
              .Register(*registry_)
              .Add({});
  retention_bytes_ = &prometheus::BuildCounter()
                          .Name("ganserve_retention_reclaimed_bytes_total")
                          .Help(
                              "Bytes the retention passes deleted: finished jobs' events, unneeded checkpoints, "
                              "expired snapshots and inversions.")
                          .Register(*registry_);
  retention_items_ =
      &prometheus::BuildCounter()
           .Name("ganserve_retention_deleted_total")
           .Help("Items the retention passes deleted: events, checkpoints; snapshots and inversions by job.")
           .Register(*registry_);
  for (const char* what : {"events", "checkpoints", "snapshots", "inversions"}) {
    retention_bytes_->Add({{"what", what}});
    retention_items_->Add({{"what", what}});
  }
  rejected_ = &prometheus::BuildCounter()
                   .Name("ganserve_rejected_requests_total")
                   .Help("Requests refused before any work, by reason.")
                   .Register(*registry_);
  models_loaded_ = &prometheus::BuildGauge()
                        .Name("ganserve_models")
                        .Help("Models in the repository, by load state.")
                        .Register(*registry_);
  model_load_ = &prometheus::BuildHistogram()
                     .Name("ganserve_model_load_duration_seconds")
                     .Help("Time to load one model into memory (preloads and loads on first use), by kind.")
                     .Register(*registry_);
  model_loads_ = &prometheus::BuildCounter()
                      .Name("ganserve_model_loads_total")
                      .Help("Model loads, by kind and result (ok | failed).")
                      .Register(*registry_);
  model_evictions_ = &prometheus::BuildCounter()
                          .Name("ganserve_model_evictions_total")
                          .Help("Models unloaded to stay within the model memory budgets, by kind.")
                          .Register(*registry_);
  model_resident_ = &prometheus::BuildGauge()
                         .Name("ganserve_model_resident_bytes")
                         .Help("Memory held by resident models' weights, by kind and memory (host | device).")
                         .Register(*registry_);
  queue_depth_ = &prometheus::BuildGauge()
                      .Name("ganserve_queue_depth")
                      .Help("Tasks waiting on the device executor, by work class.")
                      .Register(*registry_);
  queue_wait_ = &prometheus::BuildHistogram()
                     .Name("ganserve_queue_wait_seconds")
                     .Help("Time a task waited on the device executor, by work class.")
                     .Register(*registry_);
  jobs_ = &prometheus::BuildCounter()
               .Name("ganserve_jobs_total")
               .Help("Jobs that ended, by kind and final state.")
               .Register(*registry_);
  webhooks_ = &prometheus::BuildCounter()
                   .Name("ganserve_webhook_deliveries_total")
                   .Help(
                       "Webhook delivery attempts by result: delivered, retried (a retry is scheduled), failed "
                       "(given up), dropped (the pending queue was full or the server stopped).")
                   .Register(*registry_);
  job_duration_ = &prometheus::BuildHistogram()
                       .Name("ganserve_job_duration_seconds")
                       .Help("Time from a job's start (or creation) to its end, by kind and outcome.")
                       .Register(*registry_);
  steps_ = &prometheus::BuildCounter()
                .Name("ganserve_training_steps_total")
                .Help("Job steps completed (training or optimisation steps), by kind.")
                .Register(*registry_);
  step_duration_ = &prometheus::BuildHistogram()
                        .Name("ganserve_training_step_duration_seconds")
                        .Help("Duration of one job step on the device, by kind.")
                        .Register(*registry_);
  jobs_queued_ = &prometheus::BuildGauge()
                      .Name("ganserve_jobs_queued")
                      .Help("Jobs waiting for their device.")
                      .Register(*registry_);
  jobs_queued_->Add({}).Set(0);
  resident_ = &prometheus::BuildGauge()
                   .Name("ganserve_process_resident_memory_bytes")
                   .Help("Resident memory of the server process.")
                   .Register(*registry_);
  for (int i = 0; i < core::kNumWorkClasses; ++i) {
    queue_depth_->Add({{"class", core::WorkClassName(static_cast<core::WorkClass>(i))}}).Set(0);
  }
}

Metrics::~Metrics() = default;

absl::StatusOr<int> Metrics::StartExposer(const std::string& address) {
  std::weak_ptr<prometheus::Registry> registry = registry_;
  auto server = MetricsHttpServer::Start(address, [this, registry] {
    RefreshProcessGauges();
    auto r = registry.lock();
    return r == nullptr ? std::string() : prometheus::TextSerializer().Serialize(r->Collect());
  });
  if (!server.ok()) return server.status();
  exposer_ = std::move(*server);
  return exposer_->port();
}

void Metrics::RecordRpc(const std::string& method, const char* code, double seconds) {
  rpc_requests_->Add({{"method", method}, {"code", code}}).Increment();
  rpc_duration_->Add({{"method", method}}, kLatencyBuckets).Observe(seconds);
}

void Metrics::AddImagesGenerated(const std::string& operation, int n) {
  images_->Add({{"operation", operation}}).Increment(n);
}

void Metrics::RecordRenderBatch(int images, int requests) {
  render_batch_images_->Observe(images);
  render_batch_requests_->Observe(requests);
}

void Metrics::OnRetentionPass(const core::RetentionStats& stats) {
  retention_bytes_->Add({{"what", "events"}}).Increment(static_cast<double>(stats.events.bytes));
  retention_items_->Add({{"what", "events"}}).Increment(static_cast<double>(stats.events.events));
  retention_bytes_->Add({{"what", "checkpoints"}}).Increment(static_cast<double>(stats.checkpoint_bytes));
  retention_items_->Add({{"what", "checkpoints"}}).Increment(static_cast<double>(stats.checkpoint_files));
  for (const auto& [what, a] : stats.artifacts) {
    retention_bytes_->Add({{"what", what}}).Increment(static_cast<double>(a.bytes));
    retention_items_->Add({{"what", what}}).Increment(static_cast<double>(a.jobs));
  }
  retention_bytes_->Add({{"what", "shared_blobs"}}).Increment(static_cast<double>(stats.shared_blobs.bytes));
  retention_items_->Add({{"what", "shared_blobs"}}).Increment(static_cast<double>(stats.shared_blobs.blobs));
}

void Metrics::RecordRejected(const std::string& reason) { rejected_->Add({{"reason", reason}}).Increment(); }

void Metrics::OnModelLoad(core::ModelKind kind, bool ok, double seconds) {
  const char* k = core::ModelKindName(kind);
  model_loads_->Add({{"kind", k}, {"result", ok ? "ok" : "failed"}}).Increment();
  model_load_->Add({{"kind", k}}, prometheus::Histogram::BucketBoundaries{0.01, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120})
      .Observe(seconds);
}

void Metrics::OnModelEvicted(core::ModelKind kind) {
  model_evictions_->Add({{"kind", core::ModelKindName(kind)}}).Increment();
}

void Metrics::OnRepositoryState(const core::RepositoryState& state) {
  for (core::ModelState s :
       {core::ModelState::kReady, core::ModelState::kFailed, core::ModelState::kLoading, core::ModelState::kUnloaded}) {
    auto it = state.models.find(s);
    models_loaded_->Add({{"state", core::ModelStateName(s)}}).Set(it == state.models.end() ? 0 : it->second);
  }
  for (core::ModelKind k : {core::ModelKind::kGenerator, core::ModelKind::kAdaptedGenerator, core::ModelKind::kClip,
                            core::ModelKind::kLpips, core::ModelKind::kMapper, core::ModelKind::kArcFace,
                            core::ModelKind::kEncoder, core::ModelKind::kLandmarks}) {
    auto it = state.resident.find(k);
    const core::MemoryFootprint f = it == state.resident.end() ? core::MemoryFootprint{} : it->second;
    model_resident_->Add({{"kind", core::ModelKindName(k)}, {"memory", "host"}}).Set(static_cast<double>(f.host_bytes));
    model_resident_->Add({{"kind", core::ModelKindName(k)}, {"memory", "device"}})
        .Set(static_cast<double>(f.device_bytes));
  }
}

void Metrics::OnJobEnded(core::JobKind kind, core::JobState state, double seconds) {
  jobs_->Add({{"kind", core::JobKindName(kind)}, {"state", core::JobStateName(state)}}).Increment();
  job_duration_
      ->Add({{"kind", core::JobKindName(kind)}, {"outcome", core::JobStateName(state)}},
            prometheus::Histogram::BucketBoundaries{1, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600})
      .Observe(seconds);
}

void Metrics::RecordWebhook(const char* result) { webhooks_->Add({{"result", result}}).Increment(); }

void Metrics::OnStep(core::JobKind kind, double seconds) {
  steps_->Add({{"kind", core::JobKindName(kind)}}).Increment();
  step_duration_->Add({{"kind", core::JobKindName(kind)}}, kLatencyBuckets).Observe(seconds);
}

void Metrics::OnJobsQueued(size_t depth) { jobs_queued_->Add({}).Set(static_cast<double>(depth)); }

void Metrics::RefreshProcessGauges() {
  // Out-of-memory errors are counted in core; the counter follows the count.
  const int64_t ooms = core::OutOfMemoryEvents().load();
  const int64_t seen = oom_seen_.exchange(ooms);
  if (ooms > seen) oom_->Increment(static_cast<double>(ooms - seen));
  for (const DeviceMemory& d : ReadDeviceMemory()) {
    const std::string index = std::to_string(d.index);
    device_used_->Add({{"device", index}}).Set(static_cast<double>(d.used_bytes));
    device_total_->Add({{"device", index}}).Set(static_cast<double>(d.total_bytes));
  }
  std::ifstream statm("/proc/self/statm");
  int64_t pages_total = 0, pages_resident = 0;
  if (statm >> pages_total >> pages_resident) {
    resident_->Add({}).Set(static_cast<double>(pages_resident) * static_cast<double>(sysconf(_SC_PAGESIZE)));
  }
}

void Metrics::OnQueueDepth(core::WorkClass c, size_t depth) {
  queue_depth_->Add({{"class", core::WorkClassName(c)}}).Set(static_cast<double>(depth));
}

void Metrics::OnQueueWait(core::WorkClass c, double seconds) {
  queue_wait_->Add({{"class", core::WorkClassName(c)}}, kLatencyBuckets).Observe(seconds);
}

}  // namespace ganserve::server
