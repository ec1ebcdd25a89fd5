#include "server/gan_service.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <random>

#include "absl/strings/str_cat.h"
#include "server/convert.h"
#include "server/generate_request.h"
#include "server/status_util.h"

namespace ganserve::server {
namespace {

using Clock = std::chrono::steady_clock;

// A per-call id for logs: the caller's x-request-id metadata, else a random one.
std::string CallId(const grpc::CallbackServerContext* ctx) {
  const auto& md = ctx->client_metadata();
  auto it = md.find("x-request-id");
  if (it != md.end() && it->second.size() <= 64) return std::string(it->second.data(), it->second.size());
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return absl::StrCat(absl::Hex(rng(), absl::kZeroPad16));
}

// Times one RPC and records its outcome once.
class RpcScope {
 public:
  RpcScope(ServiceContext* ctx, const char* method, const grpc::CallbackServerContext* call)
      : ctx_(ctx), method_(method), id_(CallId(call)), start_(Clock::now()) {}
  void Done(const grpc::Status& s) {
    const double secs = std::chrono::duration<double>(Clock::now() - start_).count();
    const char* code = GrpcCodeName(s.error_code());
    ctx_->metrics->RecordRpc(method_, code, secs);
    if (s.error_code() == grpc::StatusCode::INTERNAL || s.error_code() == grpc::StatusCode::UNKNOWN) {
      spdlog::warn("rpc={} id={} code={} secs={:.3f} msg={}", method_, id_, code, secs, s.error_message());
    } else {
      spdlog::debug("rpc={} id={} code={} secs={:.3f} msg={}", method_, id_, code, secs, s.error_message());
    }
  }
  const std::string& id() const { return id_; }

 private:
  ServiceContext* ctx_;
  const char* method_;
  std::string id_;
  Clock::time_point start_;
};

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

// Streams GenerateSamples batches: one executor task per batch, the next batch only
// after the previous write completed, so a slow reader holds at most one batch.
class GenerateReactor : public grpc::ServerWriteReactor<v1::ImageBatch> {
 public:
  GenerateReactor(ServiceContext* ctx, grpc::CallbackServerContext* call, GeneratePlan plan, RpcScope scope)
      : ctx_(ctx), call_(call), plan_(std::move(plan)), scope_(std::move(scope)) {
    NextBatch();
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
    absl::Status submitted = ctx_->executor->Submit(core::WorkClass::kInteractive, [this, start, count](bool dropped) {
      if (dropped) return End(grpc::Status(grpc::StatusCode::UNAVAILABLE, "the server is shutting down"));
      if (cancelled_) return End(grpc::Status(grpc::StatusCode::CANCELLED, "cancelled by the client"));
      auto batch = RenderBatch(plan_, start, count);
      if (!batch.ok()) return End(ToGrpcStatus(batch.status()));
      ctx_->metrics->AddImagesGenerated("generate", count);
      batch_ = std::move(*batch);
      next_ = start + count;
      StartWrite(&batch_);
    });
    if (!submitted.ok()) {
      ctx_->metrics->RecordRejected("queue_full");
      End(ToGrpcStatus(submitted));
    }
  }

  ServiceContext* const ctx_;
  grpc::CallbackServerContext* const call_;
  const GeneratePlan plan_;
  RpcScope scope_;
  std::atomic<bool> cancelled_{false};
  int next_ = 0;
  v1::ImageBatch batch_;
  grpc::Status status_;
};

// Replays a finished job's stored events.
class ReplayReactor : public grpc::ServerWriteReactor<v1::JobEvent> {
 public:
  ReplayReactor(std::vector<core::JobEventRecord> events, RpcScope scope)
      : events_(std::move(events)), scope_(std::move(scope)) {
    Next();
  }
  void OnWriteDone(bool ok) override {
    if (!ok) return End(grpc::Status(grpc::StatusCode::CANCELLED, "the client went away"));
    Next();
  }
  void OnDone() override { delete this; }

 private:
  void End(const grpc::Status& s) {
    scope_.Done(s);
    Finish(s);
  }
  void Next() {
    while (i_ < events_.size()) {
      if (event_.ParseFromString(events_[i_++].payload)) return StartWrite(&event_);
    }
    End(grpc::Status::OK);
  }
  std::vector<core::JobEventRecord> events_;
  RpcScope scope_;
  size_t i_ = 0;
  v1::JobEvent event_;
};

grpc::Status NotBuilt(const char* what) {
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, absl::StrCat(what, " is not built yet in this server"));
}

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

grpc::ServerWriteReactor<v1::JobEvent>* GanServiceImpl::AdaptDomain(grpc::CallbackServerContext* call,
                                                                    const v1::AdaptDomainRequest*) {
  RpcScope scope(ctx_, "AdaptDomain", call);
  return FinishStream<v1::JobEvent>(scope, NotBuilt("AdaptDomain (StyleGAN-NADA training)"));
}

grpc::ServerWriteReactor<v1::JobEvent>* GanServiceImpl::InvertImage(grpc::CallbackServerContext* call,
                                                                    const v1::InvertImageRequest*) {
  RpcScope scope(ctx_, "InvertImage", call);
  return FinishStream<v1::JobEvent>(scope, NotBuilt("InvertImage (latent projection)"));
}

grpc::ServerWriteReactor<v1::ImageBatch>* GanServiceImpl::Edit(grpc::CallbackServerContext* call,
                                                               const v1::EditRequest*) {
  RpcScope scope(ctx_, "Edit", call);
  return FinishStream<v1::ImageBatch>(scope, NotBuilt("Edit (StyleCLIP global directions and latent optimization)"));
}

grpc::ServerWriteReactor<v1::JobEvent>* GanServiceImpl::WatchJob(grpc::CallbackServerContext* call,
                                                                 const v1::WatchJobRequest* req) {
  RpcScope scope(ctx_, "WatchJob", call);
  if (req->id().empty() || req->id().size() > 128) {
    return FinishStream<v1::JobEvent>(scope, grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                                          "id is required (at most 128 characters)"));
  }
  if (req->after_seq() < 0) {
    return FinishStream<v1::JobEvent>(scope,
                                      grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "after_seq must be >= 0"));
  }
  auto job = ctx_->job_store->GetJob(req->id());
  if (!job.ok()) return FinishStream<v1::JobEvent>(scope, ToGrpcStatus(job.status()));
  auto first = ctx_->job_store->FirstSeq(req->id());
  if (!first.ok()) return FinishStream<v1::JobEvent>(scope, ToGrpcStatus(first.status()));
  if (*first > 0 && req->after_seq() + 1 < *first) {
    return FinishStream<v1::JobEvent>(
        scope, grpc::Status(grpc::StatusCode::OUT_OF_RANGE,
                            absl::StrCat("events after seq ", req->after_seq(), " were discarded; the oldest kept is ",
                                         *first, " and the current seq is ", job->last_seq,
                                         "; call GetJob for the snapshot and watch from there")));
  }
  if (!core::IsTerminal(job->state)) {
    return FinishStream<v1::JobEvent>(scope, NotBuilt("following a running job live (the job engine)"));
  }
  auto events = ctx_->job_store->ListEvents(req->id(), req->after_seq(), 100000);
  if (!events.ok()) return FinishStream<v1::JobEvent>(scope, ToGrpcStatus(events.status()));
  return new ReplayReactor(std::move(*events), std::move(scope));
}

grpc::ServerUnaryReactor* GanServiceImpl::GetJob(grpc::CallbackServerContext* call, const v1::GetJobRequest* req,
                                                 v1::Job* resp) {
  RpcScope scope(ctx_, "GetJob", call);
  if (req->id().empty() || req->id().size() > 128) {
    return FinishUnary(call, scope, grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "id is required (at most 128 characters)"));
  }
  auto job = ctx_->job_store->GetJob(req->id());
  if (!job.ok()) return FinishUnary(call, scope, ToGrpcStatus(job.status()));
  ToProto(*job, resp);
  return FinishUnary(call, scope, grpc::Status::OK);
}

grpc::ServerUnaryReactor* GanServiceImpl::ListJobs(grpc::CallbackServerContext* call, const v1::ListJobsRequest* req,
                                                   v1::ListJobsResponse* resp) {
  RpcScope scope(ctx_, "ListJobs", call);
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
  RpcScope scope(ctx_, "CancelJob", call);
  if (req->id().empty() || req->id().size() > 128) {
    return FinishUnary(call, scope, grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "id is required (at most 128 characters)"));
  }
  auto job = ctx_->job_store->GetJob(req->id());
  if (!job.ok()) return FinishUnary(call, scope, ToGrpcStatus(job.status()));
  if (!core::IsTerminal(job->state)) {
    if (job->state == core::JobState::kQueued) {
      // Not started: it ends here.
      job->state = core::JobState::kCancelled;
      job->end_time_ms = NowMs();
    }
    job->cancel_requested = true;
    v1::JobEvent ev;
    ev.set_time_unix_ms(NowMs());
    ev.set_state_changed(true);
    ev.set_seq(job->last_seq + 1);
    ToProto(*job, ev.mutable_job());
    auto seq = ctx_->job_store->AppendEvent(*job, "state", ev.SerializeAsString(), ev.time_unix_ms());
    if (!seq.ok()) return FinishUnary(call, scope, ToGrpcStatus(seq.status()));
  }
  ToProto(*job, resp);
  return FinishUnary(call, scope, grpc::Status::OK);
}

grpc::ServerWriteReactor<v1::ImageBatch>* GanServiceImpl::GenerateSamples(grpc::CallbackServerContext* call,
                                                                          const v1::GenerateSamplesRequest* req) {
  RpcScope scope(ctx_, "GenerateSamples", call);
  if (ctx_->shutting_down) {
    return FinishStream<v1::ImageBatch>(scope, grpc::Status(grpc::StatusCode::UNAVAILABLE, "the server is shutting down"));
  }
  auto plan = PlanGenerate(*req, *ctx_->repository, ctx_->options);
  if (!plan.ok()) {
    ctx_->metrics->RecordRejected("invalid");
    return FinishStream<v1::ImageBatch>(scope, ToGrpcStatus(plan.status()));
  }
  return new GenerateReactor(ctx_, call, std::move(*plan), std::move(scope));
}

grpc::ServerUnaryReactor* GanServiceImpl::ListModels(grpc::CallbackServerContext* call,
                                                     const v1::ListModelsRequest* req, v1::ListModelsResponse* resp) {
  RpcScope scope(ctx_, "ListModels", call);
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
  RpcScope scope(ctx_, "GetModel", call);
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
  RpcScope scope(ctx_, "DeleteModel", call);
  if (!core::IsValidModelName(req->name())) {
    return FinishUnary(call, scope, grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                                 "name must match [a-z0-9][a-z0-9._-]{0,63}"));
  }
  return FinishUnary(call, scope, ToGrpcStatus(ctx_->repository->Delete(req->name())));
}

}  // namespace ganserve::server
