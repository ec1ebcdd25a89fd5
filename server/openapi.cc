#include "server/openapi.h"

#include <google/protobuf/descriptor.h>

#include <nlohmann/json.hpp>
#include <regex>
#include <set>

#include "ganserve/v1/ganserve.grpc.pb.h"
#include "google/api/annotations.pb.h"

namespace ganserve::server {
namespace {

namespace pb = google::protobuf;
using nlohmann::json;

std::string Ref(const pb::Descriptor* d) { return "#/components/schemas/" + d->full_name(); }

// The JSON-mapping schema of one field's value (not repeated).
json ValueSchema(const pb::FieldDescriptor* f, std::vector<const pb::Descriptor*>* pending) {
  switch (f->type()) {
    case pb::FieldDescriptor::TYPE_INT32:
    case pb::FieldDescriptor::TYPE_SINT32:
    case pb::FieldDescriptor::TYPE_SFIXED32: return {{"type", "integer"}, {"format", "int32"}};
    case pb::FieldDescriptor::TYPE_UINT32:
    case pb::FieldDescriptor::TYPE_FIXED32: return {{"type", "integer"}, {"format", "int64"}, {"minimum", 0}};
    case pb::FieldDescriptor::TYPE_INT64:
    case pb::FieldDescriptor::TYPE_SINT64:
    case pb::FieldDescriptor::TYPE_SFIXED64:
    case pb::FieldDescriptor::TYPE_UINT64:
    case pb::FieldDescriptor::TYPE_FIXED64:
      // The JSON mapping writes 64-bit integers as strings and reads either.
      return {{"oneOf", json::array({{{"type", "string"}, {"format", "int64"}}, {{"type", "integer"}}})}};
    case pb::FieldDescriptor::TYPE_FLOAT: return {{"type", "number"}, {"format", "float"}};
    case pb::FieldDescriptor::TYPE_DOUBLE: return {{"type", "number"}, {"format", "double"}};
    case pb::FieldDescriptor::TYPE_BOOL: return {{"type", "boolean"}};
    case pb::FieldDescriptor::TYPE_STRING: return {{"type", "string"}};
    case pb::FieldDescriptor::TYPE_BYTES: return {{"type", "string"}, {"format", "byte"}};
    case pb::FieldDescriptor::TYPE_ENUM: {
      json names = json::array();
      for (int i = 0; i < f->enum_type()->value_count(); ++i) names.push_back(f->enum_type()->value(i)->name());
      return {{"type", "string"}, {"enum", names}};
    }
    default: pending->push_back(f->message_type()); return {{"$ref", Ref(f->message_type())}};
  }
}

json FieldSchema(const pb::FieldDescriptor* f, std::vector<const pb::Descriptor*>* pending) {
  if (f->is_map()) {
    return {{"type", "object"},
            {"additionalProperties", ValueSchema(f->message_type()->FindFieldByName("value"), pending)}};
  }
  json v = ValueSchema(f, pending);
  return f->is_repeated() ? json{{"type", "array"}, {"items", v}} : v;
}

// Every message reachable from `roots`, as schemas.
json Schemas(std::vector<const pb::Descriptor*> pending) {
  json out = json::object();
  std::set<std::string> done;
  while (!pending.empty()) {
    const pb::Descriptor* d = pending.back();
    pending.pop_back();
    if (!done.insert(d->full_name()).second) continue;
    json props = json::object();
    for (int i = 0; i < d->field_count(); ++i) {
      const pb::FieldDescriptor* f = d->field(i);
      props[f->json_name()] = FieldSchema(f, &pending);
    }
    out[d->full_name()] = {{"type", "object"}, {"properties", props}};
  }
  out["ganserve.Error"] = {{"type", "object"},
                           {"properties",
                            {{"error",
                              {{"type", "object"},
                               {"properties",
                                {{"code", {{"type", "integer"}, {"description", "the gRPC status code"}}},
                                 {"status", {{"type", "string"}, {"description", "its name, e.g. NOT_FOUND"}}},
                                 {"message", {{"type", "string"}}}}}}}}}};
  return out;
}

}  // namespace

const pb::ServiceDescriptor* GanServiceDescriptor() {
  return v1::AdaptDomainRequest::descriptor()->file()->FindServiceByName("GanService");
}

std::vector<std::pair<std::string, std::string>> HttpBindings(const google::api::HttpRule& rule) {
  switch (rule.pattern_case()) {
    case google::api::HttpRule::kGet: return {{"GET", rule.get()}};
    case google::api::HttpRule::kPut: return {{"PUT", rule.put()}};
    case google::api::HttpRule::kPost: return {{"POST", rule.post()}};
    case google::api::HttpRule::kDelete: return {{"DELETE", rule.delete_()}};
    case google::api::HttpRule::kPatch: return {{"PATCH", rule.patch()}};
    default: return {};
  }
}

std::string OpenApiDocument() {
  const pb::ServiceDescriptor* service = GanServiceDescriptor();
  json paths = json::object();
  std::vector<const pb::Descriptor*> roots;
  static const std::regex var(R"(\{([a-z_]+)\})");
  for (int i = 0; i < service->method_count(); ++i) {
    const pb::MethodDescriptor* m = service->method(i);
    if (!m->options().HasExtension(google::api::http)) continue;
    const google::api::HttpRule& rule = m->options().GetExtension(google::api::http);
    for (const auto& [verb, path] : HttpBindings(rule)) {
      json op = {{"operationId", m->name()}, {"tags", json::array({service->name()})}};
      json params = json::array();
      std::set<std::string> in_path;
      for (std::sregex_iterator it(path.begin(), path.end(), var), end; it != end; ++it) {
        const std::string name = (*it)[1].str();
        in_path.insert(name);
        std::vector<const pb::Descriptor*> ignored;
        params.push_back({{"name", name},
                          {"in", "path"},
                          {"required", true},
                          {"schema", FieldSchema(m->input_type()->FindFieldByName(name), &ignored)}});
      }
      if (rule.body().empty()) {
        // Scalar request fields not in the path are query parameters.
        const pb::Descriptor* in = m->input_type();
        for (int f = 0; f < in->field_count(); ++f) {
          const pb::FieldDescriptor* fd = in->field(f);
          if (in_path.count(fd->name()) != 0 || fd->cpp_type() == pb::FieldDescriptor::CPPTYPE_MESSAGE) continue;
          std::vector<const pb::Descriptor*> ignored;
          params.push_back({{"name", fd->name()}, {"in", "query"}, {"schema", FieldSchema(fd, &ignored)}});
        }
      } else {
        roots.push_back(m->input_type());
        const json schema = {{"$ref", Ref(m->input_type())}};
        op["requestBody"] = {{"required", true},
                             {"content", m->client_streaming() ? json{{"application/x-ndjson", {{"schema", schema}}}}
                                                               : json{{"application/json", {{"schema", schema}}}}}};
      }
      if (m->name() == "WatchJob") {
        params.push_back({{"name", "Last-Event-ID"},
                          {"in", "header"},
                          {"description", "resume after this event seq (Server-Sent Events)"},
                          {"schema", {{"type", "string"}}}});
      }
      const bool images = m->output_type()->name() == "ImageBatch";
      if (images) {
        params.push_back({{"name", "format"},
                          {"in", "query"},
                          {"description", "png: every image of the call in one PNG contact sheet (at most 64 images)"},
                          {"schema", {{"type", "string"}, {"enum", json::array({"png"})}}}});
      }
      if (!params.empty()) op["parameters"] = params;
      roots.push_back(m->output_type());
      const json out_schema = {{"$ref", Ref(m->output_type())}};
      json content = m->server_streaming() ? json{{"application/x-ndjson", {{"schema", out_schema}}},
                                                  {"text/event-stream", {{"schema", {{"type", "string"}}}}}}
                                           : json{{"application/json", {{"schema", out_schema}}}};
      if (images) content["image/png"] = {{"schema", {{"type", "string"}, {"format", "binary"}}}};
      op["responses"] = {
          {"200",
           {{"description", m->server_streaming() ? "a stream of messages (NDJSON, or SSE with Accept: "
                                                    "text/event-stream)"
                                                  : "the response"},
            {"content", content}}},
          {"default",
           {{"description", "an error: the gRPC status as JSON, with the HTTP status google.rpc maps it to"},
            {"content", {{"application/json", {{"schema", {{"$ref", "#/components/schemas/ganserve.Error"}}}}}}}}}};
      std::string method = verb;
      for (char& c : method) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      paths[path][method] = op;
    }
  }
  const json error_response = {
      {"description", "an error: the gRPC status as JSON, with the HTTP status google.rpc maps it to"},
      {"content", {{"application/json", {{"schema", {{"$ref", "#/components/schemas/ganserve.Error"}}}}}}}};
  paths["/v1/jobs/{id}/previews/{seq}.png"]["get"] = {
      {"operationId", "GetPreviewPng"},
      {"tags", json::array({service->name()})},
      {"summary", "one preview event of a job as a PNG contact sheet"},
      {"parameters",
       json::array({{{"name", "id"}, {"in", "path"}, {"required", true}, {"schema", {{"type", "string"}}}},
                    {{"name", "seq"},
                     {"in", "path"},
                     {"required", true},
                     {"description", "the preview event's seq"},
                     {"schema", {{"type", "integer"}, {"minimum", 1}}}},
                    {{"name", "set"},
                     {"in", "query"},
                     {"description", "current (default) or source (the first preview only)"},
                     {"schema", {{"type", "string"}, {"enum", json::array({"current", "source"})}}}}})},
      {"responses",
       {{"200",
         {{"description", "the PNG"},
          {"content", {{"image/png", {{"schema", {{"type", "string"}, {"format", "binary"}}}}}}}}},
        {"default", error_response}}}};
  json doc = {
      {"openapi", "3.0.3"},
      {"info",
       {{"title", "ganserve"},
        {"version", "v1"},
        {"description",
         "StyleGAN2 domain adaptation, sampling, inversion and editing over HTTP/JSON: the gRPC API "
         "ganserve.v1.GanService transcoded with protobuf's JSON mapping."}}},
      {"paths", paths},
      {"components",
       {{"schemas", Schemas(roots)}, {"securitySchemes", {{"bearer", {{"type", "http"}, {"scheme", "bearer"}}}}}}},
      {"security", json::array({json::object(), {{"bearer", json::array()}}})}};
  return doc.dump(2) + "\n";
}

}  // namespace ganserve::server
