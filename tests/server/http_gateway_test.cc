// The HTTP/JSON gateway against a real server: unary and streaming calls (NDJSON and
// Server-Sent Events with resume), the same errors as gRPC mapped to HTTP statuses,
// bearer-token scopes, PNG downloads, webhooks, and an OpenAPI document that covers
// every route.
#include <gtest/gtest.h>
#include <httplib.h>
#include <unistd.h>

#include <atomic>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "core/io/image_codec.h"
#include "core/util/sha256.h"
#include "server/http_gateway.h"
#include "server/openapi.h"
#include "tests/server/test_server.h"

namespace ganserve::testing {
namespace {

using nlohmann::json;

std::string RootFor(const std::string& name) {
  return (std::filesystem::temp_directory_path() / ("ganserve_http_" + name + "_" + std::to_string(::getpid())))
      .string();
}

class HttpGatewayTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    TestServerOptions o;
    o.http = true;
    server_ = new TestServer(RootFor("shared"), o);
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  void SetUp() override {
    ASSERT_GT(server_->http_port(), 0);
    client_ = std::make_unique<httplib::Client>("127.0.0.1", server_->http_port());
    client_->set_read_timeout(120, 0);
  }
  static json Body(const httplib::Result& r) { return json::parse(r->body, nullptr, false); }
  // NDJSON lines as JSON values.
  static std::vector<json> Lines(const std::string& body) {
    std::vector<json> out;
    for (absl::string_view l : absl::StrSplit(body, '\n', absl::SkipEmpty())) out.push_back(json::parse(l));
    return out;
  }
  static TestServer* server_;
  std::unique_ptr<httplib::Client> client_;
};
TestServer* HttpGatewayTest::server_ = nullptr;

TEST_F(HttpGatewayTest, UnaryCallsAnswerJson) {
  auto r = client_->Get("/v1/models");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  json models = Body(r);
  std::set<std::string> names;
  for (const auto& m : models["models"]) names.insert(m["name"].get<std::string>());
  EXPECT_EQ(names.count("tiny"), 1u) << r->body;
  auto one = client_->Get("/v1/models/tiny");
  ASSERT_TRUE(one);
  EXPECT_EQ(one->status, 200);
  EXPECT_EQ(Body(one)["kind"], "MODEL_KIND_GENERATOR");
  // Query parameters fill scalar fields.
  auto filtered = client_->Get("/v1/models?kind=MODEL_KIND_CLIP");
  ASSERT_TRUE(filtered);
  for (const auto& m : Body(filtered)["models"]) EXPECT_EQ(m["kind"], "MODEL_KIND_CLIP");
}

TEST_F(HttpGatewayTest, GenerateStreamsImageBatchesAsNdjson) {
  auto r = client_->Post("/v1/models/tiny:generate",
                         R"({"seeds": [1, 2, 3], "batchSize": 2, "format": "IMAGE_FORMAT_PNG"})", "application/json");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(r->get_header_value("Content-Type"), "application/x-ndjson");
  auto lines = Lines(r->body);
  ASSERT_EQ(lines.size(), 2u) << r->body;  // batches of 2 and 1
  int images = 0;
  for (const auto& b : lines) {
    for (const auto& img : b["images"]) {
      ++images;
      // PNG bytes, base64 as the JSON mapping writes bytes: "iVBORw0KGgo" is the signature.
      EXPECT_EQ(img["data"].get<std::string>().rfind("iVBORw0KGgo", 0), 0u);
      EXPECT_EQ(img["width"], 32);
    }
  }
  EXPECT_EQ(images, 3);
}

TEST_F(HttpGatewayTest, AdaptStreamsServerSentEventsAndAWatchResumes) {
  httplib::Headers sse = {{"Accept", "text/event-stream"}};
  auto r = client_->Post("/v1/jobs:adapt", sse,
                         R"({"model": "tiny", "sourceText": "photo", "targetText": "sketch", "iterations": 3,
                             "outputName": "tiny-http", "clipModels": [{"name": "clip-demo"}]})",
                         "application/json");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(r->get_header_value("Content-Type"), "text/event-stream");
  // "id: SEQ\ndata: {...}\n\n" per event.
  std::vector<std::pair<int64_t, json>> events;
  for (absl::string_view block : absl::StrSplit(r->body, "\n\n", absl::SkipEmpty())) {
    int64_t id = 0;
    json data;
    for (absl::string_view line : absl::StrSplit(block, '\n')) {
      if (absl::ConsumePrefix(&line, "id: ")) id = std::stoll(std::string(line));
      if (absl::ConsumePrefix(&line, "data: ")) data = json::parse(line);
    }
    ASSERT_GT(id, 0) << block;
    events.push_back({id, data});
  }
  ASSERT_GE(events.size(), 3u);
  const json& last = events.back().second;
  EXPECT_EQ(last["job"]["state"], "JOB_STATE_SUCCEEDED") << last.dump();
  const std::string job = last["job"]["id"];
  // A reconnecting EventSource sends the last id it saw: only later events come.
  const int64_t resume_after = events[events.size() - 2].first;
  auto w = client_->Get("/v1/jobs/" + job + ":watch",
                        {{"Accept", "text/event-stream"}, {"Last-Event-ID", std::to_string(resume_after)}});
  ASSERT_TRUE(w);
  ASSERT_EQ(w->status, 200) << w->body;
  std::vector<std::string> blocks = absl::StrSplit(w->body, "\n\n", absl::SkipEmpty());
  ASSERT_FALSE(blocks.empty());
  for (const auto& b : blocks) {
    const int64_t id = std::stoll(b.substr(4, b.find('\n') - 4));
    EXPECT_GT(id, resume_after);
  }
  // The adapted model is there over HTTP too.
  auto g = client_->Post("/v1/models/tiny-http:generate", R"({"seeds": [1]})", "application/json");
  ASSERT_TRUE(g);
  EXPECT_EQ(g->status, 200) << g->body;
}

TEST_F(HttpGatewayTest, ErrorsMapToHttpStatusesAndTheServerStaysHealthy) {
  struct Case {
    const char* what;
    std::string method, path, body;
    int http;
    const char* status;
  };
  const std::string huge(70 << 20, 'x');
  const Case cases[] = {
      {"unknown model", "GET", "/v1/models/nope", "", 404, "NOT_FOUND"},
      {"malformed JSON", "POST", "/v1/models/tiny:generate", "{\"seeds\": [1,", 400, "INVALID_ARGUMENT"},
      {"unknown field", "POST", "/v1/models/tiny:generate", R"({"seedz": [1]})", 400, "INVALID_ARGUMENT"},
      {"wrong type", "POST", "/v1/models/tiny:generate", R"({"seeds": "one"})", 400, "INVALID_ARGUMENT"},
      {"bad value", "POST", "/v1/models/tiny:generate", R"({"seeds": [1], "batchSize": 100000})", 400,
       "INVALID_ARGUMENT"},
      {"unknown job", "GET", "/v1/jobs/job-nope", "", 404, "NOT_FOUND"},
      {"bad query", "GET", "/v1/jobs?pageSize=many", "", 400, "INVALID_ARGUMENT"},
      {"unknown query", "GET", "/v1/jobs?colour=red", "", 400, "INVALID_ARGUMENT"},
      {"body on a GET route", "POST", "/v1/jobs/x:cancel", R"({"id": "y"})", 400, "INVALID_ARGUMENT"},
      {"no route", "GET", "/v2/anything", "", 404, "NOT_FOUND"},
      {"wrong verb", "DELETE", "/v1/jobs", "", 405, "UNIMPLEMENTED"},
  };
  for (const Case& c : cases) {
    httplib::Result r = c.method == "GET"    ? client_->Get(c.path)
                        : c.method == "POST" ? client_->Post(c.path, c.body, "application/json")
                                             : client_->Delete(c.path);
    ASSERT_TRUE(r) << c.what;
    EXPECT_EQ(r->status, c.http) << c.what << ": " << r->body;
    json body = Body(r);
    EXPECT_EQ(body["error"]["status"], c.status) << c.what << ": " << r->body;
    EXPECT_FALSE(body["error"]["message"].get<std::string>().empty()) << c.what;
  }
  // A body over the message limit is refused before it is parsed.
  auto big = client_->Post("/v1/models/tiny:generate", huge, "application/json");
  ASSERT_TRUE(big);
  EXPECT_EQ(big->status, 413);
  auto ok = client_->Get("/v1/models/tiny");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200);
}

// A client that stops reading a job stream: the job goes on (as over gRPC), can be found,
// cancelled over HTTP and watched to its end; the server stays healthy.
TEST_F(HttpGatewayTest, AClientThatStopsReadingLeavesTheJobRunning) {
  httplib::Request req;
  req.method = "POST";
  req.path = "/v1/jobs:adapt";
  req.body = R"({"model": "tiny", "targetText": "watercolor", "iterations": 5000, "outputName": "tiny-long",
                 "clipModels": [{"name": "clip-demo"}]})";
  req.set_header("Content-Type", "application/json");
  std::string first;
  req.content_receiver = [&](const char* data, size_t len, uint64_t, uint64_t) {
    first.append(data, len);
    return first.find('\n') == std::string::npos;  // stop after the first line
  };
  client_->send(req);
  const json event = json::parse(first.substr(0, first.find('\n')));
  const std::string id = event["job"]["id"];
  ASSERT_FALSE(id.empty()) << first;
  auto job = client_->Get("/v1/jobs/" + id);
  ASSERT_TRUE(job);
  EXPECT_EQ(job->status, 200);
  const std::string state = Body(job)["state"];
  EXPECT_TRUE(state == "JOB_STATE_RUNNING" || state == "JOB_STATE_QUEUED") << state;
  auto cancel = client_->Post("/v1/jobs/" + id + ":cancel", "", "application/json");
  ASSERT_TRUE(cancel);
  EXPECT_EQ(cancel->status, 200) << cancel->body;
  auto watch = client_->Get("/v1/jobs/" + id + ":watch");
  ASSERT_TRUE(watch);
  ASSERT_EQ(watch->status, 200);
  EXPECT_EQ(Lines(watch->body).back()["job"]["state"], "JOB_STATE_CANCELLED") << watch->body;
  auto ok = client_->Get("/v1/models/tiny");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200);
}

// Many callers watching a long job (each stream holds a connection) do not block other
// HTTP callers.
TEST_F(HttpGatewayTest, OpenEventStreamsDoNotBlockOtherCallers) {
  httplib::Request req;
  req.method = "POST";
  req.path = "/v1/jobs:adapt";
  req.body = R"({"model": "tiny", "targetText": "ink", "iterations": 5000, "outputName": "tiny-watched",
                 "clipModels": [{"name": "clip-demo"}]})";
  req.set_header("Content-Type", "application/json");
  std::string first;
  req.content_receiver = [&](const char* data, size_t len, uint64_t, uint64_t) {
    first.append(data, len);
    return first.find('\n') == std::string::npos;
  };
  client_->send(req);
  const std::string id = json::parse(first.substr(0, first.find('\n')))["job"]["id"];
  constexpr int kWatchers = 12;  // more than httplib's default pool on a small machine
  std::atomic<int> started{0};
  std::vector<std::thread> watchers;
  for (int i = 0; i < kWatchers; ++i) {
    watchers.emplace_back([&, port = server_->http_port()] {
      httplib::Client c("127.0.0.1", port);
      c.set_read_timeout(120, 0);
      bool counted = false;
      c.Get("/v1/jobs/" + id + ":watch", [&](const char*, size_t) {
        if (!counted) started.fetch_add(1);
        counted = true;
        return true;
      });
    });
  }
  for (int i = 0; i < 200 && started.load() < kWatchers; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(started.load(), kWatchers);
  httplib::Client other("127.0.0.1", server_->http_port());
  other.set_read_timeout(10, 0);
  auto r = other.Get("/v1/models/tiny");
  ASSERT_TRUE(r) << "a unary call waited behind the open streams";
  EXPECT_EQ(r->status, 200);
  auto cancel = other.Post("/v1/jobs/" + id + ":cancel", "", "application/json");
  ASSERT_TRUE(cancel);
  EXPECT_EQ(cancel->status, 200);
  for (auto& t : watchers) t.join();  // the streams end with the job
}

TEST_F(HttpGatewayTest, TheOpenApiDocumentCoversEveryRoute) {
  auto r = client_->Get("/v1/openapi.json");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200);
  json doc = Body(r);
  ASSERT_TRUE(doc.is_object());
  EXPECT_EQ(doc["openapi"], "3.0.3");
  std::set<std::string> ops;
  for (const auto& [path, item] : doc["paths"].items()) {
    for (const auto& [verb, op] : item.items()) ops.insert(op["operationId"].get<std::string>());
  }
  const auto* service = server::GanServiceDescriptor();
  for (int i = 0; i < service->method_count(); ++i) {
    EXPECT_EQ(ops.count(service->method(i)->name()), 1u) << service->method(i)->name();
  }
  // Every $ref names a schema the document holds.
  std::function<void(const json&)> check = [&](const json& j) {
    if (j.is_object()) {
      for (const auto& [k, v] : j.items()) {
        if (k == "$ref") {
          const std::string ref = v.get<std::string>();
          ASSERT_EQ(ref.rfind("#/components/schemas/", 0), 0u) << ref;
          EXPECT_TRUE(doc["components"]["schemas"].contains(ref.substr(21))) << ref;
        } else {
          check(v);
        }
      }
    } else if (j.is_array()) {
      for (const auto& v : j) check(v);
    }
  };
  check(doc);
  EXPECT_TRUE(doc["paths"]["/v1/models/{model}:generate"]["post"].contains("requestBody"));
}

TEST(HttpGatewayAuthTest, TokensAndScopesAreTheGrpcOnes) {
  TestServerOptions o;
  o.http = true;
  o.auth_tokens = "reader-token-0123456789 inference\nadmin-token-0123456789 admin\n";
  TestServer s(RootFor("auth"), o);
  httplib::Client c("127.0.0.1", s.http_port());
  auto none = c.Get("/v1/models");
  ASSERT_TRUE(none);
  EXPECT_EQ(none->status, 401);
  auto reader = c.Get("/v1/models", {{"Authorization", "Bearer reader-token-0123456789"}});
  ASSERT_TRUE(reader);
  EXPECT_EQ(reader->status, 200);
  auto denied =
      c.Post("/v1/models:rescan", {{"Authorization", "Bearer reader-token-0123456789"}}, "", "application/json");
  ASSERT_TRUE(denied);
  EXPECT_EQ(denied->status, 403) << denied->body;
  auto admin =
      c.Post("/v1/models:rescan", {{"Authorization", "Bearer admin-token-0123456789"}}, "", "application/json");
  ASSERT_TRUE(admin);
  EXPECT_EQ(admin->status, 200) << admin->body;
}

TEST(HttpStatusTest, FollowsGoogleRpcMapping) {
  EXPECT_EQ(server::HttpStatusOf(grpc::StatusCode::OK), 200);
  EXPECT_EQ(server::HttpStatusOf(grpc::StatusCode::INVALID_ARGUMENT), 400);
  EXPECT_EQ(server::HttpStatusOf(grpc::StatusCode::FAILED_PRECONDITION), 400);
  EXPECT_EQ(server::HttpStatusOf(grpc::StatusCode::UNAUTHENTICATED), 401);
  EXPECT_EQ(server::HttpStatusOf(grpc::StatusCode::PERMISSION_DENIED), 403);
  EXPECT_EQ(server::HttpStatusOf(grpc::StatusCode::NOT_FOUND), 404);
  EXPECT_EQ(server::HttpStatusOf(grpc::StatusCode::ALREADY_EXISTS), 409);
  EXPECT_EQ(server::HttpStatusOf(grpc::StatusCode::RESOURCE_EXHAUSTED), 429);
  EXPECT_EQ(server::HttpStatusOf(grpc::StatusCode::CANCELLED), 499);
  EXPECT_EQ(server::HttpStatusOf(grpc::StatusCode::INTERNAL), 500);
  EXPECT_EQ(server::HttpStatusOf(grpc::StatusCode::UNIMPLEMENTED), 501);
  EXPECT_EQ(server::HttpStatusOf(grpc::StatusCode::UNAVAILABLE), 503);
  EXPECT_EQ(server::HttpStatusOf(grpc::StatusCode::DEADLINE_EXCEEDED), 504);
}

// A loopback receiver that answers 503 to the first delivery and 200 to the next.
struct Receiver {
  struct Hit {
    httplib::Headers headers;
    std::string path, body;
  };
  httplib::Server server;
  std::thread thread;
  int port = 0;
  std::mutex mu;
  std::vector<Hit> hits;
  Receiver() {
    server.Post("/hook", [this](const httplib::Request& req, httplib::Response& res) {
      std::lock_guard<std::mutex> lock(mu);
      hits.push_back({req.headers, req.target, req.body});
      res.status = hits.size() == 1 ? 503 : 200;
    });
    port = server.bind_to_any_port("127.0.0.1");
    thread = std::thread([this] { server.listen_after_bind(); });
  }
  ~Receiver() {
    server.stop();
    thread.join();
  }
  size_t count() {
    std::lock_guard<std::mutex> lock(mu);
    return hits.size();
  }
};

std::string RenderPng(v1::GanService::Stub& stub) {
  grpc::ClientContext ctx;
  v1::GenerateSamplesRequest req;
  req.set_model("tiny");
  req.add_seeds(7);
  auto reader = stub.GenerateSamples(&ctx, req);
  v1::ImageBatch batch;
  std::string png;
  while (reader->Read(&batch)) png = batch.images(0).data();
  EXPECT_TRUE(reader->Finish().ok());
  return png;
}

TEST(WebhookTest, AFinishedJobIsPostedSignedAndRetried) {
  const std::string secret = "webhook-secret-0123456789";
  TestServerOptions o;
  o.webhook_secret = secret;
  TestServer s(RootFor("webhook"), o);
  Receiver receiver;
  ASSERT_GT(receiver.port, 0);
  auto stub = s.Stub();

  {  // A URL that is not http(s) is refused by name.
    grpc::ClientContext ctx;
    v1::InvertImageRequest bad;
    bad.set_model("tiny");
    bad.set_image(RenderPng(*stub));
    bad.set_notify_url("ftp://127.0.0.1/hook");
    auto reader = stub->InvertImage(&ctx, bad);
    v1::JobEvent ev;
    while (reader->Read(&ev)) {
    }
    const grpc::Status st = reader->Finish();
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_TRUE(absl::StrContains(st.error_message(), "notify_url")) << st.error_message();
  }

  grpc::ClientContext ctx;
  v1::InvertImageRequest req;
  req.set_model("tiny");
  req.set_image(RenderPng(*stub));
  req.set_steps(2);
  req.set_notify_url("http://127.0.0.1:" + std::to_string(receiver.port) + "/hook?tenant=a");
  auto reader = stub->InvertImage(&ctx, req);
  v1::JobEvent ev;
  std::string job_id;
  while (reader->Read(&ev)) job_id = ev.job().id();
  ASSERT_TRUE(reader->Finish().ok());
  ASSERT_EQ(ev.job().state(), v1::JOB_STATE_SUCCEEDED);

  // The first attempt gets 503; the retry comes after the first backoff (2 s).
  for (int i = 0; i < 200 && receiver.count() < 2; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  ASSERT_EQ(receiver.count(), 2u);
  for (const auto& hit : receiver.hits) {
    EXPECT_EQ(hit.path, "/hook?tenant=a");
    auto header = [&](const std::string& name) {
      auto it = hit.headers.find(name);
      return it == hit.headers.end() ? std::string() : it->second;
    };
    EXPECT_EQ(header("X-Ganserve-Event"), "job.succeeded");
    EXPECT_EQ(header("X-Ganserve-Delivery"), job_id);
    EXPECT_EQ(header("Content-Type"), "application/json");
    const std::string ts = header("X-Ganserve-Timestamp");
    // The receiver's check: HMAC-SHA256 over "timestamp.body" with the shared secret.
    EXPECT_EQ(header("X-Ganserve-Signature"), "sha256=" + core::HmacSha256Hex(secret, ts + "." + hit.body));
    EXPECT_NE(header("X-Ganserve-Signature"),
              "sha256=" + core::HmacSha256Hex("another-secret-0123", ts + "." + hit.body));
    json body = json::parse(hit.body);
    EXPECT_EQ(body["id"], job_id);
    EXPECT_EQ(body["state"], "JOB_STATE_SUCCEEDED");
    EXPECT_EQ(body["kind"], "JOB_KIND_INVERT");
    EXPECT_TRUE(absl::StartsWith(body["result"].get<std::string>(), "inv-")) << hit.body;
  }
  const std::string metrics = HttpGet(s.metrics_port(), "/metrics");
  EXPECT_TRUE(absl::StrContains(metrics, R"(ganserve_webhook_deliveries_total{result="retried"} 1)")) << metrics;
  EXPECT_TRUE(absl::StrContains(metrics, R"(ganserve_webhook_deliveries_total{result="delivered"} 1)")) << metrics;
}

TEST_F(HttpGatewayTest, NotifyUrlNeedsAServerWithAWebhookSecret) {
  auto r =
      client_->Post("/v1/jobs:invert", R"({"model": "tiny", "image": "AAAA", "notifyUrl": "http://127.0.0.1:9/x"})",
                    "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400) << r->body;
  EXPECT_EQ(Body(r)["error"]["status"], "FAILED_PRECONDITION") << r->body;
  EXPECT_TRUE(absl::StrContains(r->body, "--webhook_secret_file")) << r->body;
}

TEST_F(HttpGatewayTest, PreviewsAndImageBatchesDownloadAsPng) {
  auto r = client_->Post("/v1/jobs:adapt",
                         R"({"model": "tiny", "sourceText": "photo", "targetText": "sketch", "iterations": 2,
                             "previewEvery": 1, "previewCount": 4, "outputName": "tiny-png",
                             "clipModels": [{"name": "clip-demo"}]})",
                         "application/json");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  std::string job;
  int64_t preview_seq = 0, other_seq = 0;
  for (const json& ev : Lines(r->body)) {
    job = ev["job"]["id"];
    const int64_t seq = std::stoll(ev["seq"].get<std::string>());
    if (ev.contains("preview") && preview_seq == 0) {
      preview_seq = seq;
    } else if (!ev.contains("preview")) {
      other_seq = seq;
    }
  }
  ASSERT_GT(preview_seq, 0) << r->body;
  for (const char* set : {"current", "source"}) {
    auto p = client_->Get("/v1/jobs/" + job + "/previews/" + std::to_string(preview_seq) + ".png?set=" + set);
    ASSERT_TRUE(p);
    ASSERT_EQ(p->status, 200) << p->body;
    EXPECT_EQ(p->get_header_value("Content-Type"), "image/png");
    auto img = core::DecodeImage(p->body);
    ASSERT_TRUE(img.ok()) << img.status();
    EXPECT_EQ(img->width, 2 * 32 + 3 * 2) << set;  // 4 previews: a 2 x 2 sheet with 2 px padding
  }
  auto not_preview = client_->Get("/v1/jobs/" + job + "/previews/" + std::to_string(other_seq) + ".png");
  ASSERT_TRUE(not_preview);
  EXPECT_EQ(not_preview->status, 404) << not_preview->body;
  auto unknown = client_->Get("/v1/jobs/job-nope/previews/1.png");
  ASSERT_TRUE(unknown);
  EXPECT_EQ(unknown->status, 404) << unknown->body;

  auto sheet = client_->Post("/v1/models/tiny:generate?format=png", R"({"seeds": [1, 2, 3]})", "application/json");
  ASSERT_TRUE(sheet);
  ASSERT_EQ(sheet->status, 200) << sheet->body;
  EXPECT_EQ(sheet->get_header_value("Content-Type"), "image/png");
  auto grid = core::DecodeImage(sheet->body);
  ASSERT_TRUE(grid.ok()) << grid.status();
  EXPECT_EQ(grid->width, 2 * 32 + 3 * 2);
  EXPECT_EQ(grid->height, 2 * 32 + 3 * 2);
  auto too_many = client_->Post("/v1/models/tiny:generate?format=png", R"({"count": 65})", "application/json");
  ASSERT_TRUE(too_many);
  EXPECT_EQ(too_many->status, 400) << too_many->body;
  EXPECT_EQ(client_->Get("/v1/models")->status, 200);
}

}  // namespace
}  // namespace ganserve::testing
