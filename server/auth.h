// Bearer-token authorization, checked in the service layer (gRPC 1.51 aborts when an
// AuthMetadataProcessor is set on insecure credentials, and probes need plaintext).
//
// Tokens come from a file (a Kubernetes Secret), one per line: `TOKEN SCOPE[,SCOPE...]`,
// '#' starts a comment. Scopes:
//   inference  GenerateSamples, Edit, InvertImage, GetJob, ListJobs, WatchJob,
//              ListModels, GetModel
//   admin      everything: also AdaptDomain, PrepareGlobalDirections, TrainMapper, CancelJob,
//              DeleteModel, ExportModel (weights leave the service), ImportModel,
//              LoadModel, UnloadModel, RescanRepository, PromoteSnapshot
// Callers send `authorization: Bearer TOKEN` metadata. Health (its own port) and
// reflection are not checked.
#ifndef GANSERVE_SERVER_AUTH_H_
#define GANSERVE_SERVER_AUTH_H_

#include <map>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"

namespace ganserve::server {

enum class Scope { kInference = 1, kAdmin = 2 };

// The scope an RPC (by method name, e.g. "AdaptDomain") needs.
Scope ScopeOf(const std::string& method);

class TokenAuth {
 public:
  // InvalidArgument naming the line for malformed files; NotFound for a missing file.
  static absl::StatusOr<std::unique_ptr<TokenAuth>> FromFile(const std::string& path);
  static absl::StatusOr<std::unique_ptr<TokenAuth>> FromText(const std::string& text);

  // `authorization`: the caller's authorization header (metadata) value, if sent.
  // OK; UNAUTHENTICATED without a known bearer token; PERMISSION_DENIED when the token
  // lacks the method's scope. Messages never echo the token.
  absl::Status Check(const std::optional<std::string>& authorization, const std::string& method) const;
  size_t size() const { return tokens_.size(); }

 private:
  std::map<std::string, int> tokens_;  // token -> scope bits
};

}  // namespace ganserve::server

#endif  // GANSERVE_SERVER_AUTH_H_
