#include "server/streams/image_stream.h"

#include <atomic>
#include <chrono>

#include "absl/strings/str_cat.h"
#include "core/runtime/render_batcher.h"
#include "server/api/api.h"
#include "server/service_context.h"
#include "server/status_util.h"

namespace ganserve::server {
namespace {

absl::Status ShuttingDown() { return absl::UnavailableError("the server is shutting down"); }
absl::Status ClientGone() { return absl::CancelledError("the client went away"); }
absl::Status ClientCancelled() { return absl::CancelledError("cancelled by the client"); }

// Base of both streams: ends once, through the one status mapping.
class ImageStreamBase : public grpc::ServerWriteReactor<v1::ImageBatch> {
 public:
  ImageStreamBase(ServiceContext* ctx, grpc::CallbackServerContext* call, RpcScope scope)
      : ctx_(ctx), call_(call), scope_(std::move(scope)) {}
  void OnCancel() override { cancelled_ = true; }
  void OnDone() override { delete this; }

 protected:
  void End(const absl::Status& s) {
    const grpc::Status g = ToGrpcStatus(s);
    scope_.Done(g);
    Finish(g);
  }
  bool DeadlinePassed() const { return call_->deadline() < std::chrono::system_clock::now(); }
  // Posts `fn` to the executor; a full queue or a stopped executor ends the stream.
  void Post(core::WorkClass cls, std::function<void()> fn) {
    Posted(ctx_->app->executor().Submit(cls, Guarded(std::move(fn))));
  }
  // Posts `fn` to the host pool, likewise.
  void PostHost(std::function<void()> fn) { Posted(ctx_->app->host_pool().Submit(Guarded(std::move(fn)))); }

  ServiceContext* const ctx_;
  grpc::CallbackServerContext* const call_;
  RpcScope scope_;
  std::atomic<bool> cancelled_{false};

 private:
  // A task that ends the stream when it is dropped at shutdown instead of running.
  std::function<void(bool)> Guarded(std::function<void()> fn) {
    return [this, fn = std::move(fn)](bool dropped) {
      if (dropped) return End(ShuttingDown());
      fn();
    };
  }
  void Posted(const absl::Status& st) {
    if (st.ok()) return;
    ctx_->metrics->RecordRejected(absl::IsResourceExhausted(st) ? "queue_full" : "unavailable");
    End(st);
  }
};

class GenerateReactor : public ImageStreamBase {
 public:
  GenerateReactor(ServiceContext* ctx, grpc::CallbackServerContext* call, RpcScope scope)
      : ImageStreamBase(ctx, call, std::move(scope)) {}

  void Start(std::function<absl::StatusOr<BatchSource>()> planner, PlanOn plan_on) {
    auto plan = [this, planner = std::move(planner)] {
      auto src = planner();
      if (!src.ok()) return End(src.status());
      plan_ = std::move(*src);
      NextBatch();
    };
    if (plan_on == PlanOn::kDevice) {
      Post(core::WorkClass::kInteractive, std::move(plan));
    } else {
      PostHost(std::move(plan));
    }
  }

  void OnWriteDone(bool ok) override {
    if (!ok) return End(ClientGone());
    NextBatch();
  }

 private:
  void NextBatch() {
    if (cancelled_) return End(ClientCancelled());
    if (DeadlinePassed()) {
      return End(
          absl::DeadlineExceededError(absl::StrCat("deadline passed after ", next_, " of ", plan_.total, " images")));
    }
    if (next_ >= plan_.total) return End(absl::OkStatus());
    const int start = next_;
    const int count = std::min(plan_.batch_size, plan_.total - start);
    auto work = std::make_shared<core::service::BatchWork>(plan_.prepare(start, count));
    core::RenderBatcher::Work w;
    w.generator = work->generator;
    w.params = work->params;
    w.wanted = [this] { return !cancelled_.load(); };
    // Runs on the device thread: hands the pixels to the host pool for encoding.
    w.done = [this, work, count](absl::StatusOr<core::stylegan2::GenerateResult> result) {
      if (!result.ok()) return End(result.status());
      auto rendered = std::make_shared<const core::stylegan2::GenerateResult>(std::move(*result));
      PostHost([this, work, count, rendered] {
        if (cancelled_) return End(ClientCancelled());
        auto batch = core::service::EncodeBatch(*work, *rendered);
        if (!batch.ok()) return End(batch.status());
        ctx_->metrics->AddImagesGenerated(plan_.operation, count);
        batch_.Clear();
        api::ToProto(*batch, &batch_);
        next_ = work->start + count;
        StartWrite(&batch_);
      });
    };
    absl::Status submitted = ctx_->app->batcher().Submit(std::move(w));
    if (!submitted.ok()) {
      ctx_->metrics->RecordRejected(absl::IsResourceExhausted(submitted) ? "queue_full" : "unavailable");
      End(submitted);
    }
  }

  BatchSource plan_;  // set before the first batch, then read-only
  int next_ = 0;
  v1::ImageBatch batch_;
};

class OptimizeReactor : public ImageStreamBase {
 public:
  OptimizeReactor(ServiceContext* ctx, grpc::CallbackServerContext* call, RpcScope scope)
      : ImageStreamBase(ctx, call, std::move(scope)) {}

  void Start(std::function<absl::StatusOr<core::service::OptimizePlan>()> planner) {
    Post(core::WorkClass::kBatch, [this, planner = std::move(planner)] {
      auto plan = planner();
      if (!plan.ok()) return End(plan.status());
      session_ = std::make_unique<core::service::OptimizeSession>(
          std::make_shared<const core::service::OptimizePlan>(std::move(*plan)));
      Next();
    });
  }

  void OnWriteDone(bool ok) override {
    if (!ok) return End(ClientGone());
    Next();
  }

 private:
  void Next() {
    if (cancelled_) return End(ClientCancelled());
    if (DeadlinePassed()) {
      return End(absl::DeadlineExceededError(
          absl::StrCat("deadline passed while optimising input ", session_->input(), " of ", session_->inputs())));
    }
    if (session_->done()) return End(absl::OkStatus());
    Post(core::WorkClass::kBatch, [this] {
      if (cancelled_) return End(ClientCancelled());
      auto msg = session_->Step();
      if (!msg.ok()) return End(msg.status());
      if (!msg->has_value()) return Next();
      if (!(*msg)->images.empty()) ctx_->metrics->AddImagesGenerated("edit", 1);
      batch_.Clear();
      api::ToProto(**msg, &batch_);
      StartWrite(&batch_);
    });
  }

  std::unique_ptr<core::service::OptimizeSession> session_;  // set before the first step
  v1::ImageBatch batch_;
};

}  // namespace

grpc::ServerWriteReactor<v1::ImageBatch>* StartImageStream(ServiceContext* ctx, grpc::CallbackServerContext* call,
                                                           std::function<absl::StatusOr<BatchSource>()> planner,
                                                           PlanOn plan_on, RpcScope scope) {
  auto* r = new GenerateReactor(ctx, call, std::move(scope));
  r->Start(std::move(planner), plan_on);
  return r;
}

grpc::ServerWriteReactor<v1::ImageBatch>* StartOptimizeStream(
    ServiceContext* ctx, grpc::CallbackServerContext* call,
    std::function<absl::StatusOr<core::service::OptimizePlan>()> planner, RpcScope scope) {
  auto* r = new OptimizeReactor(ctx, call, std::move(scope));
  r->Start(std::move(planner));
  return r;
}

}  // namespace ganserve::server
