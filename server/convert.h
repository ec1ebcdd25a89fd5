// Conversions between ganserve.v1 messages and core structs, with request validation
// of tensors. Everything the edge accepts from a client passes through here.
#ifndef GANSERVE_SERVER_CONVERT_H_
#define GANSERVE_SERVER_CONVERT_H_

#include <string>

#include "absl/status/statusor.h"
#include "core/jobs/job_store.h"
#include "core/registry/model_repository.h"
#include "core/util/tensor_data.h"
#include "ganserve/v1/ganserve.pb.h"

namespace ganserve::server {

void ToProto(const core::JobRecord& job, v1::Job* out);
void ToProto(const core::ModelInfo& info, v1::Model* out);

// Validates a client tensor: 1..4 dimensions, each >= 1, the product equal to the data
// length and at most `max_elements`, every value finite. `field` names it in errors.
absl::StatusOr<core::FloatTensor> FromProto(const v1::Tensor& t, const std::string& field, int64_t max_elements);
void ToProto(const core::FloatTensor& t, v1::Tensor* out);

}  // namespace ganserve::server

#endif  // GANSERVE_SERVER_CONVERT_H_
