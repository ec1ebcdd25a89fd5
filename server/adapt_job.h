// AdaptDomain on the server: request validation, the job runner that drives the
// StyleGAN-NADA trainer, and writing the adapted model into the repository.
#ifndef GANSERVE_SERVER_ADAPT_JOB_H_
#define GANSERVE_SERVER_ADAPT_JOB_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "core/jobs/job_engine.h"
#include "core/models/clip/text_embedding_cache.h"
#include "core/registry/model_repository.h"
#include "ganserve/v1/ganserve.pb.h"

namespace ganserve::server {

// Checks every field of the request against its documented range and the repository,
// fills defaults, and returns the normalised request to store with the job.
// INVALID_ARGUMENT / NOT_FOUND / FAILED_PRECONDITION / UNIMPLEMENTED naming the field.
absl::StatusOr<v1::AdaptDomainRequest> ValidateAdaptRequest(const v1::AdaptDomainRequest& req,
                                                            const core::ModelRepository& repo);

// A stable digest of the request payload (everything but request_id), for idempotency.
std::string RequestHash(const google::protobuf::Message& req);

// The fields every job request shares: request_id (<= 128 printable ASCII characters,
// no spaces) and a model name that is valid and names a loaded generator.
// INVALID_ARGUMENT / NOT_FOUND / FAILED_PRECONDITION.
absl::Status ValidateJobBasics(const std::string& request_id, const std::string& model,
                               const core::ModelRepository& repo);

// The RunnerFactory for JOB_KIND_ADAPT jobs.
core::RunnerFactory AdaptRunnerFactory(core::ModelRepository* repo, core::clip::TextEmbeddingCache* text_cache);

}  // namespace ganserve::server

#endif  // GANSERVE_SERVER_ADAPT_JOB_H_
