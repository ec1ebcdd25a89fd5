#include "server/rpc_scope.h"

#include <spdlog/spdlog.h>

#include <random>

#include "absl/strings/str_cat.h"
#include "server/metrics.h"
#include "server/status_util.h"

namespace ganserve::server {
namespace {

// The caller's x-request-id metadata, else a random id.
std::string CallId(const grpc::CallbackServerContext* ctx) {
  const auto& md = ctx->client_metadata();
  auto it = md.find("x-request-id");
  if (it != md.end() && it->second.size() <= 64) return std::string(it->second.data(), it->second.size());
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return absl::StrCat(absl::Hex(rng(), absl::kZeroPad16));
}

}  // namespace

RpcScope::RpcScope(Metrics* metrics, const char* method, const grpc::CallbackServerContext* call)
    : metrics_(metrics), method_(method), id_(CallId(call)), start_(std::chrono::steady_clock::now()) {}

void RpcScope::Done(const grpc::Status& s) {
  if (done_) return;
  done_ = true;
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const char* code = GrpcCodeName(s.error_code());
  metrics_->RecordRpc(method_, code, secs);
  if (s.error_code() == grpc::StatusCode::INTERNAL || s.error_code() == grpc::StatusCode::UNKNOWN) {
    spdlog::warn("rpc={} id={} code={} secs={:.3f} msg={}", method_, id_, code, secs, s.error_message());
  } else {
    spdlog::debug("rpc={} id={} code={} secs={:.3f} msg={}", method_, id_, code, secs, s.error_message());
  }
}

}  // namespace ganserve::server
