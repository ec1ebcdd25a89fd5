// The runners of ganserve's jobs (AdaptDomain, InvertImage, PrepareGlobalDirections,
// TrainMapper):
// each turns a stored spec (JSON, see specs.h) into steps on the device executor and
// stores its result (an adapted model, an inversion, statistics). Registered with the
// job engine here, so core/jobs never calls out of core.
#ifndef GANSERVE_CORE_SERVICE_JOB_RUNNERS_H_
#define GANSERVE_CORE_SERVICE_JOB_RUNNERS_H_

#include <string>

#include "core/jobs/job_engine.h"
#include "core/models/clip/text_embedding_cache.h"
#include "core/registry/model_repository.h"

namespace ganserve::core::service {

// The encoding of JobRecord::request for jobs this version writes.
inline constexpr const char* kSpecJsonEncoding = "spec-json";

// Registers the runner factory of every job kind. The pointers must outlive the engine.
void RegisterJobRunners(JobEngine* engine, ModelRepository* repo, clip::TextEmbeddingCache* text_cache,
                        const std::string& data_dir);

}  // namespace ganserve::core::service

#endif  // GANSERVE_CORE_SERVICE_JOB_RUNNERS_H_
