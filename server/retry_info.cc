#include "server/retry_info.h"

#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"

namespace ganserve::server {

grpc::Status StatusWithRetryDelay(grpc::StatusCode code, const std::string& message, absl::Duration delay) {
  google::rpc::RetryInfo info;
  const int64_t ns = absl::ToInt64Nanoseconds(delay);
  info.mutable_retry_delay()->set_seconds(ns / 1000000000);
  info.mutable_retry_delay()->set_nanos(static_cast<int32_t>(ns % 1000000000));
  google::rpc::Status details;
  details.set_code(static_cast<int32_t>(code));
  details.set_message(message);
  details.add_details()->PackFrom(info);
  return grpc::Status(code, message, details.SerializeAsString());
}

std::optional<absl::Duration> RetryDelayOf(const grpc::Status& status) {
  if (status.error_details().empty()) return std::nullopt;
  google::rpc::Status details;
  if (!details.ParseFromString(status.error_details())) return std::nullopt;
  for (const auto& any : details.details()) {
    google::rpc::RetryInfo info;
    if (any.UnpackTo(&info)) {
      return absl::Seconds(info.retry_delay().seconds()) + absl::Nanoseconds(info.retry_delay().nanos());
    }
  }
  return std::nullopt;
}

}  // namespace ganserve::server
