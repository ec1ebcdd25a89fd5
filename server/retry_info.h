// google.rpc.RetryInfo in a gRPC status's error details (the grpc-status-details-bin
// trailer, a serialized google.rpc.Status): written by the server on back-pressure,
// read by ganctl and the tests.
#ifndef GANSERVE_SERVER_RETRY_INFO_H_
#define GANSERVE_SERVER_RETRY_INFO_H_

#include <grpcpp/support/status.h>

#include <optional>

#include "absl/time/time.h"

namespace ganserve::server {

// `code` and `message` with a google.rpc.Status carrying RetryInfo{delay}.
grpc::Status StatusWithRetryDelay(grpc::StatusCode code, const std::string& message, absl::Duration delay);
// The RetryInfo delay in a status's error details, if any.
std::optional<absl::Duration> RetryDelayOf(const grpc::Status& status);

}  // namespace ganserve::server

#endif  // GANSERVE_SERVER_RETRY_INFO_H_
