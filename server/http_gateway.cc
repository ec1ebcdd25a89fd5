#include "server/http_gateway.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/dynamic_message.h>
#include <google/protobuf/util/json_util.h>
#include <grpcpp/generic/generic_stub.h>
#include <httplib.h>

#include <chrono>
#include <cmath>
#include <map>
#include <regex>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "core/io/image_codec.h"
#include "ganserve/v1/ganserve.grpc.pb.h"
#include "google/api/annotations.pb.h"
#include "server/console.h"
#include "server/openapi.h"
#include "server/retry_info.h"

namespace ganserve::server {
namespace {

namespace pb = google::protobuf;

// One RPC's HTTP binding.
struct Route {
  const pb::MethodDescriptor* method = nullptr;
  std::string verb;  // GET, POST, DELETE, ...
  std::regex pattern;
  std::vector<std::string> path_fields;  // in the order of the pattern's groups
  bool body = false;                     // body "*"
};

std::vector<Route> Routes() {
  std::vector<Route> out;
  const pb::ServiceDescriptor* service = GanServiceDescriptor();
  for (int i = 0; i < service->method_count(); ++i) {
    const pb::MethodDescriptor* m = service->method(i);
    if (!m->options().HasExtension(google::api::http)) continue;
    const google::api::HttpRule& rule = m->options().GetExtension(google::api::http);
    Route r;
    r.method = m;
    std::string path;
    for (const auto& [verb, p] : HttpBindings(rule)) {
      r.verb = verb;
      path = p;
    }
    r.body = rule.body() == "*";
    // "/v1/models/{model}:generate" -> ^/v1/models/([^/:]+):generate$
    std::string re = "^";
    static const std::regex var(R"(\{([a-z_]+)\})");
    size_t at = 0;
    for (std::sregex_iterator it(path.begin(), path.end(), var), end; it != end; ++it) {
      re += std::regex_replace(path.substr(at, static_cast<size_t>(it->position()) - at),
                               std::regex(R"([.^$|()\[\]*+?\\])"), R"(\$&)");
      re += "([^/:]+)";
      r.path_fields.push_back((*it)[1].str());
      at = static_cast<size_t>(it->position() + it->length());
    }
    re += std::regex_replace(path.substr(at), std::regex(R"([.^$|()\[\]*+?\\])"), R"(\$&)") + "$";
    r.pattern = std::regex(re);
    out.push_back(std::move(r));
  }
  return out;
}

const char* CodeName(grpc::StatusCode code) {
  static const char* kNames[] = {
      "OK",        "CANCELLED",      "UNKNOWN",           "INVALID_ARGUMENT",   "DEADLINE_EXCEEDED",
      "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
      "ABORTED",   "OUT_OF_RANGE",   "UNIMPLEMENTED",     "INTERNAL",           "UNAVAILABLE",
      "DATA_LOSS", "UNAUTHENTICATED"};
  const int c = static_cast<int>(code);
  return c >= 0 && c <= 16 ? kNames[c] : "UNKNOWN";
}

std::string JsonEscape(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          out += absl::StrCat("\\u00", absl::Hex(c, absl::kZeroPad2));
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out;
}

// {"code": 5, "status": "NOT_FOUND", "message": "..."}
std::string ErrorJson(const grpc::Status& st) {
  return absl::StrCat(R"({"code": )", static_cast<int>(st.error_code()), R"(, "status": ")", CodeName(st.error_code()),
                      R"(", "message": ")", JsonEscape(st.error_message()), R"("})");
}

void SendError(httplib::Response& res, const grpc::Status& st) {
  res.status = HttpStatusOf(st.error_code());
  if (auto delay = RetryDelayOf(st)) {
    res.set_header("Retry-After", std::to_string(static_cast<int64_t>(std::ceil(absl::ToDoubleSeconds(*delay)))));
  }
  res.set_content(absl::StrCat(R"({"error": )", ErrorJson(st), "}\n"), "application/json");
}

grpc::Status Invalid(const std::string& message) { return {grpc::StatusCode::INVALID_ARGUMENT, message}; }

std::string ToJson(const pb::Message& m) {
  std::string out;
  pb::util::JsonPrintOptions opt;
  (void)pb::util::MessageToJsonString(m, &out, opt);
  return out;
}

// Sets a scalar field from its text (path segment or query parameter).
grpc::Status SetField(pb::Message* msg, const std::string& name, const std::string& text) {
  const pb::Descriptor* d = msg->GetDescriptor();
  const pb::FieldDescriptor* f = d->FindFieldByName(name);
  if (f == nullptr) f = d->FindFieldByCamelcaseName(name);
  if (f == nullptr) return Invalid(absl::StrCat("unknown parameter '", name, "' for ", d->name()));
  const pb::Reflection* r = msg->GetReflection();
  const bool rep = f->is_repeated();
  auto bad = [&] { return Invalid(absl::StrCat("parameter '", name, "': '", text, "' is not a ", f->type_name())); };
  switch (f->cpp_type()) {
    case pb::FieldDescriptor::CPPTYPE_STRING:
      rep ? r->AddString(msg, f, text) : r->SetString(msg, f, text);
      return grpc::Status::OK;
    case pb::FieldDescriptor::CPPTYPE_INT32:
    case pb::FieldDescriptor::CPPTYPE_INT64: {
      int64_t v = 0;
      if (!absl::SimpleAtoi(text, &v)) return bad();
      if (f->cpp_type() == pb::FieldDescriptor::CPPTYPE_INT32) {
        if (v < INT32_MIN || v > INT32_MAX) return bad();
        rep ? r->AddInt32(msg, f, static_cast<int32_t>(v)) : r->SetInt32(msg, f, static_cast<int32_t>(v));
      } else {
        rep ? r->AddInt64(msg, f, v) : r->SetInt64(msg, f, v);
      }
      return grpc::Status::OK;
    }
    case pb::FieldDescriptor::CPPTYPE_FLOAT:
    case pb::FieldDescriptor::CPPTYPE_DOUBLE: {
      double v = 0;
      if (!absl::SimpleAtod(text, &v)) return bad();
      if (f->cpp_type() == pb::FieldDescriptor::CPPTYPE_FLOAT) {
        rep ? r->AddFloat(msg, f, static_cast<float>(v)) : r->SetFloat(msg, f, static_cast<float>(v));
      } else {
        rep ? r->AddDouble(msg, f, v) : r->SetDouble(msg, f, v);
      }
      return grpc::Status::OK;
    }
    case pb::FieldDescriptor::CPPTYPE_BOOL: {
      bool v = false;
      if (!absl::SimpleAtob(text, &v)) return bad();
      rep ? r->AddBool(msg, f, v) : r->SetBool(msg, f, v);
      return grpc::Status::OK;
    }
    case pb::FieldDescriptor::CPPTYPE_ENUM: {
      const pb::EnumValueDescriptor* e = f->enum_type()->FindValueByName(text);
      int number = 0;
      if (e == nullptr && absl::SimpleAtoi(text, &number)) e = f->enum_type()->FindValueByNumber(number);
      if (e == nullptr) return bad();
      rep ? r->AddEnum(msg, f, e) : r->SetEnum(msg, f, e);
      return grpc::Status::OK;
    }
    default: return Invalid(absl::StrCat("parameter '", name, "' is a message: send it in the JSON body"));
  }
}

grpc::ByteBuffer Serialize(const pb::Message& m) {
  std::string bytes = m.SerializeAsString();
  grpc::Slice slice(bytes);
  return grpc::ByteBuffer(&slice, 1);
}

bool Parse(const grpc::ByteBuffer& buffer, pb::Message* m) {
  std::vector<grpc::Slice> slices;
  if (!buffer.Dump(&slices).ok()) return false;
  std::string bytes;
  for (const auto& s : slices) bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  return m->ParseFromString(bytes);
}

// One call through the generic stub on a private completion queue, step by step.
class Call {
 public:
  Call(const std::shared_ptr<grpc::Channel>& channel, const pb::MethodDescriptor* method) : stub_(channel) {
    method_ = absl::StrCat("/", method->service()->full_name(), "/", method->name());
  }
  ~Call() {
    if (call_ != nullptr && !finished_) {
      ctx_.TryCancel();
      grpc::Status ignored;
      call_->Finish(&ignored, this);
      Wait();
    }
    cq_.Shutdown();
    void* tag = nullptr;
    bool ok = false;
    while (cq_.Next(&tag, &ok)) {
    }
  }
  grpc::ClientContext& context() { return ctx_; }

  bool Start() {
    call_ = stub_.PrepareCall(&ctx_, method_, &cq_);
    call_->StartCall(this);
    return Wait();
  }
  bool Write(const pb::Message& m) {
    call_->Write(Serialize(m), this);
    return Wait();
  }
  bool WritesDone() {
    call_->WritesDone(this);
    return Wait();
  }
  // False at the end of the stream (or when the call failed).
  bool Read(pb::Message* m) {
    grpc::ByteBuffer buf;
    call_->Read(&buf, this);
    if (!Wait()) return false;
    return Parse(buf, m);
  }
  grpc::Status Finish() {
    grpc::Status st;
    call_->Finish(&st, this);
    Wait();
    finished_ = true;
    return st;
  }

 private:
  bool Wait() {
    void* tag = nullptr;
    bool ok = false;
    if (!cq_.Next(&tag, &ok)) return false;
    return ok;
  }

  grpc::GenericStub stub_;
  std::string method_;
  grpc::ClientContext ctx_;
  grpc::CompletionQueue cq_;
  std::unique_ptr<grpc::GenericClientAsyncReaderWriter> call_;
  bool finished_ = false;
};

// Most images one ?format=png sheet holds.
constexpr int kMaxDownloadImages = 64;

bool IsImageBatch(const Route& route) { return route.method->output_type() == v1::ImageBatch::descriptor(); }

// The query parameter `name` of `req` ("" when absent).
std::string QueryValue(const httplib::Request& req, const std::string& name) {
  httplib::Params query;
  if (const size_t q = req.target.find('?'); q != std::string::npos) {
    httplib::detail::parse_query_text(req.target.substr(q + 1), query);
  }
  auto it = query.find(name);
  return it == query.end() ? "" : it->second;
}

// The request message of `route` from the HTTP request. ImportModel (client streaming)
// takes one chunk per body line.
grpc::Status BuildRequests(const Route& route, const httplib::Request& req, const std::smatch& match,
                           std::vector<std::unique_ptr<pb::Message>>* out) {
  const pb::Message* proto = pb::MessageFactory::generated_factory()->GetPrototype(route.method->input_type());
  pb::util::JsonParseOptions opt;
  opt.ignore_unknown_fields = false;
  std::vector<std::string> bodies;
  if (route.method->client_streaming()) {
    for (absl::string_view line : absl::StrSplit(req.body, '\n', absl::SkipWhitespace())) bodies.emplace_back(line);
    if (bodies.empty()) return Invalid("the body must hold one JSON message per line");
  } else {
    bodies.push_back(req.body);
  }
  for (const std::string& body : bodies) {
    std::unique_ptr<pb::Message> msg(proto->New());
    if (route.body && !absl::StripAsciiWhitespace(body).empty()) {
      auto st = pb::util::JsonStringToMessage(body, msg.get(), opt);
      if (!st.ok()) {
        return Invalid(
            absl::StrCat("the JSON body is not a ", msg->GetDescriptor()->name(), ": ", std::string(st.message())));
      }
    } else if (!route.body && !absl::StripAsciiWhitespace(body).empty()) {
      return Invalid(absl::StrCat(route.method->name(), " takes no body; use the path and query parameters"));
    }
    out->push_back(std::move(msg));
  }
  pb::Message* first = out->front().get();
  for (size_t i = 0; i < route.path_fields.size(); ++i) {
    auto st = SetField(first, route.path_fields[i], match[static_cast<int>(i) + 1].str());
    if (!st.ok()) return st;
  }
  // The query string only: httplib also puts a form-encoded body's fields in params
  // (curl -d sends JSON labelled as a form).
  httplib::Params query;
  if (const size_t q = req.target.find('?'); q != std::string::npos) {
    httplib::detail::parse_query_text(req.target.substr(q + 1), query);
  }
  for (const auto& [name, value] : query) {
    if (name == "format" && value == "png" && IsImageBatch(route)) continue;  // a download (ServePngGrid)
    auto st = SetField(first, name, value);
    if (!st.ok()) return st;
  }
  // A watch resumed by an EventSource: Last-Event-ID is the last seq it saw.
  if (route.method->name() == "WatchJob" && req.has_header("Last-Event-ID")) {
    auto st = SetField(first, "after_seq", req.get_header_value("Last-Event-ID"));
    if (!st.ok()) return st;
  }
  return grpc::Status::OK;
}

// The seq of a job event (for SSE ids), 0 for other messages.
int64_t SeqOf(const pb::Message& m) {
  const pb::FieldDescriptor* f = m.GetDescriptor()->FindFieldByName("seq");
  if (f == nullptr || f->cpp_type() != pb::FieldDescriptor::CPPTYPE_INT64) return 0;
  return m.GetReflection()->GetInt64(m, f);
}

// A call of `method` carrying the HTTP caller's credentials.
std::shared_ptr<Call> NewCall(const std::shared_ptr<grpc::Channel>& channel, const pb::MethodDescriptor* method,
                              const httplib::Request& req) {
  auto call = std::make_shared<Call>(channel, method);
  if (req.has_header("Authorization")) {
    call->context().AddMetadata("authorization", req.get_header_value("Authorization"));
  }
  return call;
}

// Encoded images (PNG/JPEG) as one PNG contact sheet, ceil(sqrt(n)) columns.
void SendPngGrid(httplib::Response& res, const std::vector<std::string>& encoded, const std::string& filename) {
  std::vector<core::Rgb8Image> decoded;
  decoded.reserve(encoded.size());
  for (const std::string& bytes : encoded) {
    auto image = core::DecodeImage(bytes);
    if (!image.ok()) {
      SendError(res, {grpc::StatusCode::INTERNAL, std::string(image.status().message())});
      return;
    }
    decoded.push_back(*std::move(image));
  }
  const int columns = static_cast<int>(std::ceil(std::sqrt(static_cast<double>(decoded.size()))));
  auto grid = core::MakeGrid(decoded, columns);
  absl::StatusOr<std::string> png = grid.ok() ? core::EncodePng(*grid) : grid.status();
  if (!png.ok()) {
    SendError(res, {grpc::StatusCode::INTERNAL, std::string(png.status().message())});
    return;
  }
  res.set_header("Content-Disposition", absl::StrCat("inline; filename=\"", filename, "\""));
  res.set_content(*png, "image/png");
}

// ?format=png on GenerateSamples / Edit: every image of the stream in one PNG.
void ServePngDownload(const std::shared_ptr<Call>& call, const std::vector<std::unique_ptr<pb::Message>>& requests,
                      httplib::Response& res) {
  auto* request = requests.front().get();
  const pb::FieldDescriptor* format = request->GetDescriptor()->FindFieldByName("format");
  request->GetReflection()->SetEnumValue(request, format, v1::IMAGE_FORMAT_PNG);
  std::map<int, std::string> images;
  v1::ImageBatch batch;
  std::string model = "images";
  bool ok = call->Start() && call->Write(*request) && call->WritesDone();
  while (ok && call->Read(&batch)) {
    if (batch.total() > kMaxDownloadImages) {
      call->context().TryCancel();
      (void)call->Finish();
      SendError(res,
                Invalid(absl::StrCat("?format=png sends at most ", kMaxDownloadImages, " images in one sheet; this ",
                                     "request makes ", batch.total(), ": ask for fewer or take the JSON stream")));
      return;
    }
    if (!batch.model().empty()) model = batch.model();
    for (auto& image : *batch.mutable_images()) images[image.index()] = std::move(*image.mutable_data());
    batch.Clear();
  }
  const grpc::Status st = call->Finish();
  if (!st.ok()) {
    SendError(res, st);
    return;
  }
  std::vector<std::string> encoded;
  encoded.reserve(images.size());
  for (auto& [index, bytes] : images) encoded.push_back(std::move(bytes));
  if (encoded.empty()) {
    SendError(res, {grpc::StatusCode::INTERNAL, "the call returned no images"});
    return;
  }
  SendPngGrid(res, encoded, absl::StrCat(model, ".png"));
}

void Serve(const Route& route, const std::shared_ptr<grpc::Channel>& channel, const httplib::Request& req,
           httplib::Response& res, const std::smatch& match) {
  std::vector<std::unique_ptr<pb::Message>> requests;
  if (grpc::Status st = BuildRequests(route, req, match, &requests); !st.ok()) {
    SendError(res, st);
    return;
  }
  auto call = NewCall(channel, route.method, req);
  if (IsImageBatch(route) && QueryValue(req, "format") == "png") {
    ServePngDownload(call, requests, res);
    return;
  }
  const pb::Message* out_proto = pb::MessageFactory::generated_factory()->GetPrototype(route.method->output_type());
  auto first = std::shared_ptr<pb::Message>(out_proto->New());
  bool have_first = call->Start();
  for (const auto& m : requests) have_first = have_first && call->Write(*m);
  have_first = have_first && call->WritesDone() && call->Read(first.get());
  if (!have_first) {
    grpc::Status st = call->Finish();
    if (st.ok()) st = grpc::Status(grpc::StatusCode::INTERNAL, "the call ended without a response");
    SendError(res, st);
    return;
  }
  if (!route.method->server_streaming()) {
    grpc::Status st = call->Finish();
    if (!st.ok()) {
      SendError(res, st);
      return;
    }
    res.set_content(ToJson(*first) + "\n", "application/json");
    return;
  }
  const bool sse = absl::StrContains(req.get_header_value("Accept"), "text/event-stream");
  res.set_header("Cache-Control", "no-cache");
  res.set_chunked_content_provider(sse ? "text/event-stream" : "application/x-ndjson",
                                   [call, first, out_proto, sse](size_t /*offset*/, httplib::DataSink& sink) {
                                     auto emit = [&](const pb::Message& m) {
                                       std::string text;
                                       if (sse) {
                                         const int64_t seq = SeqOf(m);
                                         if (seq > 0) text += absl::StrCat("id: ", seq, "\n");
                                         text += absl::StrCat("data: ", ToJson(m), "\n\n");
                                       } else {
                                         text = ToJson(m) + "\n";
                                       }
                                       return sink.write(text.data(), text.size());
                                     };
                                     bool open = emit(*first);
                                     std::unique_ptr<pb::Message> m(out_proto->New());
                                     while (open && call->Read(m.get())) {
                                       open = emit(*m);
                                       m->Clear();
                                     }
                                     if (!open) return false;  // the client went away: the call is cancelled with it
                                     const grpc::Status st = call->Finish();
                                     if (!st.ok()) {
                                       const std::string text =
                                           sse ? absl::StrCat("event: error\ndata: ", ErrorJson(st), "\n\n")
                                               : absl::StrCat(R"({"error": )", ErrorJson(st), "}\n");
                                       sink.write(text.data(), text.size());
                                     }
                                     sink.done();
                                     return true;
                                   });
}

// GET /v1/jobs/{id}/previews/{seq}.png[?set=current|source]: the preview grid of one
// job event as a PNG, for people (the JSON events carry the same images as base64).
void ServePreview(const std::shared_ptr<grpc::Channel>& channel, const httplib::Request& req, httplib::Response& res) {
  const std::string id = req.matches[1].str();
  int64_t seq = 0;
  if (!absl::SimpleAtoi(req.matches[2].str(), &seq) || seq < 1) {
    SendError(res, Invalid("the preview's event number must be a positive integer"));
    return;
  }
  const std::string set = QueryValue(req, "set").empty() ? "current" : QueryValue(req, "set");
  if (set != "current" && set != "source") {
    SendError(res, Invalid(absl::StrCat("set must be 'current' or 'source', not '", set, "'")));
    return;
  }
  auto call = NewCall(channel, GanServiceDescriptor()->FindMethodByName("WatchJob"), req);
  // Stored events replay at once; an event the job has not reached yet would wait.
  call->context().set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(3));
  v1::WatchJobRequest watch;
  watch.set_id(id);
  watch.set_after_seq(seq - 1);
  v1::JobEvent event;
  if (!(call->Start() && call->Write(watch) && call->WritesDone() && call->Read(&event))) {
    grpc::Status st = call->Finish();
    if (st.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED || st.ok()) {
      st = {grpc::StatusCode::NOT_FOUND, absl::StrCat("job ", id, " has no event ", seq, " yet")};
    }
    SendError(res, st);
    return;
  }
  if (event.seq() != seq || !event.has_preview()) {
    SendError(res, {grpc::StatusCode::NOT_FOUND, absl::StrCat("event ", seq, " of job ", id,
                                                              " is not a preview (watch the job for preview events)")});
    return;
  }
  const auto& images = set == "source" ? event.preview().source() : event.preview().current();
  if (images.empty()) {
    SendError(res, {grpc::StatusCode::NOT_FOUND,
                    absl::StrCat("preview ", seq, " of job ", id, " has no ", set, " images (the source grid comes ",
                                 "with the first preview only)")});
    return;
  }
  std::vector<std::string> encoded;
  encoded.reserve(static_cast<size_t>(images.size()));
  for (const auto& image : images) {
    if (image.data().empty()) {
      SendError(res, {grpc::StatusCode::FAILED_PRECONDITION,
                      absl::StrCat("job ", id, " renders its previews as raw floats (preview_format RAW_FLOAT); read ",
                                   "them from the JSON events")});
      return;
    }
    encoded.push_back(image.data());
  }
  SendPngGrid(res, encoded, absl::StrCat(id, "-", seq, "-", set, ".png"));
}

}  // namespace

int HttpStatusOf(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK: return 200;
    case grpc::StatusCode::CANCELLED: return 499;
    case grpc::StatusCode::INVALID_ARGUMENT: return 400;
    case grpc::StatusCode::DEADLINE_EXCEEDED: return 504;
    case grpc::StatusCode::NOT_FOUND: return 404;
    case grpc::StatusCode::ALREADY_EXISTS: return 409;
    case grpc::StatusCode::PERMISSION_DENIED: return 403;
    case grpc::StatusCode::UNAUTHENTICATED: return 401;
    case grpc::StatusCode::RESOURCE_EXHAUSTED: return 429;
    case grpc::StatusCode::FAILED_PRECONDITION: return 400;
    case grpc::StatusCode::ABORTED: return 409;
    case grpc::StatusCode::OUT_OF_RANGE: return 400;
    case grpc::StatusCode::UNIMPLEMENTED: return 501;
    case grpc::StatusCode::UNAVAILABLE: return 503;
    default: return 500;  // UNKNOWN, INTERNAL, DATA_LOSS
  }
}

absl::StatusOr<std::unique_ptr<HttpGateway>> HttpGateway::Start(const HttpGatewayOptions& options,
                                                                std::shared_ptr<grpc::Channel> channel) {
  std::unique_ptr<HttpGateway> g(new HttpGateway());
  g->channel_ = std::move(channel);
  if (!options.tls_cert_file.empty() && !options.tls_key_file.empty()) {
    g->server_ = std::make_unique<httplib::SSLServer>(options.tls_cert_file.c_str(), options.tls_key_file.c_str());
    if (!g->server_->is_valid()) {
      return absl::InvalidArgumentError("the HTTP gateway cannot use --tls_cert_file / --tls_key_file");
    }
  } else {
    g->server_ = std::make_unique<httplib::Server>();
  }
  httplib::Server& svr = *g->server_;
  // httplib's default pool (max(8, cores - 1) threads) would let eight open event
  // streams block every other HTTP caller.
  const size_t workers = std::max<size_t>(options.workers, 1);
  svr.new_task_queue = [workers] { return new httplib::ThreadPool(workers); };
  svr.set_payload_max_length(options.max_body_bytes);
  auto routes = std::make_shared<const std::vector<Route>>(Routes());
  auto openapi = std::make_shared<const std::string>(OpenApiDocument());
  std::shared_ptr<grpc::Channel> ch = g->channel_;
  auto dispatch = [routes, ch](const httplib::Request& req, httplib::Response& res) {
    bool path_known = false;
    for (const Route& r : *routes) {
      std::smatch match;
      if (!std::regex_match(req.path, match, r.pattern)) continue;
      path_known = true;
      if (r.verb != req.method) continue;
      Serve(r, ch, req, res, match);
      return;
    }
    if (path_known) {
      res.status = 405;
      res.set_content(absl::StrCat(R"({"error": )",
                                   ErrorJson({grpc::StatusCode::UNIMPLEMENTED,
                                              absl::StrCat(req.method, " is not allowed on ", req.path)}),
                                   "}\n"),
                      "application/json");
      return;
    }
    res.status = 404;
    res.set_content(absl::StrCat(R"({"error": )",
                                 ErrorJson({grpc::StatusCode::NOT_FOUND,
                                            absl::StrCat("no API route ", req.path, " (see /v1/openapi.json)")}),
                                 "}\n"),
                    "application/json");
  };
  svr.Get("/v1/openapi.json", [openapi](const httplib::Request&, httplib::Response& res) {
    res.set_content(*openapi, "application/json");
  });
  svr.Get("/", [](const httplib::Request&, httplib::Response& res) {
    // The page loads nothing from elsewhere; its script and style are inline.
    res.set_header("Content-Security-Policy",
                   "default-src 'self'; img-src 'self' data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
                   "connect-src 'self'; frame-ancestors 'none'");
    res.set_header("X-Content-Type-Options", "nosniff");
    res.set_content(ConsoleHtml(), "text/html; charset=utf-8");
  });
  svr.Get(R"(/v1/jobs/([^/:]+)/previews/([0-9]+)\.png)",
          [ch](const httplib::Request& req, httplib::Response& res) { ServePreview(ch, req, res); });
  svr.Get(".*", dispatch);
  svr.Post(".*", dispatch);
  svr.Delete(".*", dispatch);
  svr.Put(".*", dispatch);
  svr.Patch(".*", dispatch);
  svr.set_exception_handler([](const httplib::Request&, httplib::Response& res, const std::exception_ptr&) {
    SendError(res, {grpc::StatusCode::INTERNAL, "the HTTP gateway failed on this request"});
  });

  const size_t colon = options.listen.rfind(':');
  if (colon == std::string::npos) return absl::InvalidArgumentError("--http_listen must be HOST:PORT");
  std::string host = options.listen.substr(0, colon);
  if (host.size() > 1 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  int port = 0;
  if (!absl::SimpleAtoi(options.listen.substr(colon + 1), &port)) {
    return absl::InvalidArgumentError("--http_listen must be HOST:PORT");
  }
  g->port_ = port == 0 ? svr.bind_to_any_port(host) : (svr.bind_to_port(host, port) ? port : -1);
  if (g->port_ <= 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", options.listen, " (HTTP gateway)"));
  }
  httplib::Server* raw = g->server_.get();
  g->thread_ = std::thread([raw] { raw->listen_after_bind(); });
  return g;
}

HttpGateway::~HttpGateway() {
  if (server_ != nullptr) server_->stop();
  if (thread_.joinable()) thread_.join();
}

}  // namespace ganserve::server
