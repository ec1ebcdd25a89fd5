// The one place where absl::Status becomes grpc::Status.
#ifndef GANSERVE_SERVER_STATUS_UTIL_H_
#define GANSERVE_SERVER_STATUS_UTIL_H_

#include <grpcpp/support/status.h>

#include "absl/status/status.h"

namespace ganserve::server {

grpc::StatusCode ToGrpcCode(absl::StatusCode code);
// A status that carries a retry delay (core/util/retry_hint.h) gets a google.rpc.Status
// with a google.rpc.RetryInfo detail in its error details (the
// grpc-status-details-bin trailer).
grpc::Status ToGrpcStatus(const absl::Status& status);
const char* GrpcCodeName(grpc::StatusCode code);

}  // namespace ganserve::server

#endif  // GANSERVE_SERVER_STATUS_UTIL_H_
