// Webhooks: when a job that named a notify_url ends, its final Job (protobuf JSON) is
// POSTed there, for backends that cannot hold an event stream open.
//
// Each delivery carries
//   Content-Type: application/json
//   X-Ganserve-Event: job.succeeded | job.failed | job.cancelled
//   X-Ganserve-Delivery: <job id>  (the same on every retry: receivers deduplicate on it)
//   X-Ganserve-Timestamp: <unix seconds of this attempt>
//   X-Ganserve-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>
// A 2xx answer delivers it. Timeouts, connection errors, 408, 429 and 5xx are retried
// with doubling delays (first_backoff, capped at 5 min) up to max_attempts; other
// answers fail it at once. Deliveries live in memory: those pending when the server
// stops are dropped (logged); the job itself is always readable with GetJob.
#ifndef GANSERVE_SERVER_WEBHOOKS_H_
#define GANSERVE_SERVER_WEBHOOKS_H_

#include <cstdint>
#include <deque>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "core/jobs/job_engine.h"

namespace ganserve::server {

class Metrics;

struct WebhookOptions {
  std::string secret;  // the HMAC key (bytes of --webhook_secret_file, trimmed)
  int max_attempts = 8;
  absl::Duration first_backoff = absl::Seconds(2);
  absl::Duration timeout = absl::Seconds(10);  // connect + read, per attempt
  size_t max_pending = 1000;                   // past it new deliveries are dropped
};

// The signature header's value for one attempt.
std::string WebhookSignature(const std::string& secret, int64_t timestamp, const std::string& body);

// Reads a secret file: at least 16 bytes once surrounding whitespace is trimmed.
absl::StatusOr<std::string> ReadWebhookSecret(const std::string& path);

// A JobObserver that passes every call on to `inner` (the metrics) and queues a
// delivery when a job with a notify_url ends. Thread-safe.
class Webhooks : public core::JobObserver {
 public:
  Webhooks(WebhookOptions options, core::JobObserver* inner, Metrics* metrics);
  ~Webhooks() override;  // stops the sender; pending deliveries are dropped

  void OnJobEnded(core::JobKind kind, core::JobState state, double seconds) override;
  void OnStep(core::JobKind kind, double seconds) override;
  void OnJobsQueued(size_t depth) override;
  void OnJobFinished(const core::JobRecord& job) override;

 private:
  struct Delivery {
    std::string url, event, job_id, body;
    int attempt = 0;  // attempts made
    absl::Time not_before;
  };
  void Loop();
  // True when delivered or failed for good; false to retry.
  bool Attempt(Delivery& d);

  const WebhookOptions options_;
  core::JobObserver* const inner_;
  Metrics* const metrics_;
  absl::Mutex mu_;
  std::deque<Delivery> pending_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace ganserve::server

#endif  // GANSERVE_SERVER_WEBHOOKS_H_
