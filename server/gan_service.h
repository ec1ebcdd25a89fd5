// The ganserve.v1.GanService implementation (gRPC callback API). Each handler runs the
// one preamble (metrics scope, token scope, shutdown), translates its request into a
// core spec (server/api), calls the Service and streams or returns the result. Model
// work never blocks a gRPC thread: it runs on the device executor.
#ifndef GANSERVE_SERVER_GAN_SERVICE_H_
#define GANSERVE_SERVER_GAN_SERVICE_H_

#include "ganserve/v1/ganserve.grpc.pb.h"
#include "server/service_context.h"

namespace ganserve::server {

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
  grpc::ServerWriteReactor<v1::JobEvent>* TrainMapper(grpc::CallbackServerContext* ctx,
                                                      const v1::TrainMapperRequest* req) override;
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
  grpc::ServerWriteReactor<v1::ImageBatch>* Edit(grpc::CallbackServerContext* ctx, const v1::EditRequest* req) override;
  grpc::ServerUnaryReactor* ListModels(grpc::CallbackServerContext* ctx, const v1::ListModelsRequest* req,
                                       v1::ListModelsResponse* resp) override;
  grpc::ServerUnaryReactor* GetModel(grpc::CallbackServerContext* ctx, const v1::GetModelRequest* req,
                                     v1::Model* resp) override;
  grpc::ServerUnaryReactor* DeleteModel(grpc::CallbackServerContext* ctx, const v1::DeleteModelRequest* req,
                                        v1::DeleteModelResponse* resp) override;
  grpc::ServerUnaryReactor* LoadModel(grpc::CallbackServerContext* ctx, const v1::LoadModelRequest* req,
                                      v1::Model* resp) override;
  grpc::ServerUnaryReactor* UnloadModel(grpc::CallbackServerContext* ctx, const v1::UnloadModelRequest* req,
                                        v1::Model* resp) override;
  grpc::ServerUnaryReactor* PromoteSnapshot(grpc::CallbackServerContext* ctx, const v1::PromoteSnapshotRequest* req,
                                            v1::Model* resp) override;
  grpc::ServerUnaryReactor* RescanRepository(grpc::CallbackServerContext* ctx, const v1::RescanRepositoryRequest* req,
                                             v1::RescanRepositoryResponse* resp) override;
  grpc::ServerWriteReactor<v1::ExportModelChunk>* ExportModel(grpc::CallbackServerContext* ctx,
                                                              const v1::ExportModelRequest* req) override;
  grpc::ServerReadReactor<v1::ImportModelChunk>* ImportModel(grpc::CallbackServerContext* ctx,
                                                             v1::Model* resp) override;

 private:
  ServiceContext* const ctx_;
};

}  // namespace ganserve::server

#endif  // GANSERVE_SERVER_GAN_SERVICE_H_
