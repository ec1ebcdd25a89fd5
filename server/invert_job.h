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

// A stored inversion ready to render through `model` (the model it was made with, or
// one adapted from it): its w+ [1, n_latent, style_dim] and, when `with_noise`, its
// optimised noise maps. InvalidArgument / NotFound / FailedPrecondition with reasons.
struct StoredInversion {
  core::FloatTensor wplus;
  std::vector<core::FloatTensor> noise_maps;
};
absl::StatusOr<StoredInversion> LoadInversionFor(const std::string& data_dir, const std::string& id,
                                                 const core::ModelRepository& repo, const std::string& model,
                                                 bool with_noise);

}  // namespace ganserve::server

#endif  // GANSERVE_SERVER_INVERT_JOB_H_
