#include "client/remote.h"

#include <google/protobuf/util/json_util.h>
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <thread>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "client/util.h"
#include "core/edit/mapper_trainer.h"
#include "core/io/image_codec.h"
#include "core/io/npy.h"
#include "core/models/clip/preprocess.h"
#include "core/service/specs.h"
#include "core/util/file_util.h"
#include "core/util/sha256.h"
#include "core/util/status_macros.h"
#include "ganserve/v1/ganserve.grpc.pb.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "server/retry_info.h"

namespace ganserve::client {
namespace {

// Adds the bearer token to every call's metadata (works on plaintext channels too,
// where gRPC refuses call credentials).
class TokenInterceptor : public grpc::experimental::Interceptor {
 public:
  explicit TokenInterceptor(std::string header) : header_(std::move(header)) {}
  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(grpc::experimental::InterceptionHookPoints::PRE_SEND_INITIAL_METADATA)) {
      methods->GetSendInitialMetadata()->insert({"authorization", header_});
    }
    methods->Proceed();
  }

 private:
  std::string header_;
};

class TokenInterceptorFactory : public grpc::experimental::ClientInterceptorFactoryInterface {
 public:
  explicit TokenInterceptorFactory(std::string token) : header_("Bearer " + std::move(token)) {}
  grpc::experimental::Interceptor* CreateClientInterceptor(grpc::experimental::ClientRpcInfo*) override {
    return new TokenInterceptor(header_);
  }

 private:
  std::string header_;
};

std::string ReadPemOrEmpty(const std::string& path) {
  if (path.empty()) return "";
  auto pem = core::ReadFile(path, 1 << 20);
  if (!pem.ok()) {
    std::fprintf(stderr, "ganctl: %s\n", std::string(pem.status().message()).c_str());
    return "";
  }
  return *pem;
}

std::shared_ptr<grpc::Channel> Channel(const Connection& c) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(256 << 20);
  args.SetMaxSendMessageSize(256 << 20);
  // A target with several addresses (dns:/// of a headless Service, ipv4:A,B,C) spreads
  // calls over the replicas.
  args.SetLoadBalancingPolicyName("round_robin");
  std::shared_ptr<grpc::ChannelCredentials> creds = grpc::InsecureChannelCredentials();
  if (!c.tls_ca.empty() || !c.tls_cert.empty()) {
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = ReadPemOrEmpty(c.tls_ca);
    ssl.pem_cert_chain = ReadPemOrEmpty(c.tls_cert);
    ssl.pem_private_key = ReadPemOrEmpty(c.tls_key);
    creds = grpc::SslCredentials(ssl);
  }
  std::vector<std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface>> interceptors;
  if (!c.token.empty()) interceptors.push_back(std::make_unique<TokenInterceptorFactory>(c.token));
  return grpc::experimental::CreateCustomChannelWithInterceptors(c.server, creds, args, std::move(interceptors));
}

void SetDeadline(const Connection& c, grpc::ClientContext* ctx) {
  if (c.timeout_seconds > 0) {
    ctx->set_deadline(std::chrono::system_clock::now() +
                      std::chrono::milliseconds(static_cast<int64_t>(c.timeout_seconds * 1000)));
  }
}

absl::Status FromGrpc(const Connection& c, const grpc::Status& s) {
  if (s.ok()) return absl::OkStatus();
  // pick_first says "failed to connect to all addresses", round_robin "connections to all
  // backends failing".
  if (s.error_code() == grpc::StatusCode::UNAVAILABLE && (absl::StrContains(s.error_message(), "failed to connect") ||
                                                          absl::StrContains(s.error_message(), "to all backends"))) {
    return absl::UnavailableError(absl::StrCat("cannot reach ganserve at ", c.server, " (is it running?)"));
  }
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()), s.error_message());
}

// Back-pressure: true (after sleeping the server's delay) when `st` is RESOURCE_EXHAUSTED
// with a google.rpc.RetryInfo, nothing was received yet, and retries are left.
bool RetryWhenBusy(const Connection& c, const grpc::Status& st, bool received_any, int attempt) {
  if (received_any || attempt >= c.busy_retries || st.error_code() != grpc::StatusCode::RESOURCE_EXHAUSTED) {
    return false;
  }
  std::optional<absl::Duration> delay = server::RetryDelayOf(st);
  if (!delay.has_value()) return false;
  std::fprintf(stderr, "server busy (%s); retry %d/%d in %s\n", st.error_message().c_str(), attempt + 1, c.busy_retries,
               absl::FormatDuration(*delay).c_str());
  absl::SleepFor(*delay);
  return true;
}

void Print(const Connection& c, const google::protobuf::Message& m, const std::string& text) {
  if (c.json) {
    std::string out;
    google::protobuf::util::JsonPrintOptions o;
    o.add_whitespace = false;
    o.preserve_proto_field_names = true;
    (void)google::protobuf::util::MessageToJsonString(m, &out, o);
    std::printf("%s\n", out.c_str());
  } else {
    std::printf("%s", text.c_str());
  }
}

std::string Lower(std::string s) {
  for (auto& ch : s) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return s;
}

std::string JobLine(const v1::Job& j) {
  std::string line = absl::StrCat(j.id(), "  ", Lower(v1::JobKind_Name(j.kind()).substr(9)), "  ",
                                  Lower(v1::JobState_Name(j.state()).substr(10)), "  step ", j.step(), "/",
                                  j.total_steps(), "  model ", j.model());
  if (!j.result().empty()) absl::StrAppend(&line, "  result ", j.result());
  if (!j.error_message().empty()) absl::StrAppend(&line, "  error: ", j.error_message());
  return line + "\n";
}

std::atomic<bool> g_interrupted{false};

void OnSigint(int) { g_interrupted = true; }

// Writes one preview grid (PNG) from a repeated Image field.
void SavePreviewGrid(const google::protobuf::RepeatedPtrField<v1::Image>& images, const std::string& path) {
  std::vector<core::Rgb8Image> decoded;
  for (const auto& im : images) {
    auto d = core::DecodeImage(im.data());
    if (d.ok()) decoded.push_back(std::move(*d));
  }
  if (decoded.empty()) return;
  auto grid = core::MakeGrid(decoded, static_cast<int>(std::ceil(std::sqrt(static_cast<double>(decoded.size())))));
  if (!grid.ok()) return;
  auto png = core::EncodePng(*grid);
  if (png.ok()) (void)WriteBinary(path, *png);
}

// Follows a job's event stream: progress bar, preview grids under `out_dir`, the final
// state. Ctrl-C detaches (the job goes on). Fails unless the job SUCCEEDED.
absl::Status StreamJob(const Connection& c, std::unique_ptr<grpc::ClientReader<v1::JobEvent>> reader,
                       grpc::ClientContext* ctx, const std::string& out_dir, std::string* result = nullptr) {
  g_interrupted = false;
  auto previous = std::signal(SIGINT, OnSigint);
  std::atomic<bool> done{false};
  std::atomic<grpc::ClientContext*> current{ctx};  // the call a Ctrl-C cancels
  std::thread watcher([&] {
    while (!done) {
      if (g_interrupted) {
        current.load()->TryCancel();
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  });
  v1::JobEvent ev;
  v1::Job last;
  int64_t last_seq = 0;
  std::unique_ptr<grpc::ClientContext> watch_ctx;  // owns the call of a re-attached watch
  std::unique_ptr<v1::GanService::Stub> stub;
  grpc::Status st;
  ProgressBar bar("progress");
  // Re-attaches that brought no new event, in a row.
  for (int fruitless = 0;;) {
    const int64_t seq_before = last_seq;
    while (reader->Read(&ev)) {
      last = ev.job();
      if (ev.seq() > 0 && !ev.heartbeat()) last_seq = ev.seq();
      if (c.json) {
        Print(c, ev, "");
        continue;
      }
      if (ev.has_progress()) {
        std::string extra;
        if (!ev.progress().phase().empty()) extra = absl::StrCat(ev.progress().phase(), "  ");
        for (const auto& [k, v] : ev.progress().losses()) {
          if (k == "total") absl::StrAppend(&extra, "loss ", v);
        }
        absl::StrAppend(&extra, "  ", absl::SixDigits(ev.progress().steps_per_second()), " steps/s  ETA ",
                        static_cast<int>(ev.progress().eta_seconds()), " s");
        bar.Update(ev.progress().step(), ev.progress().total_steps(), extra);
      } else if (ev.has_preview() && !out_dir.empty()) {
        if (ev.preview().source_size() > 0) {
          SavePreviewGrid(ev.preview().source(), (std::filesystem::path(out_dir) / "preview_source.png").string());
        }
        SavePreviewGrid(
            ev.preview().current(),
            (std::filesystem::path(out_dir) / absl::StrCat("preview_", ev.preview().step(), ".png")).string());
      } else if (ev.state_changed()) {
        bar.Finish();
        std::fprintf(stderr, "%s", JobLine(ev.job()).c_str());
      }
    }
    st = reader->Finish();
    const bool ended = last.state() == v1::JOB_STATE_SUCCEEDED || last.state() == v1::JOB_STATE_FAILED ||
                       last.state() == v1::JOB_STATE_CANCELLED;
    // A dropped connection (a server closing aged connections, a balancer, a blip) while the
    // job goes on: watch again from the last event seen.
    if (g_interrupted || ended || last.id().empty() || st.error_code() != grpc::StatusCode::UNAVAILABLE ||
        fruitless >= 10) {
      break;
    }
    fruitless = last_seq > seq_before ? 0 : fruitless + 1;
    std::fprintf(stderr, "\nconnection lost (%s); re-attaching to job %s after event %s\n", st.error_message().c_str(),
                 last.id().c_str(), std::to_string(last_seq).c_str());
    std::this_thread::sleep_for(std::chrono::milliseconds(200 * (fruitless + 1)));
    if (stub == nullptr) stub = v1::GanService::NewStub(Channel(c));
    auto next = std::make_unique<grpc::ClientContext>();
    v1::WatchJobRequest w;
    w.set_id(last.id());
    w.set_after_seq(last_seq);
    current = next.get();
    reader = stub->WatchJob(next.get(), w);
    watch_ctx = std::move(next);
  }
  bar.Finish();
  done = true;
  watcher.join();
  std::signal(SIGINT, previous);
  if (g_interrupted) {
    std::fprintf(stderr,
                 "detached; job %s continues on the server.\n  follow it: ganctl jobs watch %s\n"
                 "  stop it:   ganctl jobs cancel %s\n",
                 last.id().c_str(), last.id().c_str(), last.id().c_str());
    return absl::OkStatus();
  }
  RETURN_IF_ERROR(FromGrpc(c, st));
  if (last.state() == v1::JOB_STATE_SUCCEEDED) {
    if (!c.json) std::printf("%s\n", last.result().c_str());
    if (result != nullptr) *result = last.result();
    return absl::OkStatus();
  }
  if (last.state() == v1::JOB_STATE_FAILED) {
    return absl::Status(static_cast<absl::StatusCode>(last.error_code()),
                        absl::StrCat("job ", last.id(), " failed: ", last.error_message()));
  }
  if (last.state() == v1::JOB_STATE_CANCELLED) {
    return absl::CancelledError(absl::StrCat("job ", last.id(), " was cancelled"));
  }
  return absl::OkStatus();
}

// One unary call of the model RPCs, under the connection's deadline.
template <typename Req, typename Resp>
absl::Status CallModels(const Connection& c,
                        grpc::Status (v1::GanService::Stub::*method)(grpc::ClientContext*, const Req&, Resp*),
                        const Req& req, Resp* resp) {
  auto stub = v1::GanService::NewStub(Channel(c));
  grpc::ClientContext ctx;
  SetDeadline(c, &ctx);
  return FromGrpc(c, (stub.get()->*method)(&ctx, req, resp));
}

int64_t Mib(int64_t bytes) { return (bytes + (1 << 19)) >> 20; }

}  // namespace

int ExitCodeFor(const absl::Status& status) {
  if (status.ok()) return 0;
  if (status.code() == absl::StatusCode::kUnavailable && absl::StrContains(status.message(), "cannot reach")) {
    return 3;
  }
  return 1;
}

absl::Status Health(const Connection& c, const std::string& service) {
  auto stub = grpc::health::v1::Health::NewStub(Channel(c));
  grpc::ClientContext ctx;
  SetDeadline(c, &ctx);
  grpc::health::v1::HealthCheckRequest req;
  req.set_service(service);
  grpc::health::v1::HealthCheckResponse resp;
  RETURN_IF_ERROR(FromGrpc(c, stub->Check(&ctx, req, &resp)));
  const std::string status = grpc::health::v1::HealthCheckResponse::ServingStatus_Name(resp.status());
  Print(c, resp, absl::StrCat(service.empty() ? "server" : service, ": ", status, "\n"));
  if (resp.status() != grpc::health::v1::HealthCheckResponse::SERVING) {
    return absl::UnavailableError(absl::StrCat(service.empty() ? "server" : service, " is ", status));
  }
  return absl::OkStatus();
}

absl::Status ModelsList(const Connection& c) {
  auto stub = v1::GanService::NewStub(Channel(c));
  grpc::ClientContext ctx;
  SetDeadline(c, &ctx);
  v1::ListModelsResponse resp;
  RETURN_IF_ERROR(FromGrpc(c, stub->ListModels(&ctx, v1::ListModelsRequest(), &resp)));
  std::string text;
  for (const auto& m : resp.models()) {
    absl::StrAppend(&text, m.name(), "  ", Lower(v1::ModelKind_Name(m.kind()).substr(11)), "  ",
                    Lower(v1::ModelState_Name(m.state()).substr(12)));
    if (m.resolution() > 0) absl::StrAppend(&text, "  ", m.resolution(), "px");
    if (m.parameterization() > v1::PARAMETERIZATION_FULL) {
      absl::StrAppend(&text, "  ", EnumFlagName(v1::Parameterization_descriptor(), m.parameterization()), " over ",
                      m.base_model(), " (", m.trained_parameters(), " numbers)");
    }
    if (m.kind() == v1::MODEL_KIND_MAPPER || m.kind() == v1::MODEL_KIND_ENCODER) {
      absl::StrAppend(&text, "  of ", m.base_model());
    }
    if (m.pinned()) absl::StrAppend(&text, "  pinned");
    if (m.resident_host_bytes() + m.resident_device_bytes() > 0) {
      absl::StrAppend(&text, "  resident ", Mib(m.resident_host_bytes() + m.resident_device_bytes()), " MiB");
    }
    if (!m.domain().empty()) absl::StrAppend(&text, "  \"", m.domain(), "\"");
    if (!m.error().empty()) absl::StrAppend(&text, "  error: ", m.error());
    text += "\n";
  }
  if (resp.models().empty()) text = "no models in the repository\n";
  Print(c, resp, text);
  return absl::OkStatus();
}

absl::Status ModelsGet(const Connection& c, const std::string& name) {
  v1::GetModelRequest req;
  req.set_name(name);
  v1::Model m;
  RETURN_IF_ERROR(CallModels(c, &v1::GanService::Stub::GetModel, req, &m));
  Print(c, m, m.DebugString());
  return absl::OkStatus();
}

absl::Status ModelsDelete(const Connection& c, const std::string& name) {
  v1::DeleteModelRequest req;
  req.set_name(name);
  v1::DeleteModelResponse resp;
  RETURN_IF_ERROR(CallModels(c, &v1::GanService::Stub::DeleteModel, req, &resp));
  Print(c, resp, absl::StrCat("deleted ", name, "\n"));
  return absl::OkStatus();
}

absl::Status ModelsLoad(const Connection& c, const std::string& name, bool pin) {
  v1::LoadModelRequest req;
  req.set_name(name);
  req.set_pin(pin);
  v1::Model m;
  RETURN_IF_ERROR(CallModels(c, &v1::GanService::Stub::LoadModel, req, &m));
  Print(c, m,
        absl::StrCat("loaded ", name, pin ? " (pinned)" : "", ": ", Mib(m.resident_host_bytes()), " MiB host, ",
                     Mib(m.resident_device_bytes()), " MiB device\n"));
  return absl::OkStatus();
}

absl::Status ModelsUnload(const Connection& c, const std::string& name) {
  v1::UnloadModelRequest req;
  req.set_name(name);
  v1::Model m;
  RETURN_IF_ERROR(CallModels(c, &v1::GanService::Stub::UnloadModel, req, &m));
  Print(c, m, absl::StrCat("unloaded ", name, "\n"));
  return absl::OkStatus();
}

absl::Status ModelsRescan(const Connection& c) {
  v1::RescanRepositoryResponse resp;
  RETURN_IF_ERROR(CallModels(c, &v1::GanService::Stub::RescanRepository, v1::RescanRepositoryRequest(), &resp));
  Print(c, resp,
        absl::StrCat("added: ", resp.added().empty() ? "none" : absl::StrJoin(resp.added(), ", "),
                     "\nremoved: ", resp.removed().empty() ? "none" : absl::StrJoin(resp.removed(), ", "), "\n"));
  return absl::OkStatus();
}

absl::Status ModelsPromote(const Connection& c, const std::string& snapshot, const std::string& name) {
  v1::PromoteSnapshotRequest req;
  req.set_snapshot(snapshot);
  req.set_name(name);
  v1::Model m;
  RETURN_IF_ERROR(CallModels(c, &v1::GanService::Stub::PromoteSnapshot, req, &m));
  Print(c, m, absl::StrCat("promoted ", snapshot, " to ", name, "\n"));
  return absl::OkStatus();
}

absl::Status ModelsImport(const Connection& c, const std::vector<std::string>& paths, const std::string& name,
                          const std::string& kind, const std::string& domain, const std::string& base_model) {
  v1::ModelKind k;
  if (!v1::ModelKind_Parse("MODEL_KIND_" + absl::AsciiStrToUpper(kind), &k) || k == v1::MODEL_KIND_UNSPECIFIED) {
    return absl::InvalidArgumentError(
        absl::StrCat("--kind '", kind, "' is not generator, clip, lpips, mapper, arcface, encoder or landmarks"));
  }
  auto stub = v1::GanService::NewStub(Channel(c));
  grpc::ClientContext ctx;
  SetDeadline(c, &ctx);
  v1::Model m;
  auto writer = stub->ImportModel(&ctx, &m);
  constexpr size_t kChunk = size_t{1} << 20;
  bool open = true;
  for (size_t i = 0; i < paths.size() && open; ++i) {
    ASSIGN_OR_RETURN(std::string bytes, core::ReadFile(paths[i]));
    for (size_t off = 0; off == 0 || off < bytes.size(); off += kChunk) {
      v1::ImportModelChunk chunk;
      if (off == 0) {
        if (i == 0) {
          chunk.set_name(name);
          chunk.set_kind(k);
          chunk.set_domain(domain);
          chunk.set_base_model(base_model);
        }
        chunk.set_filename(std::filesystem::path(paths[i]).filename().string());
        chunk.set_total_bytes(static_cast<int64_t>(bytes.size()));
        chunk.set_sha256(core::Sha256Hex(bytes));
      }
      chunk.set_data(bytes.data() + off, std::min(kChunk, bytes.size() - off));
      if (!writer->Write(chunk)) {  // the server answered early: Finish says why
        open = false;
        break;
      }
    }
  }
  writer->WritesDone();
  RETURN_IF_ERROR(FromGrpc(c, writer->Finish()));
  Print(c, m,
        absl::StrCat("imported ", m.name(), " (", Lower(v1::ModelKind_Name(m.kind()).substr(11)),
                     m.resolution() > 0 ? absl::StrCat(", ", m.resolution(), " px") : "", ")\n"));
  return absl::OkStatus();
}

absl::Status ModelsExport(const Connection& c, const std::string& name, const std::string& format,
                          const std::string& out_path) {
  v1::ExportModelRequest req;
  req.set_name(name);
  v1::ExportFormat f;
  if (!v1::ExportFormat_Parse("EXPORT_FORMAT_" + absl::AsciiStrToUpper(format), &f) ||
      f == v1::EXPORT_FORMAT_UNSPECIFIED) {
    return absl::InvalidArgumentError(absl::StrCat("--format '", format, "' is not torch or safetensors"));
  }
  req.set_format(f);
  auto stub = v1::GanService::NewStub(Channel(c));
  grpc::ClientContext ctx;
  SetDeadline(c, &ctx);
  auto reader = stub->ExportModel(&ctx, req);
  v1::ExportModelChunk chunk;
  std::string bytes, sha256, filename;
  int64_t total = -1;
  while (reader->Read(&chunk)) {
    if (total < 0) {
      total = chunk.total_bytes();
      sha256 = chunk.sha256();
      filename = chunk.filename();
      bytes.reserve(static_cast<size_t>(std::max<int64_t>(total, 0)));
    }
    if (chunk.offset() != static_cast<int64_t>(bytes.size())) {
      return absl::DataLossError(absl::StrCat("export chunk at offset ", chunk.offset(), " after ", bytes.size(),
                                              " bytes: the stream is out of order"));
    }
    bytes += chunk.data();
  }
  RETURN_IF_ERROR(FromGrpc(c, reader->Finish()));
  if (static_cast<int64_t>(bytes.size()) != total || core::Sha256Hex(bytes) != sha256) {
    return absl::DataLossError(absl::StrCat("export of ", name, " arrived with ", bytes.size(), " of ", total,
                                            " bytes or a SHA-256 mismatch; nothing was written"));
  }
  RETURN_IF_ERROR(core::WriteFileAtomic(out_path, bytes));
  v1::ExportModelChunk written;  // what was written, without the data
  written.set_filename(filename);
  written.set_total_bytes(total);
  written.set_sha256(sha256);
  Print(c, written, absl::StrCat("wrote ", out_path, " (", total, " bytes, sha256 ", sha256, ")\n"));
  return absl::OkStatus();
}

absl::Status JobsList(const Connection& c, const std::string& kind, const std::string& state, int page_size,
                      const std::string& page_token) {
  v1::ListJobsRequest req;
  if (!kind.empty()) {
    v1::JobKind k;
    if (!v1::JobKind_Parse("JOB_KIND_" + absl::AsciiStrToUpper(kind), &k)) {
      return absl::InvalidArgumentError("--kind must be adapt, invert, edit_stats or train_mapper");
    }
    req.set_kind(k);
  }
  if (!state.empty()) {
    v1::JobState s;
    if (!v1::JobState_Parse("JOB_STATE_" + absl::AsciiStrToUpper(state), &s)) {
      return absl::InvalidArgumentError("--state must be queued, running, succeeded, failed or cancelled");
    }
    req.set_state(s);
  }
  req.set_page_size(page_size);
  req.set_page_token(page_token);
  auto stub = v1::GanService::NewStub(Channel(c));
  grpc::ClientContext ctx;
  SetDeadline(c, &ctx);
  v1::ListJobsResponse resp;
  RETURN_IF_ERROR(FromGrpc(c, stub->ListJobs(&ctx, req, &resp)));
  std::string text;
  for (const auto& j : resp.jobs()) text += JobLine(j);
  if (resp.jobs().empty()) text = "no jobs\n";
  if (!resp.next_page_token().empty()) absl::StrAppend(&text, "more: --page-token ", resp.next_page_token(), "\n");
  Print(c, resp, text);
  return absl::OkStatus();
}

absl::Status JobsGet(const Connection& c, const std::string& id) {
  auto stub = v1::GanService::NewStub(Channel(c));
  grpc::ClientContext ctx;
  SetDeadline(c, &ctx);
  v1::GetJobRequest req;
  req.set_id(id);
  v1::Job j;
  RETURN_IF_ERROR(FromGrpc(c, stub->GetJob(&ctx, req, &j)));
  Print(c, j, JobLine(j));
  return absl::OkStatus();
}

absl::Status JobsCancel(const Connection& c, const std::string& id) {
  auto stub = v1::GanService::NewStub(Channel(c));
  grpc::ClientContext ctx;
  SetDeadline(c, &ctx);
  v1::CancelJobRequest req;
  req.set_id(id);
  v1::Job j;
  RETURN_IF_ERROR(FromGrpc(c, stub->CancelJob(&ctx, req, &j)));
  Print(c, j, JobLine(j));
  return absl::OkStatus();
}

absl::Status JobsWatch(const Connection& c, const std::string& id, int64_t after_seq) {
  auto stub = v1::GanService::NewStub(Channel(c));
  grpc::ClientContext ctx;
  v1::WatchJobRequest req;
  req.set_id(id);
  req.set_after_seq(after_seq);
  return StreamJob(c, stub->WatchJob(&ctx, req), &ctx, "");
}

absl::Status Generate(const Connection& c, const GenerateArgs& a) {
  v1::GenerateSamplesRequest req;
  req.set_model(a.model);
  if (!a.inversion.empty()) {
    req.set_inversion_id(a.inversion);
  } else if (!a.seeds.empty()) {
    ASSIGN_OR_RETURN(auto seeds, ParseSeeds(a.seeds));
    for (int64_t s : seeds) req.add_seeds(s);
  } else {
    req.set_count(a.count);
    req.set_base_seed(a.base_seed);
  }
  if (a.truncation >= 0) {
    req.set_truncation(a.truncation);
    req.set_has_truncation(true);
  }
  if (a.noise == "random") {
    req.set_noise(v1::NOISE_MODE_RANDOM);
  } else if (a.noise == "none") {
    req.set_noise(v1::NOISE_MODE_NONE);
  } else if (a.noise != "const") {
    return absl::InvalidArgumentError("--noise must be const, random or none");
  }
  req.set_batch_size(a.batch_size);
  if (a.format == "jpeg" || a.format == "jpg") {
    req.set_format(v1::IMAGE_FORMAT_JPEG);
  } else if (a.format != "png") {
    return absl::InvalidArgumentError("--format must be png or jpeg");
  }
  req.set_return_latents(a.return_latents);
  RETURN_IF_ERROR(ApplySets(a.sets, &req));

  auto stub = v1::GanService::NewStub(Channel(c));
  v1::ImageBatch batch;
  ProgressBar bar("generate");
  std::vector<core::Rgb8Image> grid;
  RETURN_IF_ERROR(core::MakeDirs(a.out));
  const std::string ext = req.format() == v1::IMAGE_FORMAT_JPEG ? ".jpg" : ".png";
  grpc::Status st;
  for (int attempt = 0;; ++attempt) {
    grpc::ClientContext ctx;
    SetDeadline(c, &ctx);
    auto reader = stub->GenerateSamples(&ctx, req);
    bool received = false;
    while (reader->Read(&batch)) {
      received = true;
      for (const auto& im : batch.images()) {
        const std::string stem = im.seed() >= 0 ? absl::StrCat("seed", im.seed()) : absl::StrCat("image", im.index());
        RETURN_IF_ERROR(WriteBinary((std::filesystem::path(a.out) / (stem + ext)).string(), im.data()));
        if (im.has_latent()) {
          core::FloatTensor t;
          t.shape.assign(im.latent().values().shape().begin(), im.latent().values().shape().end());
          t.data.assign(im.latent().values().data().begin(), im.latent().values().data().end());
          RETURN_IF_ERROR(core::WriteNpy((std::filesystem::path(a.out) / (stem + "_wplus.npy")).string(), t));
        }
        auto decoded = core::DecodeImage(im.data());
        if (decoded.ok()) grid.push_back(std::move(*decoded));
      }
      if (c.json) Print(c, batch, "");
      bar.Update(batch.done(), batch.total());
    }
    st = reader->Finish();
    if (!RetryWhenBusy(c, st, received, attempt)) break;
  }
  bar.Finish();
  RETURN_IF_ERROR(FromGrpc(c, st));
  if (!grid.empty()) {
    const int cols =
        a.grid_columns > 0 ? a.grid_columns : static_cast<int>(std::ceil(std::sqrt(static_cast<double>(grid.size()))));
    ASSIGN_OR_RETURN(core::Rgb8Image sheet, core::MakeGrid(grid, cols));
    ASSIGN_OR_RETURN(std::string png, core::EncodePng(sheet));
    RETURN_IF_ERROR(WriteBinary((std::filesystem::path(a.out) / "grid.png").string(), png));
  }
  std::fprintf(stderr, "wrote %d images and grid.png to %s\n", batch.done(), a.out.c_str());
  return absl::OkStatus();
}

absl::Status Adapt(const Connection& c, const AdaptArgs& a) {
  v1::AdaptDomainRequest req;
  req.set_model(a.model);
  req.set_source_text(a.from);
  req.set_target_text(a.to);
  req.set_output_name(a.name);
  req.set_iterations(a.iterations);
  for (const auto& path : a.images) {
    ASSIGN_OR_RETURN(std::string bytes, core::ReadFile(path, 16u << 20));
    req.add_target_images(std::move(bytes));
  }
  if (!a.one_shot.empty()) {
    if (!a.images.empty() || !a.to.empty()) {
      return absl::InvalidArgumentError("--one-shot takes the one target image; drop --images and --to");
    }
    req.set_method(v1::ADAPT_METHOD_ONE_SHOT);
    ASSIGN_OR_RETURN(std::string bytes, core::ReadFile(a.one_shot, 16u << 20));
    req.add_target_images(std::move(bytes));
    req.mutable_one_shot()->set_reference_steps(a.reference_steps);
  } else if (a.reference_steps != 0) {
    return absl::InvalidArgumentError("--reference-steps applies to --one-shot");
  }
  req.set_batch_size(a.batch_size);
  req.set_seed(a.seed);
  req.set_preview_every(a.preview_every);
  req.set_snapshot_every(a.snapshot_every);
  req.set_auto_layer_k(a.auto_layer_k);
  req.set_request_id(a.request_id);
  req.set_priority(a.priority);
  req.set_lr_scale(a.lr_scale);
  if (a.mixing.has_value()) req.set_mixing(*a.mixing);
  req.set_auto_layer_iters(a.auto_layer_iters);
  req.set_auto_layer_batch(a.auto_layer_batch);
  if (!a.layer_mapping.empty()) {
    ASSIGN_OR_RETURN(int v, ParseEnumFlag("--layer-mapping", a.layer_mapping, v1::LayerMapping_descriptor()));
    req.set_layer_mapping(static_cast<v1::LayerMapping>(v));
  }
  if (!a.preset.empty()) {
    ASSIGN_OR_RETURN(int v, ParseEnumFlag("--preset", a.preset, v1::LayerPreset_descriptor()));
    req.set_layer_preset(static_cast<v1::LayerPreset>(v));
  }
  if (!a.adam_steps.empty()) {
    ASSIGN_OR_RETURN(int v, ParseEnumFlag("--adam-steps", a.adam_steps, v1::AdamSteps_descriptor()));
    req.set_adam_steps(static_cast<v1::AdamSteps>(v));
  }
  if (!a.delta_dtype.empty()) {
    ASSIGN_OR_RETURN(int v, ParseEnumFlag("--delta-dtype", a.delta_dtype, v1::DeltaDtype_descriptor()));
    req.set_delta_dtype(static_cast<v1::DeltaDtype>(v));
  }
  if (!a.parameterization.empty()) {
    ASSIGN_OR_RETURN(int v, ParseEnumFlag("--parameterization", a.parameterization, v1::Parameterization_descriptor()));
    req.set_parameterization(static_cast<v1::Parameterization>(v));
  }
  if (a.lambda_indomain.has_value()) req.set_lambda_indomain(*a.lambda_indomain);
  if (a.lambda_direction.has_value()) req.set_lambda_direction(*a.lambda_direction);
  req.set_lambda_global(a.lambda_global);
  req.set_lambda_manifold(a.lambda_manifold);
  req.set_preview_count(a.preview_count);
  req.set_max_run_seconds(a.max_run_seconds);
  for (const auto& spec : a.clip_models) {
    auto* cm = req.add_clip_models();
    const size_t colon = spec.find(':');
    cm->set_name(spec.substr(0, colon));
    if (colon != std::string::npos) {
      float w;
      if (!absl::SimpleAtof(spec.substr(colon + 1), &w)) {
        return absl::InvalidArgumentError("--clip takes NAME[:WEIGHT]");
      }
      cm->set_weight(w);
    }
  }
  RETURN_IF_ERROR(ApplySets(a.sets, &req));
  RETURN_IF_ERROR(core::MakeDirs(a.out));
  auto stub = v1::GanService::NewStub(Channel(c));
  grpc::ClientContext ctx;
  return StreamJob(c, stub->AdaptDomain(&ctx, req), &ctx, a.out);
}

absl::Status PrepareGlobal(const Connection& c, const PrepareGlobalArgs& a) {
  v1::PrepareGlobalDirectionsRequest req;
  req.set_model(a.model);
  req.set_clip_model(a.clip);
  req.set_num_samples(a.samples);
  req.set_num_images(a.images);
  req.set_batch_size(a.batch);
  req.set_recompute(a.recompute);
  req.set_request_id(a.request_id);
  req.set_priority(a.priority);
  if (!a.clamping.empty()) {
    ASSIGN_OR_RETURN(int v, ParseEnumFlag("--clamping", a.clamping, v1::ChannelClamping_descriptor()));
    req.set_clamping(static_cast<v1::ChannelClamping>(v));
  }
  if (a.truncation_cutoff.has_value()) req.set_truncation_cutoff(*a.truncation_cutoff);
  req.set_render_resolution(a.render_resolution);
  RETURN_IF_ERROR(ApplySets(a.sets, &req));
  RETURN_IF_ERROR(core::MakeDirs(a.out));
  auto stub = v1::GanService::NewStub(Channel(c));
  grpc::ClientContext ctx;
  std::string result;
  RETURN_IF_ERROR(StreamJob(c, stub->PrepareGlobalDirections(&ctx, req), &ctx, a.out, &result));
  if (!result.empty()) std::printf("global-direction statistics ready: %s\n", result.c_str());
  return absl::OkStatus();
}

absl::Status TrainMapper(const Connection& c, const TrainMapperArgs& a) {
  v1::TrainMapperRequest req;
  req.set_model(a.model);
  req.set_text(a.text);
  req.set_output_name(a.output_name);
  if (!a.mapper_type.empty()) {
    ASSIGN_OR_RETURN(int v, ParseEnumFlag("--type", a.mapper_type, v1::MapperType_descriptor()));
    req.set_mapper_type(static_cast<v1::MapperType>(v));
  }
  req.set_no_coarse(a.no_coarse);
  req.set_no_medium(a.no_medium);
  req.set_no_fine(a.no_fine);
  req.set_steps(a.steps);
  req.set_lr(a.lr);
  req.set_batch_size(a.batch);
  if (a.clip_lambda.has_value()) req.set_clip_lambda(*a.clip_lambda);
  if (a.latent_l2_lambda.has_value()) req.set_latent_l2_lambda(*a.latent_l2_lambda);
  auto stub = v1::GanService::NewStub(Channel(c));
  if (a.id_lambda.has_value()) {
    req.set_id_lambda(*a.id_lambda);
  } else {
    // The official identity loss needs an ArcFace model on the server; without one it is
    // turned off here (the server would refuse the official weight) and said so.
    grpc::ClientContext lc;
    SetDeadline(c, &lc);
    v1::ListModelsRequest lr;
    lr.set_kind(v1::MODEL_KIND_ARCFACE);
    v1::ListModelsResponse models;
    RETURN_IF_ERROR(FromGrpc(c, stub->ListModels(&lc, lr, &models)));
    bool arcface = false;
    for (const auto& m : models.models()) arcface = arcface || m.state() != v1::MODEL_STATE_FAILED;
    if (!arcface) {
      req.set_id_lambda(0);
      if (!c.json) {
        std::fprintf(stderr,
                     "note: id_lambda set to 0: the official %g needs an ArcFace model (model_ir_se50.pth, kind "
                     "arcface), which the server does not have; pass --id-lambda to send another value\n",
                     core::edit::MapperTrainerOptions{}.id_lambda);
      }
    }
  }
  for (const auto& id : a.inversions) req.add_inversion_ids(id);
  req.set_train_latents(a.train_latents);
  req.set_clip_model(a.clip);
  req.set_preview_count(a.preview_count);
  req.set_seed(a.seed);
  req.set_max_run_seconds(a.max_run_seconds);
  req.set_request_id(a.request_id);
  req.set_priority(a.priority);
  RETURN_IF_ERROR(ApplySets(a.sets, &req));
  RETURN_IF_ERROR(core::MakeDirs(a.out));
  grpc::ClientContext ctx;
  std::string result;
  RETURN_IF_ERROR(StreamJob(c, stub->TrainMapper(&ctx, req), &ctx, a.out, &result));
  if (!result.empty() && !c.json) {
    std::printf("mapper ready: %s (ganctl edit --model %s --mapper %s)\n", result.c_str(), a.model.c_str(),
                result.c_str());
  }
  return absl::OkStatus();
}

absl::Status Invert(const Connection& c, const InvertArgs& a) {
  v1::InvertImageRequest req;
  req.set_model(a.model);
  ASSIGN_OR_RETURN(std::string bytes, core::ReadFile(a.image, 16u << 20));
  req.set_image(std::move(bytes));
  if (a.space == "w") {
    req.set_space(v1::LATENT_SPACE_W);
  } else if (a.space == "w+") {
    req.set_space(v1::LATENT_SPACE_W_PLUS);
  } else {
    return absl::InvalidArgumentError("--space must be w or w+");
  }
  const std::string method = !a.method.empty()                            ? a.method
                             : (!a.encoder.empty() || a.refine_steps > 0) ? "encoder"
                                                                          : "optimization";
  if (method == "encoder") {
    req.set_method(v1::INVERT_METHOD_ENCODER);
  } else if (method == "optimization") {
    req.set_method(v1::INVERT_METHOD_OPTIMIZATION);
  } else {
    return absl::InvalidArgumentError("--method must be optimization or encoder");
  }
  req.set_encoder(a.encoder);
  req.set_refine_steps(a.refine_steps);
  req.set_steps(a.steps);
  req.set_preview_every(a.preview_every);
  req.set_lr(a.lr);
  if (a.noise_regularize.has_value()) req.set_noise_regularize(*a.noise_regularize);
  req.set_mse(a.mse);
  req.set_aligned(a.aligned);
  req.set_align(a.align);
  if (!a.landmarks.empty()) {
    // Any text with the coordinates in order (x y per line, commas or JSON brackets).
    ASSIGN_OR_RETURN(std::string text, core::ReadFile(a.landmarks, 1 << 20));
    for (char& ch : text) {
      if (ch == ',' || ch == '[' || ch == ']') ch = ' ';
    }
    std::vector<float> values;
    for (absl::string_view tok : absl::StrSplit(text, absl::ByAnyChar(" \t\r\n"), absl::SkipEmpty())) {
      float v = 0;
      if (!absl::SimpleAtof(tok, &v)) {
        return absl::InvalidArgumentError(absl::StrCat("--landmarks: '", tok.substr(0, 32), "' is not a number"));
      }
      values.push_back(v);
    }
    if (values.size() != 10 && values.size() != 136) {
      return absl::InvalidArgumentError(
          absl::StrCat("--landmarks: ", values.size(), " numbers; give 5 or 68 points as x y pairs"));
    }
    for (size_t i = 0; i + 1 < values.size(); i += 2) {
      auto* p = req.add_landmarks();
      p->set_x(values[i]);
      p->set_y(values[i + 1]);
    }
  }
  req.set_seed(a.seed);
  req.set_pin(a.pin);
  req.set_max_run_seconds(a.max_run_seconds);
  req.set_request_id(a.request_id);
  req.set_priority(a.priority);
  RETURN_IF_ERROR(ApplySets(a.sets, &req));
  RETURN_IF_ERROR(core::MakeDirs(a.out));
  auto stub = v1::GanService::NewStub(Channel(c));
  std::string inversion;
  {
    grpc::ClientContext ctx;
    RETURN_IF_ERROR(StreamJob(c, stub->InvertImage(&ctx, req), &ctx, a.out, &inversion));
  }
  if (inversion.empty()) return absl::OkStatus();  // detached
  // Fetch the reconstruction and the latent, and lay the input beside the result.
  v1::GenerateSamplesRequest g;
  g.set_model(a.model);
  g.set_inversion_id(inversion);
  g.set_return_latents(true);
  grpc::ClientContext gctx;
  SetDeadline(c, &gctx);
  auto reader = stub->GenerateSamples(&gctx, g);
  v1::ImageBatch batch;
  v1::Image recon;
  while (reader->Read(&batch)) {
    if (batch.images_size() > 0) recon = batch.images(0);
  }
  RETURN_IF_ERROR(FromGrpc(c, reader->Finish()));
  const std::filesystem::path out(a.out);
  RETURN_IF_ERROR(WriteBinary((out / "reconstruction.png").string(), recon.data()));
  core::FloatTensor latent;
  latent.shape.assign(recon.latent().values().shape().begin(), recon.latent().values().shape().end());
  latent.data.assign(recon.latent().values().data().begin(), recon.latent().values().data().end());
  RETURN_IF_ERROR(core::WriteNpy((out / "latent.npy").string(), latent));
  auto input = core::DecodeImage(req.image());
  auto rec = core::DecodeImage(recon.data());
  if (input.ok() && rec.ok()) {
    core::Rgb8Image fitted = core::clip::ResizeAndCenterCrop(*input, rec->width);
    auto strip = core::MakeGrid({fitted, *rec}, 2);
    if (strip.ok()) {
      auto png = core::EncodePng(*strip);
      if (png.ok()) RETURN_IF_ERROR(WriteBinary((out / "before_after.png").string(), *png));
    }
  }
  std::fprintf(stderr, "wrote %s/reconstruction.png, latent.npy (w+) and before_after.png\n", a.out.c_str());
  return absl::OkStatus();
}

absl::Status Edit(const Connection& c, const EditArgs& a) {
  v1::EditRequest req;
  req.set_model(a.model);
  req.set_render_model(a.render_model);
  if (!a.seeds.empty()) {
    ASSIGN_OR_RETURN(auto seeds, ParseSeeds(a.seeds));
    for (int64_t s : seeds) req.add_seeds(s);
  } else if (!a.latent_npy.empty()) {
    ASSIGN_OR_RETURN(core::FloatTensor t, core::ReadNpyFloat(a.latent_npy));
    req.mutable_latents()->set_space(t.shape.size() == 3 ? v1::LATENT_SPACE_W_PLUS : v1::LATENT_SPACE_W);
    req.mutable_latents()->mutable_values()->mutable_shape()->Assign(t.shape.begin(), t.shape.end());
    req.mutable_latents()->mutable_values()->mutable_data()->Assign(t.data.begin(), t.data.end());
  } else {
    req.set_inversion_id(a.inversion);
  }
  if (a.truncation >= 0) {
    req.set_truncation(a.truncation);
    req.set_has_truncation(true);
  }
  std::vector<float> alphas;
  if (!a.alphas.empty()) {
    ASSIGN_OR_RETURN(alphas, ParseFloats(a.alphas));
  }
  if (!a.direction_npy.empty()) {
    if (alphas.empty()) alphas = {core::service::Defaults::kGlobalAlpha};
    ASSIGN_OR_RETURN(core::FloatTensor dir, core::ReadNpyFloat(a.direction_npy));
    auto* d = req.mutable_direction();
    d->mutable_direction()->set_space(a.direction_space == "s"    ? v1::LATENT_SPACE_S
                                      : a.direction_space == "w+" ? v1::LATENT_SPACE_W_PLUS
                                                                  : v1::LATENT_SPACE_W);
    d->mutable_direction()->mutable_values()->add_shape(1);
    d->mutable_direction()->mutable_values()->add_shape(dir.numel());
    d->mutable_direction()->mutable_values()->mutable_data()->Assign(dir.data.begin(), dir.data.end());
    for (float v : alphas) d->add_strengths(v);
  } else if (!a.mapper.empty()) {
    auto* m = req.mutable_mapper();
    m->set_mapper(a.mapper);
    for (float v : alphas) m->add_strengths(v);
  } else if (a.optimize) {
    auto* l = req.mutable_latent_optimization();
    l->set_target_text(a.target);
    l->set_steps(a.steps);
    l->set_lr(a.lr);
    if (a.l2_lambda.has_value()) l->set_l2_lambda(*a.l2_lambda);
    l->set_clip_model(a.clip);
  } else {
    auto* g = req.mutable_global_direction();
    g->set_neutral_text(a.neutral);
    g->set_target_text(a.target);
    for (float v : alphas) g->add_alphas(v);
    g->set_beta(a.beta);
    g->set_clip_model(a.clip);
  }
  RETURN_IF_ERROR(ApplySets(a.sets, &req));
  auto stub = v1::GanService::NewStub(Channel(c));
  v1::ImageBatch batch;
  RETURN_IF_ERROR(core::MakeDirs(a.out));
  std::vector<core::Rgb8Image> decoded;
  int channels_moved = 0;
  grpc::Status st;
  for (int attempt = 0;; ++attempt) {
    grpc::ClientContext ctx;
    SetDeadline(c, &ctx);
    auto reader = stub->Edit(&ctx, req);
    bool received = false;
    while (reader->Read(&batch)) {
      received = true;
      channels_moved = batch.channels_moved();
      if (batch.has_progress() && !c.json) {
        const auto& p = batch.progress();
        const auto& losses = p.losses();
        std::fprintf(stderr, "optimize input %d step %d/%d  clip %.4f  l2 %.4f\n", p.input(), p.step(), p.total_steps(),
                     losses.count("clip") ? losses.at("clip") : 0.0f, losses.count("l2") ? losses.at("l2") : 0.0f);
      }
      for (const auto& im : batch.images()) {
        RETURN_IF_ERROR(
            WriteBinary((std::filesystem::path(a.out) / absl::StrCat("edit", im.index(), ".png")).string(), im.data()));
        auto d = core::DecodeImage(im.data());
        if (d.ok()) decoded.push_back(std::move(*d));
      }
    }
    st = reader->Finish();
    if (!RetryWhenBusy(c, st, received, attempt)) break;
  }
  RETURN_IF_ERROR(FromGrpc(c, st));
  // One strip per input: its images across the strengths, left to right.
  const size_t per_input = a.optimize || alphas.empty() ? 1 : alphas.size();
  for (size_t first = 0; first + per_input <= decoded.size(); first += per_input) {
    std::vector<core::Rgb8Image> row(decoded.begin() + first, decoded.begin() + first + per_input);
    auto strip = core::MakeGrid(row, static_cast<int>(per_input));
    if (!strip.ok()) continue;
    auto png = core::EncodePng(*strip);
    if (png.ok()) {
      RETURN_IF_ERROR(WriteBinary(
          (std::filesystem::path(a.out) / absl::StrCat("strip", first / per_input, ".png")).string(), *png));
    }
  }
  std::printf("%zu images in %s", decoded.size(), a.out.c_str());
  if (channels_moved > 0) std::printf(" (%d S channels moved)", channels_moved);
  std::printf("\n");
  return absl::OkStatus();
}

}  // namespace ganserve::client
