// The gRPC edge's translations, one per RPC: v1 requests into core specs (field for
// field; the specs hold every range and default) and core results into v1 messages.
// Nothing here validates or decides: the specs and the Service do.
#ifndef GANSERVE_SERVER_API_API_H_
#define GANSERVE_SERVER_API_API_H_

#include <string>

#include "absl/status/statusor.h"
#include "core/jobs/job_engine.h"
#include "core/jobs/job_store.h"
#include "core/registry/model_repository.h"
#include "core/service/render.h"
#include "core/service/specs.h"
#include "ganserve/v1/ganserve.pb.h"

namespace ganserve::server::api {

// Requests (server/api/jobs.cc, server/api/render.cc).
core::service::AdaptSpec ToSpec(const v1::AdaptDomainRequest& r);
core::service::InvertSpec ToSpec(const v1::InvertImageRequest& r);
core::service::GlobalStatsSpec ToSpec(const v1::PrepareGlobalDirectionsRequest& r);
core::service::MapperSpec ToSpec(const v1::TrainMapperRequest& r);
core::service::ListJobsSpec ToSpec(const v1::ListJobsRequest& r);
core::service::WatchJobSpec ToSpec(const v1::WatchJobRequest& r);
core::service::GenerateSpec ToSpec(const v1::GenerateSamplesRequest& r);
core::service::EditSpec ToSpec(const v1::EditRequest& r);

// Results.
void ToProto(const core::JobRecord& job, v1::Job* out);
void ToProto(const core::ModelInfo& info, v1::Model* out);
void ToProto(const core::service::ImageBatchResult& batch, v1::ImageBatch* out);
v1::JobEvent ToProtoEvent(const core::JobEvent& e);
// The stored form of job events (a serialised v1::JobEvent); the engine's encoder.
std::string EncodeJobEvent(const core::JobEvent& e);

// The digest versions before spec records stored for a job request: FNV-1a 64 of the
// deterministic serialisation without request_id, "<hex>-<size>".
std::string LegacyRequestHash(const google::protobuf::Message& request);

// Requests stored by versions that kept the v1 protobuf bytes ("proto-v1"), as the
// JSON of their spec; the job store upgrade's decoder.
absl::StatusOr<std::string> DecodeLegacyRequest(core::JobKind kind, const std::string& encoding,
                                                const std::string& bytes);

}  // namespace ganserve::server::api

#endif  // GANSERVE_SERVER_API_API_H_
