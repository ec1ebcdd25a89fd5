#include "server/streams/import_stream.h"

#include <fstream>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/util/sha256.h"
#include "server/api/api.h"
#include "server/service_context.h"
#include "server/status_util.h"

namespace ganserve::server {
namespace {

class ImportStream : public grpc::ServerReadReactor<v1::ImportModelChunk> {
 public:
  ImportStream(ServiceContext* ctx, v1::Model* response, std::unique_ptr<RpcScope> scope)
      : ctx_(ctx), response_(response), scope_(std::move(scope)) {
    StartRead(&chunk_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) return Complete();  // the caller finished writing (or went away)
    if (!ticket_.has_value()) {
      core::service::ImportSpec spec;
      spec.name = chunk_.name();
      spec.kind = chunk_.kind();
      spec.filename = chunk_.filename();
      spec.total_bytes = chunk_.total_bytes();
      spec.domain = chunk_.domain();
      expected_sha256_ = chunk_.sha256();
      if (expected_sha256_.size() != 64) {
        return End(absl::InvalidArgumentError("the first chunk must carry the file's sha256 (64 hex digits)"));
      }
      auto ticket = ctx_->service().BeginImport(std::move(spec));
      if (!ticket.ok()) return End(ticket.status());
      ticket_ = std::move(*ticket);
      out_.open(ticket_->staged_path, std::ios::binary | std::ios::trunc);
      if (!out_) return End(absl::InternalError("cannot open the staging file"));
    }
    received_ += static_cast<int64_t>(chunk_.data().size());
    if (received_ > ticket_->spec.total_bytes) {
      return End(absl::InvalidArgumentError(
          absl::StrCat("the upload is longer than its total_bytes (", ticket_->spec.total_bytes, ")")));
    }
    hash_.Update(chunk_.data());
    out_.write(chunk_.data().data(), static_cast<std::streamsize>(chunk_.data().size()));
    if (!out_) return End(absl::InternalError("writing the upload failed (disk full?)"));
    StartRead(&chunk_);
  }
  void OnDone() override { delete this; }

 private:
  void Complete() {
    if (!ticket_.has_value()) return End(absl::InvalidArgumentError("the upload had no chunks"));
    out_.close();
    if (received_ != ticket_->spec.total_bytes) {
      return End(absl::InvalidArgumentError(
          absl::StrCat("the upload ended after ", received_, " of ", ticket_->spec.total_bytes, " bytes (truncated)")));
    }
    if (const std::string got = hash_.FinalHex(); got != expected_sha256_) {
      return End(absl::InvalidArgumentError(
          absl::StrCat("sha256 mismatch: the upload hashes to ", got, ", the first chunk said ", expected_sha256_)));
    }
    // Loading the generator takes seconds for large files: off the gRPC thread.
    absl::Status posted = ctx_->app->host_pool().Submit([this](bool dropped) {
      if (dropped) return End(absl::UnavailableError("the server is shutting down"));
      auto info = ctx_->service().FinishImport(*ticket_);
      ticket_.reset();  // FinishImport cleaned up
      if (!info.ok()) return End(info.status());
      api::ToProto(*info, response_);
      End(absl::OkStatus());
    });
    if (!posted.ok()) End(posted);
  }

  void End(const absl::Status& s) {
    if (out_.is_open()) out_.close();
    if (ticket_.has_value()) ctx_->service().AbortImport(*ticket_);
    const grpc::Status g = ToGrpcStatus(s);
    scope_->Done(g);
    Finish(g);
  }

  ServiceContext* const ctx_;
  v1::Model* const response_;
  std::unique_ptr<RpcScope> scope_;
  v1::ImportModelChunk chunk_;
  std::optional<core::service::ImportTicket> ticket_;
  std::string expected_sha256_;
  std::ofstream out_;
  core::Sha256 hash_;
  int64_t received_ = 0;
};

}  // namespace

grpc::ServerReadReactor<v1::ImportModelChunk>* StartImportStream(ServiceContext* ctx, v1::Model* response,
                                                                 std::unique_ptr<RpcScope> scope) {
  return new ImportStream(ctx, response, std::move(scope));
}

}  // namespace ganserve::server
