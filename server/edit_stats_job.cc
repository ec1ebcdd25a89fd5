#include "server/edit_stats_job.h"

#include <filesystem>
#include <system_error>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/util/file_util.h"
#include "core/util/status_macros.h"
#include "server/adapt_job.h"

namespace ganserve::server {
namespace {

absl::Status Invalid(const std::string& m) { return absl::InvalidArgumentError(m); }

class EditStatsRunner : public core::JobRunner {
 public:
  EditStatsRunner(std::unique_ptr<core::edit::GlobalStatsBuilder> b, std::string path, std::string model,
                  std::string clip)
      : b_(std::move(b)), path_(std::move(path)), model_(std::move(model)), clip_(std::move(clip)) {}
  int64_t total_steps() const override { return b_->total_steps(); }
  int64_t step() const override { return b_->step(); }
  absl::StatusOr<std::map<std::string, float>> Step() override { return b_->Step(); }
  absl::StatusOr<core::FloatTensor> PreviewImages(bool source) override {
    if (source) return absl::UnavailableError("no source preview for statistics");
    return b_->Preview();
  }
  absl::Status SaveCheckpoint(const std::string& path) override { return b_->SaveCheckpoint(path); }
  absl::Status RestoreCheckpoint(const std::string& path) override { return b_->RestoreCheckpoint(path); }
  absl::StatusOr<std::string> Finish() override {
    ASSIGN_OR_RETURN(core::edit::GlobalStats s, b_->Result());
    RETURN_IF_ERROR(core::MakeDirs(std::filesystem::path(path_).parent_path().string()));
    RETURN_IF_ERROR(core::edit::SaveGlobalStats(path_, s, model_, clip_));
    return absl::StrCat(model_, "/", clip_);
  }

 private:
  std::unique_ptr<core::edit::GlobalStatsBuilder> b_;
  std::string path_, model_, clip_;
};

}  // namespace

absl::StatusOr<std::string> ResolveClipModel(const core::ModelRepository& repo, const std::string& requested) {
  if (!requested.empty()) {
    if (!core::IsValidModelName(requested)) return Invalid("clip_model is not a valid model name");
    RETURN_IF_ERROR(repo.GetClip(requested).status());
    return requested;
  }
  for (const auto& m : repo.List()) {
    if (m.kind == core::ModelKind::kClip && m.state == core::ModelState::kReady) return m.name;
  }
  return absl::FailedPreconditionError(
      "no CLIP model is installed: add one to the model repository ({\"kind\": \"clip\", ...}; see the README's "
      "Weights section)");
}

std::string GlobalStatsPath(const core::ModelRepository& repo, const std::string& model, const std::string& clip) {
  return (std::filesystem::path(repo.root()) / model / "global_directions" / (clip + ".safetensors")).string();
}

absl::StatusOr<v1::PrepareGlobalDirectionsRequest> ValidatePrepareGlobalDirections(
    const v1::PrepareGlobalDirectionsRequest& in, const core::ModelRepository& repo) {
  v1::PrepareGlobalDirectionsRequest r = in;
  RETURN_IF_ERROR(ValidateJobBasics(r.request_id(), r.model(), repo));
  ASSIGN_OR_RETURN(std::string clip, ResolveClipModel(repo, r.clip_model()));
  r.set_clip_model(clip);
  if (r.num_samples() != 0 && (r.num_samples() < 100 || r.num_samples() > 1000000)) {
    return Invalid(absl::StrCat("num_samples must be in [100, 1000000] (0 = 100000), got ", r.num_samples()));
  }
  if (r.num_samples() == 0) r.set_num_samples(100000);
  if (r.num_images() < 0 || r.num_images() > 1000) {
    return Invalid(absl::StrCat("num_images must be in [1, 1000] (0 = 100), got ", r.num_images()));
  }
  if (r.num_images() == 0) r.set_num_images(100);
  if (r.num_images() > r.num_samples()) return Invalid("num_images cannot exceed num_samples");
  if (r.batch_size() != 0 && (r.batch_size() < 2 || r.batch_size() > 64 || r.batch_size() % 2 != 0)) {
    return Invalid(absl::StrCat("batch_size must be even and in [2, 64] (0 = 16), got ", r.batch_size()));
  }
  if (r.batch_size() == 0) r.set_batch_size(16);
  if (r.preview_every() < 0 || r.preview_every() > 1000000) return Invalid("preview_every must be in [0, 1000000]");
  if (r.max_run_seconds() < 0 || r.max_run_seconds() > 7 * 86400) {
    return Invalid("max_run_seconds must be in [0, 604800]");
  }
  if (!r.recompute() && std::filesystem::exists(GlobalStatsPath(repo, r.model(), clip))) {
    return absl::AlreadyExistsError(absl::StrCat("global-direction statistics for model '", r.model(), "' with CLIP '",
                                                 clip, "' exist already; set recompute to compute them again"));
  }
  return r;
}

namespace {
core::edit::GlobalStatsOptions OptionsOf(const v1::PrepareGlobalDirectionsRequest& req) {
  core::edit::GlobalStatsOptions o;
  o.num_samples = req.num_samples();
  o.num_images = req.num_images();
  o.batch_size = req.batch_size();
  return o;
}
}  // namespace

int64_t PrepareGlobalDirectionsSteps(const v1::PrepareGlobalDirectionsRequest& req, const core::ModelRepository& repo) {
  auto gen = repo.GetGenerator(req.model());
  if (!gen.ok()) return 0;
  return core::edit::GlobalStatsBuilder::TotalSteps((*gen)->config(), OptionsOf(req));
}

core::RunnerFactory EditStatsRunnerFactory(core::ModelRepository* repo) {
  return [repo](const core::JobRecord& job) -> absl::StatusOr<std::unique_ptr<core::JobRunner>> {
    v1::PrepareGlobalDirectionsRequest req;
    if (!req.ParseFromString(job.request)) return absl::DataLossError("the stored request of this job is corrupt");
    ASSIGN_OR_RETURN(auto gen, repo->GetGenerator(req.model()));
    ASSIGN_OR_RETURN(core::ModelRepository::Clip clip, repo->GetClip(req.clip_model()));
    ASSIGN_OR_RETURN(auto builder, core::edit::GlobalStatsBuilder::Create(gen, clip.model, OptionsOf(req)));
    return std::unique_ptr<core::JobRunner>(new EditStatsRunner(
        std::move(builder), GlobalStatsPath(*repo, req.model(), req.clip_model()), req.model(), req.clip_model()));
  };
}

absl::StatusOr<std::shared_ptr<const core::edit::GlobalStats>> GlobalStatsCache::Get(
    const core::ModelRepository& repo, const std::string& model, const std::string& clip) {
  const std::string path = GlobalStatsPath(repo, model, clip);
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  if (ec) {
    return absl::FailedPreconditionError(absl::StrCat(
        "model '", model, "' has no global-direction statistics for CLIP model '", clip,
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
  ASSIGN_OR_RETURN(core::edit::GlobalStats s, core::edit::LoadGlobalStats(path));
  auto shared = std::make_shared<const core::edit::GlobalStats>(std::move(s));
  absl::MutexLock lock(&mu_);
  entries_[path] = {stamp, shared};
  return shared;
}

}  // namespace ganserve::server
