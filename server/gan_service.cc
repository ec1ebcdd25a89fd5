#include "server/gan_service.h"

#include <memory>
#include <optional>
#include <string>

#include "core/util/status_macros.h"
#include "server/api/api.h"
#include "server/rpc_scope.h"
#include "server/status_util.h"
#include "server/streams/export_stream.h"
#include "server/streams/image_stream.h"
#include "server/streams/import_stream.h"
#include "server/streams/job_stream.h"

namespace ganserve::server {
namespace {

// Work-creating RPCs are refused while the server shuts down; reads are not.
enum class Kind { kRead, kNewWork };

// The preamble of every RPC: the caller's token must carry the method's scope, and new
// work is refused during shutdown.
absl::Status Preamble(ServiceContext* ctx, const grpc::CallbackServerContext* call, const char* method, Kind kind) {
  if (ctx->auth != nullptr) {
    const auto& md = call->client_metadata();
    auto it = md.find("authorization");
    std::optional<std::string> header;
    if (it != md.end()) header.emplace(it->second.data(), it->second.size());
    absl::Status s = ctx->auth->Check(header, method);
    if (!s.ok()) {
      ctx->metrics->RecordRejected(absl::IsUnauthenticated(s) ? "unauthenticated" : "permission_denied");
      return s;
    }
  }
  if (kind == Kind::kNewWork && ctx->shutting_down) return absl::UnavailableError("the server is shutting down");
  return absl::OkStatus();
}

// A unary RPC: preamble, then `body` fills the response; one status mapping.
template <typename Body>
grpc::ServerUnaryReactor* Unary(ServiceContext* ctx, grpc::CallbackServerContext* call, const char* method, Body body) {
  RpcScope scope(ctx->metrics, method, call);
  absl::Status st = Preamble(ctx, call, method, Kind::kRead);
  if (st.ok()) st = body();
  const grpc::Status g = ToGrpcStatus(st);
  scope.Done(g);
  auto* r = call->DefaultReactor();
  r->Finish(g);
  return r;
}

// A unary RPC whose body blocks (a model load): it runs on the host pool, not on the
// gRPC thread.
template <typename Body>
grpc::ServerUnaryReactor* SlowUnary(ServiceContext* ctx, grpc::CallbackServerContext* call, const char* method,
                                    Kind kind, Body body) {
  auto scope = std::make_shared<RpcScope>(ctx->metrics, method, call);
  auto* r = call->DefaultReactor();
  auto finish = [scope, r](const absl::Status& st) {
    const grpc::Status g = ToGrpcStatus(st);
    scope->Done(g);
    r->Finish(g);
  };
  if (absl::Status st = Preamble(ctx, call, method, kind); !st.ok()) {
    finish(st);
    return r;
  }
  absl::Status posted = ctx->app->host_pool().Submit([finish, body](bool dropped) {
    finish(dropped ? absl::UnavailableError("the server is shutting down") : body());
  });
  if (!posted.ok()) finish(posted);
  return r;
}

template <typename T>
grpc::ServerWriteReactor<T>* FailStream(RpcScope& scope, const absl::Status& s) {
  const grpc::Status g = ToGrpcStatus(s);
  scope.Done(g);
  return new ImmediateStatus<T>(g);
}

// A job-creating RPC: preamble, submit through the Service, stream the job's events.
template <typename Submit>
grpc::ServerWriteReactor<v1::JobEvent>* JobRpc(ServiceContext* ctx, grpc::CallbackServerContext* call,
                                               const char* method, const std::string& notify_url, Submit submit) {
  auto scope = std::make_unique<RpcScope>(ctx->metrics, method, call);
  if (absl::Status a = Preamble(ctx, call, method, Kind::kNewWork); !a.ok()) {
    return FailStream<v1::JobEvent>(*scope, a);
  }
  if (!notify_url.empty() && !ctx->webhooks) {
    return FailStream<v1::JobEvent>(
        *scope, absl::FailedPreconditionError("notify_url: this server sends no webhooks (it was started without "
                                              "--webhook_secret_file); watch the job instead"));
  }
  absl::StatusOr<core::JobRecord> job = submit();
  if (!job.ok()) return FailStream<v1::JobEvent>(*scope, job.status());
  return StartJobStream(ctx, *job, 0, false, std::move(scope));
}

}  // namespace

grpc::ServerWriteReactor<v1::JobEvent>* GanServiceImpl::AdaptDomain(grpc::CallbackServerContext* call,
                                                                    const v1::AdaptDomainRequest* req) {
  return JobRpc(ctx_, call, "AdaptDomain", req->notify_url(),
                [&] { return ctx_->service().SubmitAdapt(api::ToSpec(*req), {api::LegacyRequestHash(*req)}); });
}

grpc::ServerWriteReactor<v1::JobEvent>* GanServiceImpl::InvertImage(grpc::CallbackServerContext* call,
                                                                    const v1::InvertImageRequest* req) {
  return JobRpc(ctx_, call, "InvertImage", req->notify_url(),
                [&] { return ctx_->service().SubmitInvert(api::ToSpec(*req), {api::LegacyRequestHash(*req)}); });
}

grpc::ServerWriteReactor<v1::JobEvent>* GanServiceImpl::PrepareGlobalDirections(
    grpc::CallbackServerContext* call, const v1::PrepareGlobalDirectionsRequest* req) {
  return JobRpc(ctx_, call, "PrepareGlobalDirections", req->notify_url(),
                [&] { return ctx_->service().SubmitGlobalStats(api::ToSpec(*req), {api::LegacyRequestHash(*req)}); });
}

grpc::ServerWriteReactor<v1::JobEvent>* GanServiceImpl::TrainMapper(grpc::CallbackServerContext* call,
                                                                    const v1::TrainMapperRequest* req) {
  return JobRpc(ctx_, call, "TrainMapper", req->notify_url(),
                [&] { return ctx_->service().SubmitMapper(api::ToSpec(*req)); });
}

grpc::ServerWriteReactor<v1::JobEvent>* GanServiceImpl::WatchJob(grpc::CallbackServerContext* call,
                                                                 const v1::WatchJobRequest* req) {
  auto scope = std::make_unique<RpcScope>(ctx_->metrics, "WatchJob", call);
  if (absl::Status a = Preamble(ctx_, call, "WatchJob", Kind::kRead); !a.ok()) {
    return FailStream<v1::JobEvent>(*scope, a);
  }
  auto job = ctx_->service().PrepareWatch(api::ToSpec(*req));
  if (!job.ok()) return FailStream<v1::JobEvent>(*scope, job.status());
  return StartJobStream(ctx_, *job, req->after_seq(), req->skip_preview_replay(), std::move(scope));
}

grpc::ServerUnaryReactor* GanServiceImpl::GetJob(grpc::CallbackServerContext* call, const v1::GetJobRequest* req,
                                                 v1::Job* resp) {
  return Unary(ctx_, call, "GetJob", [&]() -> absl::Status {
    ASSIGN_OR_RETURN(core::JobRecord job, ctx_->service().GetJob(req->id()));
    api::ToProto(job, resp);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* GanServiceImpl::ListJobs(grpc::CallbackServerContext* call, const v1::ListJobsRequest* req,
                                                   v1::ListJobsResponse* resp) {
  return Unary(ctx_, call, "ListJobs", [&]() -> absl::Status {
    ASSIGN_OR_RETURN(core::ListJobsPage page, ctx_->service().ListJobs(api::ToSpec(*req)));
    for (const auto& j : page.jobs) api::ToProto(j, resp->add_jobs());
    resp->set_next_page_token(page.next_page_token);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* GanServiceImpl::CancelJob(grpc::CallbackServerContext* call, const v1::CancelJobRequest* req,
                                                    v1::Job* resp) {
  return Unary(ctx_, call, "CancelJob", [&]() -> absl::Status {
    ASSIGN_OR_RETURN(core::JobRecord job, ctx_->service().CancelJob(req->id()));
    api::ToProto(job, resp);
    return absl::OkStatus();
  });
}

grpc::ServerWriteReactor<v1::ImageBatch>* GanServiceImpl::GenerateSamples(grpc::CallbackServerContext* call,
                                                                          const v1::GenerateSamplesRequest* req) {
  RpcScope scope(ctx_->metrics, "GenerateSamples", call);
  if (absl::Status a = Preamble(ctx_, call, "GenerateSamples", Kind::kNewWork); !a.ok()) {
    return FailStream<v1::ImageBatch>(scope, a);
  }
  // Planning validates and may read an inversion from disk: it runs on the host pool.
  auto spec = std::make_shared<core::service::GenerateSpec>(api::ToSpec(*req));
  ServiceContext* ctx = ctx_;
  auto planner = [ctx, spec]() -> absl::StatusOr<BatchSource> {
    ASSIGN_OR_RETURN(core::service::GeneratePlan plan, ctx->service().PlanGenerate(std::move(*spec)));
    auto shared = std::make_shared<const core::service::GeneratePlan>(std::move(plan));
    return BatchSource{shared->total, shared->batch_size, "generate", [shared](int start, int count) {
                         return core::service::PrepareGenerateBatch(*shared, start, count);
                       }};
  };
  return StartImageStream(ctx_, call, std::move(planner), PlanOn::kHost, std::move(scope));
}

grpc::ServerWriteReactor<v1::ImageBatch>* GanServiceImpl::Edit(grpc::CallbackServerContext* call,
                                                               const v1::EditRequest* req) {
  RpcScope scope(ctx_->metrics, "Edit", call);
  if (absl::Status a = Preamble(ctx_, call, "Edit", Kind::kNewWork); !a.ok()) {
    return FailStream<v1::ImageBatch>(scope, a);
  }
  // Planning maps the inputs and may encode text: it runs on the executor, not here.
  auto spec = std::make_shared<const core::service::EditSpec>(api::ToSpec(*req));
  ServiceContext* ctx = ctx_;
  if (spec->latent_optimization.has_value()) {
    return StartOptimizeStream(
        ctx_, call, [ctx, spec] { return ctx->service().PlanOptimize(*spec); }, std::move(scope));
  }
  auto planner = [ctx, spec]() -> absl::StatusOr<BatchSource> {
    ASSIGN_OR_RETURN(core::service::EditPlan plan, ctx->service().PlanEdit(*spec));
    auto shared = std::make_shared<const core::service::EditPlan>(std::move(plan));
    return BatchSource{shared->total, shared->batch_size, "edit", [shared](int start, int count) {
                         return core::service::PrepareEditBatch(*shared, start, count);
                       }};
  };
  return StartImageStream(ctx_, call, std::move(planner), PlanOn::kDevice, std::move(scope));
}

grpc::ServerUnaryReactor* GanServiceImpl::ListModels(grpc::CallbackServerContext* call,
                                                     const v1::ListModelsRequest* req, v1::ListModelsResponse* resp) {
  return Unary(ctx_, call, "ListModels", [&]() -> absl::Status {
    ASSIGN_OR_RETURN(std::vector<core::ModelInfo> models, ctx_->service().ListModels(req->kind()));
    for (const auto& m : models) api::ToProto(m, resp->add_models());
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* GanServiceImpl::GetModel(grpc::CallbackServerContext* call, const v1::GetModelRequest* req,
                                                   v1::Model* resp) {
  return Unary(ctx_, call, "GetModel", [&]() -> absl::Status {
    ASSIGN_OR_RETURN(core::ModelInfo m, ctx_->service().GetModel(req->name()));
    api::ToProto(m, resp);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* GanServiceImpl::DeleteModel(grpc::CallbackServerContext* call,
                                                      const v1::DeleteModelRequest* req, v1::DeleteModelResponse*) {
  return Unary(ctx_, call, "DeleteModel", [&] { return ctx_->service().DeleteModel(req->name()); });
}

grpc::ServerUnaryReactor* GanServiceImpl::LoadModel(grpc::CallbackServerContext* call, const v1::LoadModelRequest* req,
                                                    v1::Model* resp) {
  ServiceContext* ctx = ctx_;
  return SlowUnary(ctx_, call, "LoadModel", Kind::kNewWork, [ctx, req, resp]() -> absl::Status {
    ASSIGN_OR_RETURN(core::ModelInfo m, ctx->service().LoadModel(req->name(), req->pin()));
    api::ToProto(m, resp);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* GanServiceImpl::UnloadModel(grpc::CallbackServerContext* call,
                                                      const v1::UnloadModelRequest* req, v1::Model* resp) {
  return Unary(ctx_, call, "UnloadModel", [&]() -> absl::Status {
    ASSIGN_OR_RETURN(core::ModelInfo m, ctx_->service().UnloadModel(req->name()));
    api::ToProto(m, resp);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* GanServiceImpl::PromoteSnapshot(grpc::CallbackServerContext* call,
                                                          const v1::PromoteSnapshotRequest* req, v1::Model* resp) {
  ServiceContext* ctx = ctx_;
  return SlowUnary(ctx_, call, "PromoteSnapshot", Kind::kNewWork, [ctx, req, resp]() -> absl::Status {
    ASSIGN_OR_RETURN(core::ModelInfo m, ctx->service().PromoteSnapshot(req->snapshot(), req->name()));
    api::ToProto(m, resp);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* GanServiceImpl::RescanRepository(grpc::CallbackServerContext* call,
                                                           const v1::RescanRepositoryRequest*,
                                                           v1::RescanRepositoryResponse* resp) {
  ServiceContext* ctx = ctx_;
  return SlowUnary(ctx_, call, "RescanRepository", Kind::kRead, [ctx, resp]() -> absl::Status {
    core::ModelRepository::ScanResult r = ctx->service().RescanRepository();
    for (const auto& n : r.added) resp->add_added(n);
    for (const auto& n : r.removed) resp->add_removed(n);
    return absl::OkStatus();
  });
}

grpc::ServerWriteReactor<v1::ExportModelChunk>* GanServiceImpl::ExportModel(grpc::CallbackServerContext* call,
                                                                            const v1::ExportModelRequest* req) {
  auto scope = std::make_unique<RpcScope>(ctx_->metrics, "ExportModel", call);
  if (absl::Status a = Preamble(ctx_, call, "ExportModel", Kind::kRead); !a.ok()) {
    return FailStream<v1::ExportModelChunk>(*scope, a);
  }
  // The proto's ExportFormat values are the core's; the service refuses unknown ones.
  return StartExportStream(ctx_, req->name(), static_cast<core::service::ExportFormat>(req->format()),
                           std::move(scope));
}

grpc::ServerReadReactor<v1::ImportModelChunk>* GanServiceImpl::ImportModel(grpc::CallbackServerContext* call,
                                                                           v1::Model* resp) {
  auto scope = std::make_unique<RpcScope>(ctx_->metrics, "ImportModel", call);
  if (absl::Status a = Preamble(ctx_, call, "ImportModel", Kind::kNewWork); !a.ok()) {
    const grpc::Status g = ToGrpcStatus(a);
    scope->Done(g);
    auto* r = new ImmediateReadStatus<v1::ImportModelChunk>(g);
    return r;
  }
  return StartImportStream(ctx_, resp, std::move(scope));
}

}  // namespace ganserve::server
