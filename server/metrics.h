// Prometheus metrics of the server, exposed at /metrics.
#ifndef GANSERVE_SERVER_METRICS_H_
#define GANSERVE_SERVER_METRICS_H_

#include <atomic>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "core/jobs/job_engine.h"
#include "core/jobs/retention.h"
#include "core/registry/model_repository.h"
#include "core/runtime/device_executor.h"
#include "core/service/service.h"

namespace prometheus {
class Registry;
template <typename T>
class Family;
class Counter;
class Gauge;
class Histogram;
}  // namespace prometheus

namespace ganserve::server {

class MetricsHttpServer;

// Thread-safe (prometheus-cpp metrics are atomic; families lock on Add).
class Metrics : public core::ExecutorObserver,
                public core::JobObserver,
                public core::service::ServiceObserver,
                public core::RetentionObserver,
                public core::RepositoryObserver {
 public:
  Metrics();
  ~Metrics() override;

  // Starts the HTTP exposer on `address` ("host:port", port 0 = any). Returns the bound
  // port. Unavailable if the address cannot be bound.
  absl::StatusOr<int> StartExposer(const std::string& address);

  void RecordRpc(const std::string& method, const char* code, double seconds);
  void AddImagesGenerated(const std::string& operation, int n);
  // One generator call of the render batcher: its images and how many requests shared it.
  void RecordRenderBatch(int images, int requests);
  void RecordRejected(const std::string& reason);
  // One webhook attempt's result: delivered, retried, failed, dropped.
  void RecordWebhook(const char* result);
  void OnRequestRejected(const char* reason) override { RecordRejected(reason); }

  // core::RepositoryObserver
  void OnModelLoad(core::ModelKind kind, bool ok, double seconds) override;
  void OnModelEvicted(core::ModelKind kind) override;
  void OnRepositoryState(const core::RepositoryState& state) override;

  // core::ExecutorObserver
  void OnQueueDepth(core::WorkClass c, size_t depth) override;
  void OnQueueWait(core::WorkClass c, double seconds) override;

  // core::JobObserver
  void OnJobEnded(core::JobKind kind, core::JobState state, double seconds) override;
  void OnStep(core::JobKind kind, double seconds) override;
  void OnJobsQueued(size_t depth) override;

  // core::RetentionObserver
  void OnRetentionPass(const core::RetentionStats& stats) override;

  // Refreshes gauges read from the process (resident memory) before a scrape.
  void RefreshProcessGauges();

  prometheus::Registry& registry() { return *registry_; }

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<MetricsHttpServer> exposer_;
  prometheus::Family<prometheus::Counter>* rpc_requests_;
  prometheus::Family<prometheus::Histogram>* rpc_duration_;
  prometheus::Family<prometheus::Counter>* images_;
  prometheus::Counter* oom_;
  prometheus::Family<prometheus::Gauge>* device_used_;
  prometheus::Family<prometheus::Gauge>* device_total_;
  std::atomic<int64_t> oom_seen_{0};
  prometheus::Histogram* render_batch_images_;
  prometheus::Histogram* render_batch_requests_;
  prometheus::Family<prometheus::Counter>* rejected_;
  prometheus::Family<prometheus::Gauge>* models_loaded_;
  prometheus::Family<prometheus::Histogram>* model_load_;
  prometheus::Family<prometheus::Counter>* model_loads_;
  prometheus::Family<prometheus::Counter>* model_evictions_;
  prometheus::Family<prometheus::Gauge>* model_resident_;
  prometheus::Family<prometheus::Gauge>* queue_depth_;
  prometheus::Family<prometheus::Histogram>* queue_wait_;
  prometheus::Family<prometheus::Counter>* jobs_;
  prometheus::Family<prometheus::Counter>* webhooks_;
  prometheus::Family<prometheus::Histogram>* job_duration_;
  prometheus::Family<prometheus::Counter>* steps_;
  prometheus::Family<prometheus::Histogram>* step_duration_;
  prometheus::Family<prometheus::Gauge>* jobs_queued_;
  prometheus::Family<prometheus::Gauge>* resident_;
  prometheus::Family<prometheus::Counter>* retention_bytes_;
  prometheus::Family<prometheus::Counter>* retention_items_;
};

}  // namespace ganserve::server

#endif  // GANSERVE_SERVER_METRICS_H_
