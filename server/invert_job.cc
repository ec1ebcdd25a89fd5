#include "server/invert_job.h"

#include <cmath>
#include <filesystem>
#include <regex>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/io/image_codec.h"
#include "core/util/file_util.h"
#include "core/util/status_macros.h"
#include "server/adapt_job.h"

namespace ganserve::server {
namespace {

absl::Status Invalid(const std::string& m) { return absl::InvalidArgumentError(m); }

class InvertRunner : public core::JobRunner {
 public:
  InvertRunner(std::unique_ptr<core::invert::Projector> p, std::string dir, std::string id, std::string model)
      : p_(std::move(p)), dir_(std::move(dir)), id_(std::move(id)), model_(std::move(model)) {}
  int64_t total_steps() const override { return p_->total_steps(); }
  int64_t step() const override { return p_->step(); }
  absl::StatusOr<std::map<std::string, float>> Step() override { return p_->Step(); }
  absl::StatusOr<core::FloatTensor> PreviewImages(bool source) override {
    if (source) return p_->Target();
    return p_->Current();
  }
  absl::Status SaveCheckpoint(const std::string& path) override { return p_->SaveCheckpoint(path); }
  absl::Status RestoreCheckpoint(const std::string& path) override { return p_->RestoreCheckpoint(path); }
  absl::StatusOr<std::string> Finish() override {
    ASSIGN_OR_RETURN(core::invert::Inversion inv, p_->Result());
    RETURN_IF_ERROR(core::MakeDirs(dir_));
    ASSIGN_OR_RETURN(std::string path, InversionPath(dir_, id_));
    RETURN_IF_ERROR(core::invert::SaveInversion(path, inv, model_));
    return id_;
  }

 private:
  std::unique_ptr<core::invert::Projector> p_;
  std::string dir_, id_, model_;
};

core::DecodeLimits ImageLimits() { return core::DecodeLimits{16u << 20, 8192, 8192, 64LL << 20}; }

}  // namespace

absl::StatusOr<std::string> InversionPath(const std::string& inversions_dir, const std::string& id) {
  static const std::regex kId("inv-[0-9a-f]{1,32}");
  if (!std::regex_match(id, kId)) {
    return Invalid(absl::StrCat("'", id.substr(0, 40), "' is not an inversion id (they look like inv-1a2b...)"));
  }
  return (std::filesystem::path(inversions_dir) / (id + ".safetensors")).string();
}

absl::StatusOr<v1::InvertImageRequest> ValidateInvertRequest(const v1::InvertImageRequest& in,
                                                             const core::ModelRepository& repo) {
  v1::InvertImageRequest r = in;
  RETURN_IF_ERROR(ValidateJobBasics(r.request_id(), r.model(), repo));
  if (r.image().empty()) return Invalid("image is required (PNG or JPEG bytes)");
  auto img = core::DecodeImage(r.image(), ImageLimits());
  if (!img.ok()) return absl::Status(img.status().code(), absl::StrCat("image: ", img.status().message()));
  switch (r.space()) {
    case v1::LATENT_SPACE_UNSPECIFIED: r.set_space(v1::LATENT_SPACE_W_PLUS); break;
    case v1::LATENT_SPACE_W:
    case v1::LATENT_SPACE_W_PLUS: break;
    default: return Invalid("space must be W or W_PLUS");
  }
  if (r.steps() < 0 || r.steps() > 5000) return Invalid("steps must be in [1, 5000] (0 = 1000)");
  if (r.steps() == 0) r.set_steps(1000);
  if (!std::isfinite(r.lr()) || r.lr() < 0 || r.lr() > 1) return Invalid("lr must be in (0, 1] (0 = 0.1)");
  if (r.lr() == 0) r.set_lr(0.1f);
  if (!std::isfinite(r.noise_regularize()) || r.noise_regularize() < 0 || r.noise_regularize() > 1e6) {
    return Invalid("noise_regularize must be in [0, 1e6] (0 = 1e5)");
  }
  if (r.noise_regularize() == 0) r.set_noise_regularize(1e5f);
  if (!std::isfinite(r.mse()) || r.mse() < 0 || r.mse() > 100) return Invalid("mse must be in [0, 100]");
  if (r.preview_every() < 0 || r.preview_every() > 5000) return Invalid("preview_every must be in [0, 5000]");
  if (r.seed() < 0) return Invalid("seed must be >= 0");
  if (r.max_run_seconds() < 0 || r.max_run_seconds() > 86400) return Invalid("max_run_seconds must be in [0, 86400]");
  return r;
}

absl::StatusOr<StoredInversion> LoadInversionFor(const std::string& data_dir, const std::string& id,
                                                 const core::ModelRepository& repo, const std::string& model,
                                                 bool with_noise) {
  ASSIGN_OR_RETURN(std::string path, InversionPath((std::filesystem::path(data_dir) / "inversions").string(), id));
  if (!std::filesystem::exists(path)) {
    return absl::NotFoundError(absl::StrCat("no inversion '", id, "' (ids come from InvertImage)"));
  }
  std::string inv_model;
  ASSIGN_OR_RETURN(core::invert::Inversion inv, core::invert::LoadInversion(path, &inv_model));
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

core::RunnerFactory InvertRunnerFactory(core::ModelRepository* repo, std::string inversions_dir) {
  return [repo, inversions_dir](const core::JobRecord& job) -> absl::StatusOr<std::unique_ptr<core::JobRunner>> {
    v1::InvertImageRequest req;
    if (!req.ParseFromString(job.request)) return absl::DataLossError("the stored request of this job is corrupt");
    ASSIGN_OR_RETURN(auto gen, repo->GetGenerator(req.model()));
    ASSIGN_OR_RETURN(core::Rgb8Image img, core::DecodeImage(req.image(), ImageLimits()));
    // LPIPS when the repository has it (rosinality's loss); else the first ready CLIP
    // model adds an image-embedding loss to MSE.
    std::shared_ptr<const core::lpips::Lpips> lpips = repo->FirstLpips();
    std::shared_ptr<const core::clip::ClipModel> clip;
    for (const auto& m : repo->List()) {
      if (m.kind == core::ModelKind::kClip && m.state == core::ModelState::kReady) {
        auto c = repo->GetClip(m.name);
        if (c.ok()) {
          clip = c->model;
          break;
        }
      }
    }
    core::invert::ProjectorOptions o;
    o.steps = req.steps();
    o.lr = req.lr();
    o.noise_regularize = req.noise_regularize();
    o.mse = req.mse() > 0 ? req.mse() : (lpips != nullptr ? 0.0f : 1.0f);
    o.w_plus = req.space() != v1::LATENT_SPACE_W;
    o.seed = static_cast<uint64_t>(req.seed());
    ASSIGN_OR_RETURN(auto projector, core::invert::Projector::Create(gen, img, o, clip, lpips));
    const std::string id = "inv-" + job.id.substr(job.id.rfind('-') + 1);
    return std::unique_ptr<core::JobRunner>(new InvertRunner(std::move(projector), inversions_dir, id, req.model()));
  };
}

}  // namespace ganserve::server
