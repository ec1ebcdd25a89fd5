// The ganserve.v1.GanService implementation (gRPC callback API). Handlers validate,
// hand device work to the executor and stream results; they never block a gRPC thread
// on model work.
#ifndef GANSERVE_SERVER_GAN_SERVICE_H_
#define GANSERVE_SERVER_GAN_SERVICE_H_

#include <atomic>

#include "core/jobs/job_engine.h"
#include "core/jobs/job_store.h"
#include "core/models/clip/text_embedding_cache.h"
#include "core/registry/model_repository.h"
#include "core/runtime/device_executor.h"
#include "ganserve/v1/ganserve.grpc.pb.h"
#include "server/metrics.h"
#include "server/job_stream.h"
#include "server/auth.h"
#include "server/edit_stats_job.h"
#include "server/options.h"
#include "server/render_batcher.h"

namespace ganserve::server {

// What handlers share. Owned by GanServer, which outlives the service.
struct ServiceContext {
  ServerOptions options;
  core::ModelRepository* repository = nullptr;
  core::JobStore* job_store = nullptr;
  core::DeviceExecutor* executor = nullptr;
  RenderBatcher* batcher = nullptr;
  Metrics* metrics = nullptr;
  core::JobEngine* engine = nullptr;
  core::clip::TextEmbeddingCache* text_cache = nullptr;
  GlobalStatsCache* stats_cache = nullptr;
  const TokenAuth* auth = nullptr;  // null: no token checks
  JobStreamRegistry* streams = nullptr;
  std::atomic<bool> shutting_down{false};
};

// Thread-safe; stateless apart from the shared context.
class GanServiceImpl final : public v1::GanService::CallbackService {
 public:
  explicit GanServiceImpl(ServiceContext* ctx) : ctx_(ctx) {}

  grpc::ServerWriteReactor<v1::JobEvent>* AdaptDomain(grpc::CallbackServerContext* ctx,
                                                      const v1::AdaptDomainRequest* req) override;
  grpc::ServerWriteReactor<v1::JobEvent>* InvertImage(grpc::CallbackServerContext* ctx,
                                                      const v1::InvertImageRequest* req) override;
  grpc::ServerWriteReactor<v1::JobEvent>* PrepareGlobalDirections(
      grpc::CallbackServerContext* ctx, const v1::PrepareGlobalDirectionsRequest* req) override;
  grpc::ServerWriteReactor<v1::JobEvent>* WatchJob(grpc::CallbackServerContext* ctx,
                                                   const v1::WatchJobRequest* req) override;
  grpc::ServerUnaryReactor* GetJob(grpc::CallbackServerContext* ctx, const v1::GetJobRequest* req,
                                   v1::Job* resp) override;
  grpc::ServerUnaryReactor* ListJobs(grpc::CallbackServerContext* ctx, const v1::ListJobsRequest* req,
                                     v1::ListJobsResponse* resp) override;
  grpc::ServerUnaryReactor* CancelJob(grpc::CallbackServerContext* ctx, const v1::CancelJobRequest* req,
                                      v1::Job* resp) override;
  grpc::ServerWriteReactor<v1::ImageBatch>* GenerateSamples(grpc::CallbackServerContext* ctx,
                                                            const v1::GenerateSamplesRequest* req) override;
  grpc::ServerWriteReactor<v1::ImageBatch>* Edit(grpc::CallbackServerContext* ctx,
                                                 const v1::EditRequest* req) override;
  grpc::ServerUnaryReactor* ListModels(grpc::CallbackServerContext* ctx, const v1::ListModelsRequest* req,
                                       v1::ListModelsResponse* resp) override;
  grpc::ServerUnaryReactor* GetModel(grpc::CallbackServerContext* ctx, const v1::GetModelRequest* req,
                                     v1::Model* resp) override;
  grpc::ServerUnaryReactor* DeleteModel(grpc::CallbackServerContext* ctx, const v1::DeleteModelRequest* req,
                                        v1::DeleteModelResponse* resp) override;

 private:
  ServiceContext* const ctx_;
};

}  // namespace ganserve::server

#endif  // GANSERVE_SERVER_GAN_SERVICE_H_
