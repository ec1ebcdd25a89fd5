#include "server/gan_service.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <random>

#include "absl/strings/str_cat.h"
#include "server/adapt_job.h"
#include "server/convert.h"
#include "server/edit_request.h"
#include "server/generate_request.h"
#include "server/invert_job.h"
#include "server/rpc_scope.h"
#include "core/util/status_macros.h"
#include "server/status_util.h"

namespace ganserve::server {
namespace {

using Clock = std::chrono::steady_clock;

grpc::ServerUnaryReactor* FinishUnary(grpc::CallbackServerContext* call, RpcScope& scope, const grpc::Status& s) {
  scope.Done(s);
  auto* r = call->DefaultReactor();
  r->Finish(s);
  return r;
}

// A server stream that ends at once with a status (validation failures, features
// not built yet).
template <typename T>
class ImmediateStatus : public grpc::ServerWriteReactor<T> {
 public:
  explicit ImmediateStatus(const grpc::Status& s) { this->Finish(s); }
  void OnDone() override { delete this; }
};

template <typename T>
grpc::ServerWriteReactor<T>* FinishStream(RpcScope& scope, const grpc::Status& s) {
  scope.Done(s);
  return new ImmediateStatus<T>(s);
}

// What a batch stream renders: `total` images, `batch_size` at a time.
struct BatchSource {
  int total = 0;
  int batch_size = 8;
  const char* operation = "generate";  // metrics label
  std::function<BatchWork(int start, int count)> prepare;
};

// Streams GenerateSamples / Edit batches: one piece of render work per batch, handed to
// the RenderBatcher (which may render it together with other requests' work), the next
// batch only after the previous write completed, so a slow reader holds at most one.
class GenerateReactor : public grpc::ServerWriteReactor<v1::ImageBatch> {
 public:
  GenerateReactor(ServiceContext* ctx, grpc::CallbackServerContext* call, BatchSource plan, RpcScope scope)
      : ctx_(ctx), call_(call), plan_(std::move(plan)), scope_(std::move(scope)) {
    NextBatch();
  }
  // Plans on the device executor first (planning may map latents or encode text, which
  // must not block a gRPC callback thread), then streams.
  GenerateReactor(ServiceContext* ctx, grpc::CallbackServerContext* call,
                  std::function<absl::StatusOr<BatchSource>()> planner, RpcScope scope)
      : ctx_(ctx), call_(call), scope_(std::move(scope)) {
    absl::Status st = ctx_->executor->Submit(core::WorkClass::kInteractive, [this, planner](bool dropped) {
      if (dropped) return End(grpc::Status(grpc::StatusCode::UNAVAILABLE, "the server is shutting down"));
      auto src = planner();
      if (!src.ok()) {
        ctx_->metrics->RecordRejected("invalid");
        return End(ToGrpcStatus(src.status()));
      }
      plan_ = std::move(*src);
      NextBatch();
    });
    if (!st.ok()) {
      ctx_->metrics->RecordRejected(absl::IsResourceExhausted(st) ? "queue_full" : "unavailable");
      End(ToGrpcStatus(st));
    }
  }

  void OnWriteDone(bool ok) override {
    if (!ok) {
      End(grpc::Status(grpc::StatusCode::CANCELLED, "the client went away"));
      return;
    }
    NextBatch();
  }
  void OnCancel() override { cancelled_ = true; }
  void OnDone() override { delete this; }

 private:
  void End(const grpc::Status& s) {
    status_ = s;
    scope_.Done(s);
    Finish(s);
  }

  void NextBatch() {
    if (cancelled_) return End(grpc::Status(grpc::StatusCode::CANCELLED, "cancelled by the client"));
    if (call_->deadline() < std::chrono::system_clock::now()) {
      return End(grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED,
                              absl::StrCat("deadline passed after ", next_, " of ", plan_.total, " images")));
    }
    if (next_ >= plan_.total) return End(grpc::Status::OK);
    const int start = next_;
    const int count = std::min(plan_.batch_size, plan_.total - start);
    auto work = std::make_shared<BatchWork>(plan_.prepare(start, count));
    RenderBatcher::Work w;
    w.generator = work->generator;
    w.params = work->params;
    w.wanted = [this] { return !cancelled_.load(); };
    w.done = [this, work, count](absl::StatusOr<core::stylegan2::GenerateResult> result) {
      if (!result.ok()) return End(ToGrpcStatus(result.status()));
      auto batch = EncodeBatch(*work, *result);
      if (!batch.ok()) return End(ToGrpcStatus(batch.status()));
      ctx_->metrics->AddImagesGenerated(plan_.operation, count);
      batch_ = std::move(*batch);
      next_ = work->start + count;
      StartWrite(&batch_);
    };
    absl::Status submitted = ctx_->batcher->Submit(std::move(w));
    if (!submitted.ok()) {
      ctx_->metrics->RecordRejected(absl::IsResourceExhausted(submitted) ? "queue_full" : "unavailable");
      End(ToGrpcStatus(submitted));
    }
  }

  ServiceContext* const ctx_;
  grpc::CallbackServerContext* const call_;
  BatchSource plan_;  // set before the first batch, then read-only
  RpcScope scope_;
  std::atomic<bool> cancelled_{false};
  int next_ = 0;
  v1::ImageBatch batch_;
  grpc::Status status_;
};

// Streams an Edit with latent_optimization: one executor task (batch class) per Adam
// step, a progress message every few steps, and each input's rendered result. Only one
// write is in flight; the next step is posted when the previous write completed or
// when a step produced nothing to write.
class OptimizeReactor : public grpc::ServerWriteReactor<v1::ImageBatch> {
 public:
  // Plans on the executor (text encoding, mapping), then optimises step by step.
  OptimizeReactor(ServiceContext* ctx, grpc::CallbackServerContext* call,
                  std::function<absl::StatusOr<OptimizePlan>()> planner, RpcScope scope)
      : ctx_(ctx), call_(call), scope_(std::move(scope)) {
    absl::Status st = ctx_->executor->Submit(core::WorkClass::kBatch, [this, planner](bool dropped) {
      if (dropped) return End(grpc::Status(grpc::StatusCode::UNAVAILABLE, "the server is shutting down"));
      auto plan = planner();
      if (!plan.ok()) {
        ctx_->metrics->RecordRejected("invalid");
        return End(ToGrpcStatus(plan.status()));
      }
      plan_ = std::make_shared<const OptimizePlan>(std::move(*plan));
      Next();
    });
    if (!st.ok()) {
      ctx_->metrics->RecordRejected(absl::IsResourceExhausted(st) ? "queue_full" : "unavailable");
      End(ToGrpcStatus(st));
    }
  }
  void OnWriteDone(bool ok) override {
    if (!ok) return End(grpc::Status(grpc::StatusCode::CANCELLED, "the client went away"));
    Next();
  }
  void OnCancel() override { cancelled_ = true; }
  void OnDone() override { delete this; }

 private:
  void End(const grpc::Status& s) {
    scope_.Done(s);
    Finish(s);
  }
  int inputs() const { return static_cast<int>(plan_->starts.shape[0]); }

  void Next() {
    if (cancelled_) return End(grpc::Status(grpc::StatusCode::CANCELLED, "cancelled by the client"));
    if (call_->deadline() < std::chrono::system_clock::now()) {
      return End(grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED,
                              absl::StrCat("deadline passed while optimising input ", input_, " of ", inputs())));
    }
    if (input_ >= inputs()) return End(grpc::Status::OK);
    absl::Status st = ctx_->executor->Submit(core::WorkClass::kBatch, [this](bool dropped) {
      if (dropped) return End(grpc::Status(grpc::StatusCode::UNAVAILABLE, "the server is shutting down"));
      if (cancelled_) return End(grpc::Status(grpc::StatusCode::CANCELLED, "cancelled by the client"));
      absl::Status s = RunStep();
      if (!s.ok()) return End(ToGrpcStatus(s));
      if (writing_) {
        StartWrite(&batch_);
      } else {
        Next();
      }
    });
    if (!st.ok()) {
      ctx_->metrics->RecordRejected(absl::IsResourceExhausted(st) ? "queue_full" : "unavailable");
      End(ToGrpcStatus(st));
    }
  }

  // One Adam step on the executor; sets writing_ when batch_ holds a message to send.
  absl::Status RunStep() {
    writing_ = false;
    const OptimizePlan& p = *plan_;
    if (opt_ == nullptr) {
      const int64_t row = p.starts.numel() / p.starts.shape[0];
      core::FloatTensor start{{1, p.starts.shape[1], p.starts.shape[2]},
                              std::vector<float>(p.starts.data.begin() + input_ * row,
                                                 p.starts.data.begin() + (input_ + 1) * row)};
      ASSIGN_OR_RETURN(opt_, core::edit::LatentOptimizer::Create(p.render, p.clip, start, p.text_embedding,
                                                                 p.noise_maps, p.options));
    }
    ASSIGN_OR_RETURN(auto losses, opt_->Step());
    batch_.Clear();
    auto* progress = batch_.mutable_progress();
    progress->set_input(input_);
    progress->set_step(static_cast<int>(opt_->step()));
    progress->set_total_steps(static_cast<int>(opt_->total_steps()));
    for (const auto& [k, v] : losses) (*progress->mutable_losses())[k] = v;
    batch_.set_model(p.render_model);
    batch_.set_total(inputs());
    batch_.set_done(input_);
    if (opt_->step() == opt_->total_steps()) {
      // The input's result: its optimised w+ rendered with the same noise.
      BatchWork w;
      w.generator = p.render;
      w.model = p.render_model;
      w.total = inputs();
      w.start = input_;
      w.seeds = {p.seeds[static_cast<size_t>(input_)]};
      w.encode = p.encode;
      core::stylegan2::GenerateParams gp;
      gp.space = core::stylegan2::LatentSpace::kWPlus;
      gp.latents = opt_->WPlus();
      gp.noise_maps = p.noise_maps;
      gp.return_wplus = p.encode.return_latents;
      ASSIGN_OR_RETURN(core::stylegan2::GenerateResult r, p.render->Generate(gp));
      ASSIGN_OR_RETURN(v1::ImageBatch result, EncodeBatch(w, r));
      *result.mutable_progress() = *progress;
      batch_ = std::move(result);
      ctx_->metrics->AddImagesGenerated("edit", 1);
      opt_.reset();
      ++input_;
      writing_ = true;
    } else if (opt_->step() % p.progress_every == 0) {
      writing_ = true;
    }
    return absl::OkStatus();
  }

  ServiceContext* const ctx_;
  grpc::CallbackServerContext* const call_;
  std::shared_ptr<const OptimizePlan> plan_;  // set before the first step
  RpcScope scope_;
  std::atomic<bool> cancelled_{false};
  std::unique_ptr<core::edit::LatentOptimizer> opt_;
  int input_ = 0;
  bool writing_ = false;
  v1::ImageBatch batch_;
};

// Token authorization for every RPC (server/auth.h); OK when the server has no tokens.
grpc::Status Authorize(ServiceContext* ctx, const grpc::CallbackServerContext* call, const char* method) {
  if (ctx->auth == nullptr) return grpc::Status::OK;
  grpc::Status s = ctx->auth->Check(call, method);
  if (!s.ok()) {
    ctx->metrics->RecordRejected(s.error_code() == grpc::StatusCode::UNAUTHENTICATED ? "unauthenticated"
                                                                                   : "permission_denied");
  }
  return s;
}

// "job-" + 16 random hex digits.
std::string NewJobId() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return absl::StrCat("job-", absl::Hex(rng(), absl::kZeroPad16));
}

}  // namespace

// Shared by the job-creating RPCs: idempotent retries attach to their job before
// validation (a job's own output may exist by now), then validate, submit and stream.
template <typename Request>
grpc::ServerWriteReactor<v1::JobEvent>* SubmitJob(
    ServiceContext* ctx, grpc::CallbackServerContext* call, const char* method, const Request& req, core::JobKind kind,
    const std::function<absl::StatusOr<Request>(const Request&)>& validate,
    const std::function<void(const Request&, core::JobRecord*)>& describe) {
  auto scope = std::make_unique<RpcScope>(ctx->metrics, method, call);
  auto fail = [&](const grpc::Status& s) -> grpc::ServerWriteReactor<v1::JobEvent>* {
    scope->Done(s);
    return new ImmediateStatus<v1::JobEvent>(s);
  };
  if (grpc::Status a = Authorize(ctx, call, method); !a.ok()) return fail(a);
  if (ctx->shutting_down) return fail(grpc::Status(grpc::StatusCode::UNAVAILABLE, "the server is shutting down"));
  if (!req.request_id().empty() && req.request_id().size() <= 128) {
    auto prior = ctx->job_store->FindByRequestId(req.request_id());
    if (prior.ok() && prior->has_value()) {
      if ((*prior)->request_hash != RequestHash(req)) {
        return fail(grpc::Status(grpc::StatusCode::ALREADY_EXISTS,
                                 absl::StrCat("request_id '", req.request_id(), "' was used for job ", (*prior)->id,
                                              " with a different request; use a new request_id")));
      }
      auto job = ctx->engine->Get((*prior)->id);
      if (!job.ok()) return fail(ToGrpcStatus(job.status()));
      return StartJobStream(ctx, *job, 0, false, std::move(scope));
    }
  }
  auto valid = validate(req);
  if (!valid.ok()) {
    ctx->metrics->RecordRejected("invalid");
    return fail(ToGrpcStatus(valid.status()));
  }
  core::JobRecord job;
  job.id = NewJobId();
  job.kind = kind;
  job.model = valid->model();
  job.request_id = valid->request_id();
  job.request_hash = RequestHash(req);
  job.request = valid->SerializeAsString();
  job.max_run_seconds = valid->max_run_seconds();
  job.preview_every = valid->preview_every();
  describe(*valid, &job);
  auto submitted = ctx->engine->Submit(std::move(job));
  if (!submitted.ok()) {
    if (absl::IsResourceExhausted(submitted.status())) ctx->metrics->RecordRejected("queue_full");
    return fail(ToGrpcStatus(submitted.status()));
  }
  return StartJobStream(ctx, *submitted, 0, false, std::move(scope));
}

grpc::ServerWriteReactor<v1::JobEvent>* GanServiceImpl::AdaptDomain(grpc::CallbackServerContext* call,
                                                                    const v1::AdaptDomainRequest* req) {
  return SubmitJob<v1::AdaptDomainRequest>(
      ctx_, call, "AdaptDomain", *req, core::JobKind::kAdapt,
      [this](const v1::AdaptDomainRequest& r) { return ValidateAdaptRequest(r, *ctx_->repository); },
      [](const v1::AdaptDomainRequest& r, core::JobRecord* j) { j->total_steps = r.iterations(); });
}

grpc::ServerWriteReactor<v1::JobEvent>* GanServiceImpl::InvertImage(grpc::CallbackServerContext* call,
                                                                    const v1::InvertImageRequest* req) {
  return SubmitJob<v1::InvertImageRequest>(
      ctx_, call, "InvertImage", *req, core::JobKind::kInvert,
      [this](const v1::InvertImageRequest& r) { return ValidateInvertRequest(r, *ctx_->repository); },
      [](const v1::InvertImageRequest& r, core::JobRecord* j) { j->total_steps = r.steps(); });
}

grpc::ServerWriteReactor<v1::JobEvent>* GanServiceImpl::PrepareGlobalDirections(
    grpc::CallbackServerContext* call, const v1::PrepareGlobalDirectionsRequest* req) {
  return SubmitJob<v1::PrepareGlobalDirectionsRequest>(
      ctx_, call, "PrepareGlobalDirections", *req, core::JobKind::kEditStats,
      [this](const v1::PrepareGlobalDirectionsRequest& r) { return ValidatePrepareGlobalDirections(r, *ctx_->repository); },
      [this](const v1::PrepareGlobalDirectionsRequest& r, core::JobRecord* j) {
        j->total_steps = PrepareGlobalDirectionsSteps(r, *ctx_->repository);
      });
}

grpc::ServerWriteReactor<v1::ImageBatch>* GanServiceImpl::Edit(grpc::CallbackServerContext* call,
                                                               const v1::EditRequest* req) {
  RpcScope scope(ctx_->metrics, "Edit", call);
  if (grpc::Status a = Authorize(ctx_, call, "Edit"); !a.ok()) return FinishStream<v1::ImageBatch>(scope, a);
  if (ctx_->shutting_down) {
    return FinishStream<v1::ImageBatch>(scope, grpc::Status(grpc::StatusCode::UNAVAILABLE, "the server is shutting down"));
  }
  // Planning maps the inputs and may encode text: it runs on the executor, not here.
  // The request is copied: the reactor may outlive this call's arguments.
  auto request = std::make_shared<const v1::EditRequest>(*req);
  ServiceContext* ctx = ctx_;
  const EditResources resources{ctx_->text_cache, ctx_->stats_cache};
  if (req->method_case() == v1::EditRequest::kLatentOptimization) {
    return new OptimizeReactor(
        ctx_, call, [ctx, request, resources] { return PlanOptimize(*request, *ctx->repository, ctx->options, resources); },
        std::move(scope));
  }
  auto planner = [ctx, request, resources]() -> absl::StatusOr<BatchSource> {
    ASSIGN_OR_RETURN(EditPlan plan, PlanEdit(*request, *ctx->repository, ctx->options, resources));
    auto shared = std::make_shared<const EditPlan>(std::move(plan));
    return BatchSource{shared->total, shared->batch_size, "edit",
                       [shared](int start, int count) { return PrepareEditBatch(*shared, start, count); }};
  };
  return new GenerateReactor(ctx_, call, std::move(planner), std::move(scope));
}

grpc::ServerWriteReactor<v1::JobEvent>* GanServiceImpl::WatchJob(grpc::CallbackServerContext* call,
                                                                 const v1::WatchJobRequest* req) {
  auto scope = std::make_unique<RpcScope>(ctx_->metrics, "WatchJob", call);
  auto fail = [&](const grpc::Status& s) -> grpc::ServerWriteReactor<v1::JobEvent>* {
    scope->Done(s);
    return new ImmediateStatus<v1::JobEvent>(s);
  };
  if (grpc::Status a = Authorize(ctx_, call, "WatchJob"); !a.ok()) return fail(a);
  if (req->id().empty() || req->id().size() > 128) {
    return fail(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "id is required (at most 128 characters)"));
  }
  if (req->after_seq() < 0) return fail(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "after_seq must be >= 0"));
  auto job = ctx_->engine->Get(req->id());
  if (!job.ok()) return fail(ToGrpcStatus(job.status()));
  if (req->after_seq() > job->last_seq) {
    return fail(grpc::Status(grpc::StatusCode::OUT_OF_RANGE,
                             absl::StrCat("after_seq ", req->after_seq(), " is past the job's newest event (seq ",
                                          job->last_seq, ")")));
  }
  auto first = ctx_->job_store->FirstSeq(req->id());
  if (!first.ok()) return fail(ToGrpcStatus(first.status()));
  if (*first > 0 && req->after_seq() + 1 < *first) {
    return fail(grpc::Status(grpc::StatusCode::OUT_OF_RANGE,
                             absl::StrCat("events after seq ", req->after_seq(), " were discarded; the oldest kept is ",
                                          *first, " and the current seq is ", job->last_seq,
                                          "; call GetJob for the snapshot and watch from there")));
  }
  return StartJobStream(ctx_, *job, req->after_seq(), req->skip_preview_replay(), std::move(scope));
}

grpc::ServerUnaryReactor* GanServiceImpl::GetJob(grpc::CallbackServerContext* call, const v1::GetJobRequest* req,
                                                 v1::Job* resp) {
  RpcScope scope(ctx_->metrics, "GetJob", call);
  if (grpc::Status a = Authorize(ctx_, call, "GetJob"); !a.ok()) return FinishUnary(call, scope, a);
  if (req->id().empty() || req->id().size() > 128) {
    return FinishUnary(call, scope, grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "id is required (at most 128 characters)"));
  }
  auto job = ctx_->engine->Get(req->id());
  if (!job.ok()) return FinishUnary(call, scope, ToGrpcStatus(job.status()));
  ToProto(*job, resp);
  return FinishUnary(call, scope, grpc::Status::OK);
}

grpc::ServerUnaryReactor* GanServiceImpl::ListJobs(grpc::CallbackServerContext* call, const v1::ListJobsRequest* req,
                                                   v1::ListJobsResponse* resp) {
  RpcScope scope(ctx_->metrics, "ListJobs", call);
  if (grpc::Status a = Authorize(ctx_, call, "ListJobs"); !a.ok()) return FinishUnary(call, scope, a);
  if (req->page_size() < 0 || req->page_size() > 500) {
    return FinishUnary(call, scope, grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                                 absl::StrCat("page_size must be in [1, 500] (0 = 50), got ",
                                                              req->page_size())));
  }
  if (!v1::JobKind_IsValid(req->kind()) || !v1::JobState_IsValid(req->state())) {
    return FinishUnary(call, scope, grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "unknown kind or state filter"));
  }
  if (req->page_token().size() > 256) {
    return FinishUnary(call, scope, grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "page_token is too long"));
  }
  core::ListJobsQuery q;
  q.kind = static_cast<core::JobKind>(req->kind());
  q.state = static_cast<core::JobState>(req->state());
  q.page_size = req->page_size() == 0 ? 50 : req->page_size();
  q.page_token = req->page_token();
  auto page = ctx_->job_store->ListJobs(q);
  if (!page.ok()) return FinishUnary(call, scope, ToGrpcStatus(page.status()));
  for (const auto& j : page->jobs) ToProto(j, resp->add_jobs());
  resp->set_next_page_token(page->next_page_token);
  return FinishUnary(call, scope, grpc::Status::OK);
}

grpc::ServerUnaryReactor* GanServiceImpl::CancelJob(grpc::CallbackServerContext* call,
                                                    const v1::CancelJobRequest* req, v1::Job* resp) {
  RpcScope scope(ctx_->metrics, "CancelJob", call);
  if (grpc::Status a = Authorize(ctx_, call, "CancelJob"); !a.ok()) return FinishUnary(call, scope, a);
  if (req->id().empty() || req->id().size() > 128) {
    return FinishUnary(call, scope, grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "id is required (at most 128 characters)"));
  }
  auto job = ctx_->engine->Cancel(req->id());
  if (!job.ok()) return FinishUnary(call, scope, ToGrpcStatus(job.status()));
  ToProto(*job, resp);
  return FinishUnary(call, scope, grpc::Status::OK);
}

grpc::ServerWriteReactor<v1::ImageBatch>* GanServiceImpl::GenerateSamples(grpc::CallbackServerContext* call,
                                                                          const v1::GenerateSamplesRequest* req) {
  RpcScope scope(ctx_->metrics, "GenerateSamples", call);
  if (grpc::Status a = Authorize(ctx_, call, "GenerateSamples"); !a.ok()) return FinishStream<v1::ImageBatch>(scope, a);
  if (ctx_->shutting_down) {
    return FinishStream<v1::ImageBatch>(scope, grpc::Status(grpc::StatusCode::UNAVAILABLE, "the server is shutting down"));
  }
  auto plan = PlanGenerate(*req, *ctx_->repository, ctx_->options);
  if (!plan.ok()) {
    ctx_->metrics->RecordRejected("invalid");
    return FinishStream<v1::ImageBatch>(scope, ToGrpcStatus(plan.status()));
  }
  auto shared = std::make_shared<const GeneratePlan>(std::move(*plan));
  BatchSource src{shared->total, shared->batch_size, "generate",
                  [shared](int start, int count) { return PrepareGenerateBatch(*shared, start, count); }};
  return new GenerateReactor(ctx_, call, std::move(src), std::move(scope));
}

grpc::ServerUnaryReactor* GanServiceImpl::ListModels(grpc::CallbackServerContext* call,
                                                     const v1::ListModelsRequest* req, v1::ListModelsResponse* resp) {
  RpcScope scope(ctx_->metrics, "ListModels", call);
  if (grpc::Status a = Authorize(ctx_, call, "ListModels"); !a.ok()) return FinishUnary(call, scope, a);
  if (!v1::ModelKind_IsValid(req->kind())) {
    return FinishUnary(call, scope, grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "unknown kind filter"));
  }
  for (const auto& m : ctx_->repository->List()) {
    if (req->kind() != v1::MODEL_KIND_UNSPECIFIED && static_cast<int>(m.kind) != req->kind()) continue;
    ToProto(m, resp->add_models());
  }
  return FinishUnary(call, scope, grpc::Status::OK);
}

grpc::ServerUnaryReactor* GanServiceImpl::GetModel(grpc::CallbackServerContext* call, const v1::GetModelRequest* req,
                                                   v1::Model* resp) {
  RpcScope scope(ctx_->metrics, "GetModel", call);
  if (grpc::Status a = Authorize(ctx_, call, "GetModel"); !a.ok()) return FinishUnary(call, scope, a);
  if (!core::IsValidModelName(req->name())) {
    return FinishUnary(call, scope, grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                                 "name must match [a-z0-9][a-z0-9._-]{0,63}"));
  }
  auto m = ctx_->repository->Get(req->name());
  if (!m.ok()) return FinishUnary(call, scope, ToGrpcStatus(m.status()));
  ToProto(*m, resp);
  return FinishUnary(call, scope, grpc::Status::OK);
}

grpc::ServerUnaryReactor* GanServiceImpl::DeleteModel(grpc::CallbackServerContext* call,
                                                      const v1::DeleteModelRequest* req, v1::DeleteModelResponse*) {
  RpcScope scope(ctx_->metrics, "DeleteModel", call);
  if (grpc::Status a = Authorize(ctx_, call, "DeleteModel"); !a.ok()) return FinishUnary(call, scope, a);
  if (!core::IsValidModelName(req->name())) {
    return FinishUnary(call, scope, grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                                 "name must match [a-z0-9][a-z0-9._-]{0,63}"));
  }
  return FinishUnary(call, scope, ToGrpcStatus(ctx_->repository->Delete(req->name())));
}

}  // namespace ganserve::server
