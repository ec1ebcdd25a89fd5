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
      spec.base_model = chunk_.base_model();
      auto ticket = ctx_->service().BeginImport(std::move(spec));
      if (!ticket.ok()) return End(ticket.status());
      ticket_ = std::move(*ticket);
      if (absl::Status st = OpenFile(ticket_->files.back().staged_path); !st.ok()) return End(st);
    } else if (!chunk_.filename().empty()) {
      // The next file begins: the previous one must be whole.
      if (absl::Status st = CloseFile(); !st.ok()) return End(st);
      auto path = ctx_->service().AddImportFile(&*ticket_, chunk_.filename(), chunk_.total_bytes());
      if (!path.ok()) return End(path.status());
      if (absl::Status st = OpenFile(*path); !st.ok()) return End(st);
    }
    const int64_t total = ticket_->files.back().total_bytes;
    received_ += static_cast<int64_t>(chunk_.data().size());
    if (received_ > total) {
      return End(absl::InvalidArgumentError(
          absl::StrCat("'", ticket_->files.back().filename, "' is longer than its total_bytes (", total, ")")));
    }
    hash_->Update(chunk_.data());
    out_.write(chunk_.data().data(), static_cast<std::streamsize>(chunk_.data().size()));
    if (!out_) return End(absl::InternalError("writing the upload failed (disk full?)"));
    StartRead(&chunk_);
  }
  void OnDone() override { delete this; }

 private:
  // A file's first chunk carries its SHA-256; its bytes go to `path`.
  absl::Status OpenFile(const std::string& path) {
    expected_sha256_ = chunk_.sha256();
    if (expected_sha256_.size() != 64) {
      return absl::InvalidArgumentError("each file's first chunk must carry its sha256 (64 hex digits)");
    }
    hash_.emplace();
    received_ = 0;
    out_.open(path, std::ios::binary | std::ios::trunc);
    if (!out_) return absl::InternalError("cannot open the staging file");
    return absl::OkStatus();
  }

  // The current file is complete: its size and digest as announced.
  absl::Status CloseFile() {
    out_.close();
    const core::service::ImportFile& f = ticket_->files.back();
    if (received_ != f.total_bytes) {
      return absl::InvalidArgumentError(
          absl::StrCat("'", f.filename, "' ended after ", received_, " of ", f.total_bytes, " bytes (truncated)"));
    }
    if (const std::string got = hash_->FinalHex(); got != expected_sha256_) {
      return absl::InvalidArgumentError(absl::StrCat("sha256 mismatch: '", f.filename, "' hashes to ", got,
                                                     ", its first chunk said ", expected_sha256_));
    }
    return absl::OkStatus();
  }

  void Complete() {
    if (!ticket_.has_value()) return End(absl::InvalidArgumentError("the upload had no chunks"));
    if (absl::Status st = CloseFile(); !st.ok()) return End(st);
    // Loading the model takes seconds for large files: off the gRPC thread.
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
  std::optional<core::Sha256> hash_;
  int64_t received_ = 0;
};

}  // namespace

grpc::ServerReadReactor<v1::ImportModelChunk>* StartImportStream(ServiceContext* ctx, v1::Model* response,
                                                                 std::unique_ptr<RpcScope> scope) {
  return new ImportStream(ctx, response, std::move(scope));
}

}  // namespace ganserve::server
