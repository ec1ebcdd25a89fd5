// InvertImage on the server: request validation and the projection job runner.
#ifndef GANSERVE_SERVER_INVERT_JOB_H_
#define GANSERVE_SERVER_INVERT_JOB_H_

#include <string>

#include "absl/status/statusor.h"
#include "core/invert/projector.h"
#include "core/jobs/job_engine.h"
#include "core/registry/model_repository.h"
#include "ganserve/v1/ganserve.pb.h"

namespace ganserve::server {

// Checks and normalises an InvertImageRequest (the image is decoded once here to check
// it). INVALID_ARGUMENT / RESOURCE_EXHAUSTED / NOT_FOUND / FAILED_PRECONDITION.
absl::StatusOr<v1::InvertImageRequest> ValidateInvertRequest(const v1::InvertImageRequest& req,
                                                             const core::ModelRepository& repo);

// The RunnerFactory for JOB_KIND_INVERT jobs; results go to `inversions_dir`.
core::RunnerFactory InvertRunnerFactory(core::ModelRepository* repo, std::string inversions_dir);

// Path of a stored inversion; InvalidArgument for ids that are not inversion ids.
absl::StatusOr<std::string> InversionPath(const std::string& inversions_dir, const std::string& id);

}  // namespace ganserve::server

#endif  // GANSERVE_SERVER_INVERT_JOB_H_
