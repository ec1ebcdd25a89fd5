#include "server/streams/export_stream.h"

#include <algorithm>
#include <atomic>
#include <utility>

#include "core/util/sha256.h"
#include "server/service_context.h"
#include "server/status_util.h"

namespace ganserve::server {
namespace {

class ExportStream : public grpc::ServerWriteReactor<v1::ExportModelChunk> {
 public:
  ExportStream(ServiceContext* ctx, std::string name, core::service::ExportFormat format,
               std::unique_ptr<RpcScope> scope)
      : ctx_(ctx), name_(std::move(name)), format_(format), scope_(std::move(scope)) {}

  void Start() {
    absl::Status posted = ctx_->app->host_pool().Submit([this](bool dropped) {
      if (dropped) return End(absl::UnavailableError("the server is shutting down"));
      auto file = ctx_->service().ExportModel(name_, format_);
      if (!file.ok()) return End(file.status());
      file_ = std::move(*file);
      chunk_.set_filename(file_.filename);
      chunk_.set_total_bytes(static_cast<int64_t>(file_.bytes.size()));
      chunk_.set_sha256(core::Sha256Hex(file_.bytes));
      WriteNext();
    });
    if (!posted.ok()) End(posted);
  }

  void OnWriteDone(bool ok) override {
    if (!ok) return End(absl::CancelledError("the caller stopped reading"));
    chunk_.Clear();
    if (offset_ >= file_.bytes.size()) return End(absl::OkStatus());
    WriteNext();
  }
  void OnCancel() override { cancelled_ = true; }
  void OnDone() override { delete this; }

 private:
  void WriteNext() {
    if (cancelled_) return End(absl::CancelledError("cancelled by the caller"));
    const size_t n = std::min(kExportChunkBytes, file_.bytes.size() - offset_);
    chunk_.set_offset(static_cast<int64_t>(offset_));
    chunk_.set_data(file_.bytes.data() + offset_, n);
    offset_ += n;
    StartWrite(&chunk_);
  }
  void End(const absl::Status& s) {
    const grpc::Status g = ToGrpcStatus(s);
    scope_->Done(g);
    Finish(g);
  }

  ServiceContext* const ctx_;
  const std::string name_;
  const core::service::ExportFormat format_;
  std::unique_ptr<RpcScope> scope_;
  core::service::ExportedModel file_;
  size_t offset_ = 0;
  v1::ExportModelChunk chunk_;
  std::atomic<bool> cancelled_{false};
};

}  // namespace

grpc::ServerWriteReactor<v1::ExportModelChunk>* StartExportStream(ServiceContext* ctx, std::string name,
                                                                  core::service::ExportFormat format,
                                                                  std::unique_ptr<RpcScope> scope) {
  auto* s = new ExportStream(ctx, std::move(name), format, std::move(scope));
  s->Start();
  return s;
}

}  // namespace ganserve::server
