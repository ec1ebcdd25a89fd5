// HTTP/JSON beside gRPC: every RPC of GanService at the path its google.api.http option
// gives (proto/ganserve/v1/ganserve.proto), transcoded with protobuf's JSON mapping and
// called through the running gRPC server over an in-process channel, so the same
// service code, bearer-token scopes, limits and metrics apply.
//
// - Request: the JSON body (body "*"), path segments ({model}, {id}, ...) and query
//   parameters (scalar fields by name) fill the request message; unknown fields, wrong
//   types and malformed JSON are 400 INVALID_ARGUMENT naming the problem.
// - Unary response: the response message as JSON.
// - Server-streaming response: newline-delimited JSON (application/x-ndjson), or
//   Server-Sent Events with `Accept: text/event-stream` (one `data:` JSON message per
//   event; job events carry `id: <seq>`, and `Last-Event-ID` on a watch resumes after
//   it). An error before the first message is an HTTP error; after it, an NDJSON line
//   {"error": {...}} or an SSE `event: error`.
// - Client-streaming ImportModel: one JSON chunk per body line (NDJSON).
// - Errors: {"error": {"code": <gRPC code>, "status": "NOT_FOUND", "message": ...}} with
//   the HTTP status google.rpc documents for the code, and Retry-After when the server
//   asks to back off.
// - For people: GET /v1/jobs/{id}/previews/{seq}.png[?set=source] is one preview event
//   as a PNG contact sheet, and ?format=png on GenerateSamples / Edit answers every image
//   of the call in one PNG (at most 64 images) instead of the JSON stream.
// - GET /v1/openapi.json: the OpenAPI 3 document of these routes (openapi.h).
#ifndef GANSERVE_SERVER_HTTP_GATEWAY_H_
#define GANSERVE_SERVER_HTTP_GATEWAY_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"

namespace httplib {
class Server;
}

namespace ganserve::server {

struct HttpGatewayOptions {
  std::string listen;  // HOST:PORT, port 0 = any free port
  // Connections served at once (one thread each). A watched job's stream holds one for
  // as long as it is watched, so this is well above the cores.
  size_t workers = 64;
  // Largest request body accepted (the server's message limit).
  size_t max_body_bytes = 64 << 20;
  // PEM files: serve HTTPS with them when both are set.
  std::string tls_cert_file, tls_key_file;
};

// The HTTP status google.rpc maps a gRPC code to (e.g. NOT_FOUND -> 404,
// RESOURCE_EXHAUSTED -> 429, CANCELLED -> 499).
int HttpStatusOf(grpc::StatusCode code);

class HttpGateway {
 public:
  // Binds `options.listen` and serves on its own threads. `channel` reaches the gRPC
  // server (GanServer's in-process channel).
  static absl::StatusOr<std::unique_ptr<HttpGateway>> Start(const HttpGatewayOptions& options,
                                                            std::shared_ptr<grpc::Channel> channel);
  ~HttpGateway();  // stops and joins
  int port() const { return port_; }

 private:
  HttpGateway() = default;
  std::unique_ptr<httplib::Server> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::thread thread_;
  int port_ = 0;
};

}  // namespace ganserve::server

#endif  // GANSERVE_SERVER_HTTP_GATEWAY_H_
