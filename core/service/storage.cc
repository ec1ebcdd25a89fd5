#include "core/service/storage.h"

#include <algorithm>
#include <filesystem>
#include <regex>
#include <system_error>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/invert/projector.h"
#include "core/util/status_macros.h"

namespace ganserve::core::service {

absl::StatusOr<std::string> ResolveClipModel(const ModelRepository& repo, const std::string& requested) {
  if (!requested.empty()) {
    if (!IsValidModelName(requested)) return absl::InvalidArgumentError("clip_model is not a valid model name");
    RETURN_IF_ERROR(repo.GetClip(requested).status());
    return requested;
  }
  std::vector<std::string> installed;
  for (const auto& m : repo.List()) {
    if (m.kind == ModelKind::kClip && IsUsable(m.state)) installed.push_back(m.name);
  }
  if (installed.empty()) {
    return absl::FailedPreconditionError(
        "no CLIP model is installed: add one to the model repository ({\"kind\": \"clip\", ...}; see the README's "
        "Weights section)");
  }
  const std::string configured = repo.styleclip_default();
  if (!configured.empty() && std::find(installed.begin(), installed.end(), configured) != installed.end()) {
    return configured;
  }
  // No silent choice among other CLIP models: StyleCLIP's ranges are tuned for ViT-B/32.
  return absl::FailedPreconditionError(absl::StrCat(
      "no clip_model given and the StyleCLIP default CLIP model '", configured,
      "' is not installed; StyleCLIP's alpha/beta ranges are tuned for ViT-B/32. Installed CLIP models: ",
      absl::StrJoin(installed, ", "), ". Name one in clip_model, or set the server's --styleclip_clip_model"));
}

std::string GlobalStatsPath(const ModelRepository& repo, const std::string& model, const std::string& clip) {
  return (std::filesystem::path(repo.root()) / model / "global_directions" / (clip + ".safetensors")).string();
}

namespace {

std::string StatsSet(const std::string& model, const std::string& clip) {
  return absl::StrCat("global_directions/", model, "/", clip);
}
std::string InversionSet(const std::string& id) { return absl::StrCat("inversions/", id); }

// Fetches set `name` into `dir` when `path` (one of its files) is missing here: false
// when the shared files lack it too (or there are none).
absl::StatusOr<bool> FetchIfMissing(const ModelRepository& repo, const std::string& name, const std::string& dir,
                                    const std::string& path) {
  std::error_code ec;
  if (std::filesystem::exists(path, ec)) return true;
  SharedFiles* shared = repo.shared_files();
  if (shared == nullptr) return false;
  absl::Status st = shared->GetSet(name, dir);
  if (absl::IsNotFound(st)) return false;
  if (!st.ok()) {
    return absl::UnavailableError(absl::StrCat("cannot fetch ", name, " from ", shared->url(), ": ", st.message()));
  }
  return std::filesystem::exists(path, ec);
}

absl::Status Share(const ModelRepository& repo, const std::string& name, const std::string& dir,
                   const std::vector<std::string>& files) {
  SharedFiles* shared = repo.shared_files();
  if (shared == nullptr) return absl::OkStatus();
  absl::Status st = shared->PutSet(name, dir, files);
  if (st.ok()) return st;
  return absl::UnavailableError(absl::StrCat("cannot store ", name, " in ", shared->url(), ": ", st.message()));
}

}  // namespace

absl::Status ShareGlobalStats(const ModelRepository& repo, const std::string& model, const std::string& clip) {
  const std::filesystem::path path = GlobalStatsPath(repo, model, clip);
  return Share(repo, StatsSet(model, clip), path.parent_path().string(), {path.filename().string()});
}

absl::StatusOr<bool> HaveGlobalStats(const ModelRepository& repo, const std::string& model, const std::string& clip) {
  const std::filesystem::path path = GlobalStatsPath(repo, model, clip);
  // Statistics go beside their model: none without it here (a folder made for them
  // alone would block fetching the model itself).
  std::error_code ec;
  if (!std::filesystem::exists(std::filesystem::path(repo.root()) / model / "manifest.json", ec)) return false;
  return FetchIfMissing(repo, StatsSet(model, clip), path.parent_path().string(), path.string());
}

absl::Status ShareInversion(const ModelRepository& repo, const std::string& data_dir, const std::string& id) {
  ASSIGN_OR_RETURN(std::string path, InversionPath(data_dir, id));
  std::vector<std::string> files = {std::filesystem::path(path).filename().string()};
  const std::filesystem::path pin = InversionPinPath(path);
  if (std::filesystem::exists(pin)) files.push_back(pin.filename().string());
  return Share(repo, InversionSet(id), InversionsDir(data_dir), files);
}

absl::StatusOr<std::shared_ptr<const edit::GlobalStats>> GlobalStatsCache::Get(const ModelRepository& repo,
                                                                               const std::string& model,
                                                                               const std::string& clip) {
  const std::string path = GlobalStatsPath(repo, model, clip);
  ASSIGN_OR_RETURN(bool have, HaveGlobalStats(repo, model, clip));
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  if (!have || ec) {
    return absl::FailedPreconditionError(
        absl::StrCat("model '", model, "' has no global-direction statistics for CLIP model '", clip,
                     "' yet: compute them once with PrepareGlobalDirections (ganctl prepare-global --model ", model,
                     "); they take one render pair per channel and image"));
  }
  const auto mtime = std::filesystem::last_write_time(path, ec).time_since_epoch().count();
  const std::string stamp = absl::StrCat(size, ":", mtime);
  {
    absl::MutexLock lock(&mu_);
    auto it = entries_.find(path);
    if (it != entries_.end() && it->second.stamp == stamp) return it->second.stats;
  }
  ASSIGN_OR_RETURN(edit::GlobalStats s, edit::LoadGlobalStats(path));
  auto shared = std::make_shared<const edit::GlobalStats>(std::move(s));
  absl::MutexLock lock(&mu_);
  entries_[path] = {stamp, shared};
  return shared;
}

std::string InversionsDir(const std::string& data_dir) {
  return (std::filesystem::path(data_dir) / "inversions").string();
}

std::string InversionIdForJob(const std::string& job_id) { return "inv-" + job_id.substr(job_id.rfind('-') + 1); }

absl::StatusOr<std::string> InversionPath(const std::string& data_dir, const std::string& id) {
  static const std::regex kId("inv-[0-9a-f]{1,32}");
  if (!std::regex_match(id, kId)) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", id.substr(0, 40), "' is not an inversion id (they look like inv-1a2b...)"));
  }
  return (std::filesystem::path(InversionsDir(data_dir)) / (id + ".safetensors")).string();
}

std::string InversionPinPath(const std::string& inversion_path) {
  return std::filesystem::path(inversion_path).replace_extension(".pinned").string();
}

std::vector<std::string> StoredInversions::JobsWithArtifacts() {
  std::vector<std::string> jobs;
  std::error_code ec;
  constexpr absl::string_view kSuffix = ".safetensors";
  for (const auto& e : std::filesystem::directory_iterator(InversionsDir(data_dir_), ec)) {
    const std::string file = e.path().filename().string();
    if (!absl::StartsWith(file, "inv-") || !absl::EndsWith(file, kSuffix)) continue;
    if (std::filesystem::exists(InversionPinPath(e.path().string()), ec)) continue;
    jobs.push_back(absl::StrCat("job-", file.substr(4, file.size() - 4 - kSuffix.size())));
  }
  return jobs;
}

int64_t StoredInversions::ExpireArtifacts(const std::string& job_id) {
  auto path = InversionPath(data_dir_, InversionIdForJob(job_id));
  if (!path.ok()) return 0;
  if (shared_ != nullptr) {
    if (absl::Status st = shared_->DeleteSet(InversionSet(InversionIdForJob(job_id))); !st.ok()) return 0;
  }
  std::error_code ec;
  const auto bytes = std::filesystem::file_size(*path, ec);
  if (ec || !std::filesystem::remove(*path, ec)) return 0;
  return static_cast<int64_t>(bytes);
}

absl::StatusOr<StoredInversion> LoadInversionFor(const std::string& data_dir, const std::string& id,
                                                 const ModelRepository& repo, const std::string& model,
                                                 bool with_noise) {
  ASSIGN_OR_RETURN(std::string path, InversionPath(data_dir, id));
  ASSIGN_OR_RETURN(bool have, FetchIfMissing(repo, InversionSet(id), InversionsDir(data_dir), path));
  if (!have) {
    return absl::NotFoundError(absl::StrCat("no inversion '", id, "' (ids come from InvertImage)"));
  }
  std::string inv_model;
  ASSIGN_OR_RETURN(invert::Inversion inv, invert::LoadInversion(path, &inv_model));
  auto info = repo.Get(model);
  if (inv_model != model && !(info.ok() && info->base_model == inv_model)) {
    return absl::FailedPreconditionError(absl::StrCat("inversion '", id, "' was made with model '", inv_model,
                                                      "'; use that model or one adapted from it"));
  }
  ASSIGN_OR_RETURN(auto gen, repo.GetGenerator(model));
  const auto& cfg = gen->config();
  if (inv.wplus.shape != std::vector<int64_t>{1, cfg.n_latent, cfg.style_dim}) {
    return absl::FailedPreconditionError("the inversion's latent does not fit this model");
  }
  StoredInversion out;
  out.wplus = std::move(inv.wplus);
  if (with_noise) {
    for (int i = 0; i < cfg.num_layers; ++i) {
      auto it = inv.noises.find(absl::StrCat("noise_", i));
      if (it == inv.noises.end()) {
        out.noise_maps.clear();
        break;
      }
      out.noise_maps.push_back(std::move(it->second));
    }
  }
  return out;
}

}  // namespace ganserve::core::service
