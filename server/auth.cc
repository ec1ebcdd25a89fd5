#include "server/auth.h"

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "core/util/file_util.h"

namespace ganserve::server {
namespace {

// Compares without an early exit, so timing does not reveal how much of a token matched.
bool ConstantTimeEquals(const std::string& a, const std::string& b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i % (b.empty() ? 1 : b.size())]);
  return diff == 0 && !b.empty();
}

}  // namespace

Scope ScopeOf(const std::string& method) {
  if (method == "AdaptDomain" || method == "PrepareGlobalDirections" || method == "TrainMapper" ||
      method == "CancelJob" || method == "DeleteModel" || method == "ExportModel" || method == "ImportModel" ||
      method == "LoadModel" || method == "UnloadModel" || method == "RescanRepository" || method == "PromoteSnapshot") {
    return Scope::kAdmin;
  }
  return Scope::kInference;
}

absl::StatusOr<std::unique_ptr<TokenAuth>> TokenAuth::FromFile(const std::string& path) {
  auto text = core::ReadFile(path, 1 << 20);
  if (!text.ok()) {
    return absl::Status(text.status().code(), absl::StrCat("auth tokens file: ", text.status().message()));
  }
  return FromText(*text);
}

absl::StatusOr<std::unique_ptr<TokenAuth>> TokenAuth::FromText(const std::string& text) {
  auto auth = std::unique_ptr<TokenAuth>(new TokenAuth());
  int line_no = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_no;
    if (size_t hash = line.find('#'); hash != absl::string_view::npos) line = line.substr(0, hash);
    line = absl::StripAsciiWhitespace(line);
    if (line.empty()) continue;
    std::vector<absl::string_view> parts = absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
    if (parts.size() != 2) {
      return absl::InvalidArgumentError(
          absl::StrCat("auth tokens file line ", line_no, ": expected 'TOKEN SCOPE[,SCOPE]'"));
    }
    if (parts[0].size() < 16) {
      return absl::InvalidArgumentError(
          absl::StrCat("auth tokens file line ", line_no, ": tokens must be at least 16 characters"));
    }
    int bits = 0;
    for (absl::string_view s : absl::StrSplit(parts[1], ',', absl::SkipEmpty())) {
      if (s == "inference") {
        bits |= static_cast<int>(Scope::kInference);
      } else if (s == "admin") {
        bits |= static_cast<int>(Scope::kAdmin) | static_cast<int>(Scope::kInference);
      } else {
        return absl::InvalidArgumentError(
            absl::StrCat("auth tokens file line ", line_no, ": unknown scope '", s, "' (inference or admin)"));
      }
    }
    auth->tokens_[std::string(parts[0])] = bits;
  }
  if (auth->tokens_.empty()) return absl::InvalidArgumentError("auth tokens file holds no token");
  return auth;
}

absl::Status TokenAuth::Check(const std::optional<std::string>& authorization, const std::string& method) const {
  if (!authorization.has_value()) {
    return absl::UnauthenticatedError(
        "this server needs a bearer token: send 'authorization: Bearer TOKEN' metadata "
        "(ganctl --token or GANSERVE_TOKEN)");
  }
  const std::string& value = *authorization;
  constexpr absl::string_view kBearer = "Bearer ";
  if (!absl::StartsWith(value, kBearer)) {
    return absl::UnauthenticatedError("the authorization metadata must be 'Bearer TOKEN'");
  }
  const std::string token = value.substr(kBearer.size());
  int bits = 0;
  for (const auto& [known, scope] : tokens_) {
    if (ConstantTimeEquals(token, known)) bits = scope;
  }
  if (bits == 0) return absl::UnauthenticatedError("unknown bearer token");
  const Scope need = ScopeOf(method);
  if ((bits & static_cast<int>(need)) == 0) {
    return absl::PermissionDeniedError(
        absl::StrCat(method, " needs a token with the '", need == Scope::kAdmin ? "admin" : "inference", "' scope"));
  }
  return absl::OkStatus();
}

}  // namespace ganserve::server
