// The OpenAPI 3 document of the HTTP/JSON API, made from the google.api.http options and
// the message descriptors of proto/ganserve/v1/ganserve.proto (the one source of the
// routes, the gateway's included): paths, parameters, request and response schemas in
// protobuf's JSON mapping (lowerCamel names, 64-bit integers as strings, enums by name,
// bytes as base64), streaming responses as NDJSON and Server-Sent Events, the error
// body, bearer auth. `ganserve_openapi` writes it at build time; the server serves it at
// GET /v1/openapi.json.
#ifndef GANSERVE_SERVER_OPENAPI_H_
#define GANSERVE_SERVER_OPENAPI_H_

#include <string>
#include <utility>
#include <vector>

#include <google/protobuf/descriptor.h>

#include "google/api/http.pb.h"

namespace ganserve::server {

// ganserve.v1.GanService (its generated descriptors linked in, also into binaries that
// reference nothing else of the proto).
const google::protobuf::ServiceDescriptor* GanServiceDescriptor();

// (verb, path template) of a rule: ("POST", "/v1/models/{model}:generate").
std::vector<std::pair<std::string, std::string>> HttpBindings(const google::api::HttpRule& rule);

// The document, JSON, pretty-printed.
std::string OpenApiDocument();

}  // namespace ganserve::server

#endif  // GANSERVE_SERVER_OPENAPI_H_
