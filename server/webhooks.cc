#include "server/webhooks.h"

#include <google/protobuf/util/json_util.h>
#include <httplib.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "core/service/service.h"
#include "core/util/sha256.h"
#include "server/api/api.h"
#include "server/metrics.h"

namespace ganserve::server {
namespace {

const char* EventName(core::JobState state) {
  switch (state) {
    case core::JobState::kSucceeded: return "job.succeeded";
    case core::JobState::kFailed: return "job.failed";
    default: return "job.cancelled";
  }
}

// "https://host:port/path?q" -> {"https://host:port", "/path?q"}.
std::pair<std::string, std::string> SplitUrl(const std::string& url) {
  const size_t host_at = url.find("://") + 3;
  const size_t path_at = url.find_first_of("/?", host_at);
  if (path_at == std::string::npos) return {url, "/"};
  std::string path = url.substr(path_at);
  if (path[0] == '?') path = "/" + path;
  return {url.substr(0, path_at), path};
}

}  // namespace

std::string WebhookSignature(const std::string& secret, int64_t timestamp, const std::string& body) {
  return absl::StrCat("sha256=", core::HmacSha256Hex(secret, absl::StrCat(timestamp, ".", body)));
}

absl::StatusOr<std::string> ReadWebhookSecret(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read --webhook_secret_file ", path));
  std::stringstream text;
  text << in.rdbuf();
  std::string secret(absl::StripAsciiWhitespace(text.str()));
  if (secret.size() < 16) {
    return absl::InvalidArgumentError(absl::StrCat("--webhook_secret_file ", path, " holds ", secret.size(),
                                                   " bytes; use at least 16 (e.g. `openssl rand -hex 32`)"));
  }
  return secret;
}

Webhooks::Webhooks(WebhookOptions options, core::JobObserver* inner, Metrics* metrics)
    : options_(std::move(options)), inner_(inner), metrics_(metrics) {
  thread_ = std::thread([this] { Loop(); });
}

Webhooks::~Webhooks() {
  size_t dropped = 0;
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    dropped = pending_.size();
  }
  if (thread_.joinable()) thread_.join();
  if (dropped > 0) spdlog::warn("webhooks: {} pending deliveries dropped at shutdown", dropped);
  for (size_t i = 0; i < dropped && metrics_ != nullptr; ++i) metrics_->RecordWebhook("dropped");
}

void Webhooks::OnJobEnded(core::JobKind kind, core::JobState state, double seconds) {
  if (inner_ != nullptr) inner_->OnJobEnded(kind, state, seconds);
}
void Webhooks::OnStep(core::JobKind kind, double seconds) {
  if (inner_ != nullptr) inner_->OnStep(kind, seconds);
}
void Webhooks::OnJobsQueued(size_t depth) {
  if (inner_ != nullptr) inner_->OnJobsQueued(depth);
}

void Webhooks::OnJobFinished(const core::JobRecord& job) {
  if (inner_ != nullptr) inner_->OnJobFinished(job);
  std::string url = core::service::NotifyUrlOf(job);
  if (url.empty()) return;
  v1::Job proto;
  api::ToProto(job, &proto);
  Delivery d;
  d.url = std::move(url);
  d.event = EventName(job.state);
  d.job_id = job.id;
  (void)google::protobuf::util::MessageToJsonString(proto, &d.body);
  d.not_before = absl::Now();
  absl::MutexLock lock(&mu_);
  if (pending_.size() >= options_.max_pending) {
    spdlog::warn("webhooks: {} deliveries pending; dropped the one for job {}", pending_.size(), job.id);
    if (metrics_ != nullptr) metrics_->RecordWebhook("dropped");
    return;
  }
  pending_.push_back(std::move(d));
}

void Webhooks::Loop() {
  for (;;) {
    Delivery d;
    {
      absl::MutexLock lock(&mu_);
      // Take the earliest delivery that is due, or wait for one.
      for (;;) {
        if (stopping_) return;
        auto due = std::min_element(pending_.begin(), pending_.end(),
                                    [](const Delivery& a, const Delivery& b) { return a.not_before < b.not_before; });
        const absl::Time wake = due == pending_.end() ? absl::Now() + absl::Seconds(1) : due->not_before;
        if (due != pending_.end() && due->not_before <= absl::Now()) {
          d = std::move(*due);
          pending_.erase(due);
          break;
        }
        // A new delivery (the queue grew) or stop wakes it at once.
        const size_t queued = pending_.size();
        auto changed = [this, queued]()
                           ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_ || pending_.size() > queued; };
        mu_.AwaitWithDeadline(absl::Condition(&changed), std::min(wake, absl::Now() + absl::Seconds(1)));
      }
    }
    if (!Attempt(d)) {
      const absl::Duration delay =
          std::min(options_.first_backoff * (int64_t{1} << std::min(d.attempt - 1, 20)), absl::Minutes(5));
      d.not_before = absl::Now() + delay;
      absl::MutexLock lock(&mu_);
      pending_.push_back(std::move(d));
    }
  }
}

bool Webhooks::Attempt(Delivery& d) {
  ++d.attempt;
  const auto [origin, path] = SplitUrl(d.url);
  httplib::Client client(origin);
  const int64_t timeout_us = absl::ToInt64Microseconds(options_.timeout);
  client.set_connection_timeout(timeout_us / 1000000, timeout_us % 1000000);
  client.set_read_timeout(timeout_us / 1000000, timeout_us % 1000000);
  client.set_write_timeout(timeout_us / 1000000, timeout_us % 1000000);
  const int64_t now = absl::ToUnixSeconds(absl::Now());
  const httplib::Headers headers = {{"X-Ganserve-Event", d.event},
                                    {"X-Ganserve-Delivery", d.job_id},
                                    {"X-Ganserve-Timestamp", std::to_string(now)},
                                    {"X-Ganserve-Signature", WebhookSignature(options_.secret, now, d.body)},
                                    {"User-Agent", "ganserve-webhooks"}};
  auto res = client.Post(path, headers, d.body, "application/json");
  const int status = res ? res->status : 0;
  if (status >= 200 && status < 300) {
    if (metrics_ != nullptr) metrics_->RecordWebhook("delivered");
    spdlog::info("webhook for job {} delivered to {} (attempt {})", d.job_id, origin, d.attempt);
    return true;
  }
  const std::string why = res ? absl::StrCat("HTTP ", status) : httplib::to_string(res.error());
  const bool transient = status == 0 || status == 408 || status == 429 || status >= 500;
  if (!transient || d.attempt >= options_.max_attempts) {
    if (metrics_ != nullptr) metrics_->RecordWebhook("failed");
    spdlog::warn("webhook for job {} to {} failed after {} attempt(s): {}", d.job_id, origin, d.attempt, why);
    return true;
  }
  if (metrics_ != nullptr) metrics_->RecordWebhook("retried");
  spdlog::info("webhook for job {} to {}: {}; retrying", d.job_id, origin, why);
  return false;
}

}  // namespace ganserve::server
