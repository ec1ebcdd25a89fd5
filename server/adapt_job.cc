#include "server/adapt_job.h"

#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/adapt/nada_trainer.h"
#include "core/checkpoint/safetensors.h"
#include "core/io/image_codec.h"
#include "core/util/file_util.h"
#include "core/util/status_macros.h"

namespace ganserve::server {
namespace {

absl::Status Invalid(const std::string& m) { return absl::InvalidArgumentError(m); }

absl::Status CheckText(const std::string& field, const std::string& text) {
  if (text.size() > 300) return Invalid(absl::StrCat(field, " is ", text.size(), " bytes; the limit is 300"));
  for (unsigned char c : text) {
    if (c < 0x20 && c != '\t') return Invalid(absl::StrCat(field, " contains control characters"));
  }
  return absl::OkStatus();
}

std::string Slug(const std::string& text) {
  std::string out;
  for (char ch : text) {
    const char c = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) out.push_back(c);
    else if (!out.empty() && out.back() != '-') out.push_back('-');
    if (out.size() >= 40) break;
  }
  while (!out.empty() && out.back() == '-') out.pop_back();
  return out.empty() ? "adapted" : out;
}

class AdaptRunner : public core::JobRunner {
 public:
  AdaptRunner(core::ModelRepository* repo, v1::AdaptDomainRequest req, std::string job_id,
              std::unique_ptr<core::adapt::NadaTrainer> trainer)
      : repo_(repo), req_(std::move(req)), job_id_(std::move(job_id)), trainer_(std::move(trainer)) {}

  int64_t total_steps() const override { return req_.iterations(); }
  int64_t step() const override { return trainer_->step(); }
  absl::StatusOr<std::map<std::string, float>> Step() override { return trainer_->Step(); }
  absl::StatusOr<core::FloatTensor> PreviewImages(bool source) override { return trainer_->Preview(source); }
  absl::Status SaveCheckpoint(const std::string& path) override { return trainer_->SaveCheckpoint(path); }
  absl::Status RestoreCheckpoint(const std::string& path) override { return trainer_->RestoreCheckpoint(path); }

  nlohmann::json ImageHashes() const {
    nlohmann::json h = nlohmann::json::array();
    for (const auto& img : req_.target_images()) {
      uint64_t v = 1469598103934665603ULL;
      for (unsigned char c : img) v = (v ^ c) * 1099511628211ULL;
      h.push_back(absl::StrCat("fnv1a64:", absl::Hex(v, absl::kZeroPad16)));
    }
    return h;
  }

  absl::StatusOr<std::string> Finish() override {
    const std::string name = req_.output_name();
    if (repo_->Exists(name)) {
      return absl::AlreadyExistsError(absl::StrCat("a model named '", name, "' appeared while training; the result "
                                                   "was not saved. Retry with another output_name"));
    }
    // Write into a hidden temp folder, then rename: no half-written model is ever visible.
    const std::filesystem::path root(repo_->root());
    const std::filesystem::path tmp = root / (".tmp-" + job_id_);
    std::filesystem::remove_all(tmp);
    RETURN_IF_ERROR(core::MakeDirs(tmp.string()));
    auto delta = trainer_->Delta();
    RETURN_IF_ERROR(core::SaveSafetensors((tmp / "delta.safetensors").string(), delta,
                                          {{"base_model", req_.model()}, {"job", job_id_}}));
    nlohmann::json clips = nlohmann::json::array();
    for (const auto& c : req_.clip_models()) clips.push_back({{"name", c.name()}, {"weight", c.weight()}});
    nlohmann::json m = {{"kind", "adapted_generator"},
                        {"base_model", req_.model()},
                        {"delta", "delta.safetensors"},
                        {"domain", req_.target_text()},
                        {"source_text", req_.source_text()},
                        {"target_text", req_.target_text()},
                        {"default_truncation", 0.7},
                        {"job", job_id_},
                        {"training",
                         {{"iterations", req_.iterations()},
                          {"batch_size", req_.batch_size()},
                          {"lr_scale", req_.lr_scale()},
                          {"mixing", req_.mixing()},
                          {"auto_layer_k", req_.auto_layer_k()},
                          {"auto_layer_iters", req_.auto_layer_iters()},
                          {"layer_mapping", v1::LayerMapping_Name(req_.layer_mapping())},
                          {"layer_preset", v1::LayerPreset_Name(req_.layer_preset())},
                          {"lambda_global", req_.lambda_global()},
                          {"lambda_manifold", req_.lambda_manifold()},
                          {"seed", req_.seed()},
                          {"clip_models", clips},
                          {"target_image_hashes", ImageHashes()},
                          {"changed_tensors", delta.size()}}}};
    RETURN_IF_ERROR(core::WriteFileAtomic((tmp / "manifest.json").string(), m.dump(2) + "\n"));
    std::error_code ec;
    std::filesystem::rename(tmp, root / name, ec);
    if (ec) return absl::InternalError(absl::StrCat("cannot publish model '", name, "': ", ec.message()));
    RETURN_IF_ERROR(repo_->Add(name).status());
    return name;
  }

 private:
  core::ModelRepository* repo_;
  v1::AdaptDomainRequest req_;
  std::string job_id_;
  std::unique_ptr<core::adapt::NadaTrainer> trainer_;
};

}  // namespace

absl::Status ValidateJobBasics(const std::string& request_id, const std::string& model,
                               const core::ModelRepository& repo) {
  if (request_id.size() > 128) return Invalid("request_id is longer than 128 characters");
  for (unsigned char c : request_id) {
    if (c < 0x21 || c > 0x7e) return Invalid("request_id must be printable ASCII without spaces");
  }
  if (model.empty()) return Invalid("model is required: name a generator from ListModels");
  if (!core::IsValidModelName(model)) return Invalid("model is not a valid model name");
  return repo.GetGenerator(model).status();
}

std::string RequestHash(const google::protobuf::Message& req) {
  std::unique_ptr<google::protobuf::Message> copy(req.New());
  copy->CopyFrom(req);
  const auto* field = copy->GetDescriptor()->FindFieldByName("request_id");
  if (field != nullptr) copy->GetReflection()->ClearField(copy.get(), field);
  std::string bytes;
  {
    google::protobuf::io::StringOutputStream out(&bytes);
    google::protobuf::io::CodedOutputStream coded(&out);
    coded.SetSerializationDeterministic(true);
    copy->SerializeToCodedStream(&coded);
  }
  uint64_t h = 1469598103934665603ULL;  // FNV-1a 64
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return absl::StrCat(absl::Hex(h, absl::kZeroPad16), "-", bytes.size());
}

absl::StatusOr<v1::AdaptDomainRequest> ValidateAdaptRequest(const v1::AdaptDomainRequest& in,
                                                            const core::ModelRepository& repo) {
  v1::AdaptDomainRequest r = in;
  // An adapted generator or a CLIP model as the base gets its own advice.
  if (auto info = repo.Get(r.model()); info.ok() && info->kind != core::ModelKind::kGenerator) {
    return absl::FailedPreconditionError(absl::StrCat("model '", r.model(), "' is a ", core::ModelKindName(info->kind),
                                                      "; adapt from a base generator"));
  }
  RETURN_IF_ERROR(ValidateJobBasics(r.request_id(), r.model(), repo));
  ASSIGN_OR_RETURN(core::ModelInfo base, repo.Get(r.model()));
  if (r.target_images_size() > 16) return Invalid("target_images: at most 16");
  for (int i = 0; i < r.target_images_size(); ++i) {
    auto img = core::DecodeImage(r.target_images(i), core::DecodeLimits{16u << 20, 8192, 8192, 64LL << 20});
    if (!img.ok()) {
      return absl::Status(img.status().code(), absl::StrCat("target_images[", i, "]: ", img.status().message()));
    }
  }
  if (r.target_text().empty() && r.target_images_size() == 0) {
    return Invalid("target_text is required (e.g. \"pencil sketch\") unless target_images are given");
  }
  if (r.target_text().empty() && r.auto_layer_k() > 0) {
    return Invalid("auto_layer_k needs target_text: layer selection is text-guided, also with target_images");
  }
  RETURN_IF_ERROR(CheckText("target_text", r.target_text()));
  if (r.source_text().empty()) r.set_source_text(base.domain.empty() ? "photo" : base.domain);
  RETURN_IF_ERROR(CheckText("source_text", r.source_text()));
  if (r.source_text() == r.target_text()) return Invalid("source_text and target_text are the same");

  if (r.clip_models_size() == 0) {
    for (const auto& m : repo.List()) {
      if (m.kind == core::ModelKind::kClip && m.state == core::ModelState::kReady) {
        auto* c = r.add_clip_models();
        c->set_name(m.name);
        c->set_weight(1.0f);
      }
    }
    if (r.clip_models_size() == 0) {
      return absl::FailedPreconditionError(
          "the repository has no CLIP model; add one (e.g. ViT-B-32.pt with its vocabulary, kind \"clip\")");
    }
  }
  if (r.clip_models_size() > 4) return Invalid("clip_models: at most 4");
  for (auto& c : *r.mutable_clip_models()) {
    if (c.weight() == 0) c.set_weight(1.0f);
    if (!(c.weight() > 0 && c.weight() <= 10)) return Invalid(absl::StrCat("clip_models weight for '", c.name(), "' must be in (0, 10]"));
    if (!core::IsValidModelName(c.name())) return Invalid("clip_models: invalid model name");
    RETURN_IF_ERROR(repo.GetClip(c.name()).status());
  }
  auto range = [](const char* f, int64_t v, int64_t lo, int64_t hi) -> absl::Status {
    if (v < lo || v > hi) return Invalid(absl::StrCat(f, " must be in [", lo, ", ", hi, "] (0 = default), got ", v));
    return absl::OkStatus();
  };
  RETURN_IF_ERROR(range("iterations", r.iterations(), 0, 5000));
  if (r.iterations() == 0) r.set_iterations(300);
  RETURN_IF_ERROR(range("batch_size", r.batch_size(), 0, 16));
  if (r.batch_size() == 0) r.set_batch_size(2);
  if (!std::isfinite(r.lr_scale()) || r.lr_scale() < 0 || r.lr_scale() > 10) return Invalid("lr_scale must be in (0, 10]");
  if (r.lr_scale() == 0) r.set_lr_scale(1);
  if (!std::isfinite(r.mixing()) || r.mixing() < 0 || r.mixing() > 1) return Invalid("mixing must be in [0, 1]");
  RETURN_IF_ERROR(range("auto_layer_k", r.auto_layer_k(), 0, base.n_latent));
  RETURN_IF_ERROR(range("auto_layer_iters", r.auto_layer_iters(), 0, 10));
  if (r.auto_layer_iters() == 0) r.set_auto_layer_iters(1);
  RETURN_IF_ERROR(range("auto_layer_batch", r.auto_layer_batch(), 0, 32));
  if (r.auto_layer_batch() == 0) r.set_auto_layer_batch(8);
  if (!v1::LayerMapping_IsValid(r.layer_mapping()) || !v1::LayerPreset_IsValid(r.layer_preset())) {
    return Invalid("unknown layer_mapping or layer_preset");
  }
  for (auto [name, v] : {std::pair<const char*, float>{"lambda_global", r.lambda_global()},
                         {"lambda_manifold", r.lambda_manifold()}}) {
    if (!std::isfinite(v) || v < 0 || v > 100) return Invalid(absl::StrCat(name, " must be in [0, 100]"));
  }
  RETURN_IF_ERROR(range("preview_every", r.preview_every(), 0, 5000));
  RETURN_IF_ERROR(range("preview_count", r.preview_count(), 0, 16));
  if (r.preview_count() == 0) r.set_preview_count(4);
  RETURN_IF_ERROR(range("max_run_seconds", r.max_run_seconds(), 0, 86400));
  if (r.seed() < 0) return Invalid("seed must be >= 0");
  if (!v1::ImageFormat_IsValid(r.preview_format())) return Invalid("unknown preview_format");
  if (r.output_name().empty()) {
    r.set_output_name(absl::StrCat(r.model(), "-", r.target_text().empty() ? std::string("images") : Slug(r.target_text())));
    if (r.output_name().size() > 56) r.set_output_name(r.output_name().substr(0, 56));
    if (repo.Exists(r.output_name())) {
      return absl::AlreadyExistsError(absl::StrCat("a model named '", r.output_name(),
                                                   "' exists; set output_name or delete it first"));
    }
  } else {
    if (!core::IsValidModelName(r.output_name())) {
      return Invalid("output_name must match [a-z0-9][a-z0-9._-]{0,63}");
    }
    if (repo.Exists(r.output_name())) {
      return absl::AlreadyExistsError(absl::StrCat("a model named '", r.output_name(), "' already exists"));
    }
  }
  return r;
}

core::RunnerFactory AdaptRunnerFactory(core::ModelRepository* repo, core::clip::TextEmbeddingCache* text_cache) {
  return [repo, text_cache](const core::JobRecord& job) -> absl::StatusOr<std::unique_ptr<core::JobRunner>> {
    v1::AdaptDomainRequest req;
    if (!req.ParseFromString(job.request)) return absl::DataLossError("the stored request of this job is corrupt");
    ASSIGN_OR_RETURN(auto base, repo->GetGenerator(req.model()));
    std::vector<core::adapt::ClipGuide> guides;
    for (const auto& c : req.clip_models()) {
      ASSIGN_OR_RETURN(auto clip, repo->GetClip(c.name()));
      guides.push_back({c.name(), clip.model, clip.tokenizer, c.weight()});
    }
    core::adapt::NadaOptions o;
    o.source_text = req.source_text();
    o.target_text = req.target_text();
    for (const auto& bytes : req.target_images()) {
      ASSIGN_OR_RETURN(core::Rgb8Image img, core::DecodeImage(bytes, core::DecodeLimits{16u << 20, 8192, 8192, 64LL << 20}));
      o.target_images.push_back(std::move(img));
    }
    o.iterations = req.iterations();
    o.batch_size = req.batch_size();
    o.lr = 0.002f * 0.8f * req.lr_scale();
    o.mixing = req.mixing();
    o.auto_layer_k = req.auto_layer_k();
    o.auto_layer_iters = req.auto_layer_iters();
    o.auto_layer_batch = req.auto_layer_batch();
    o.layer_mapping = req.layer_mapping() == v1::LAYER_MAPPING_OFFICIAL ? core::adapt::LayerMapping::kOfficial
                                                                          : core::adapt::LayerMapping::kConsumer;
    switch (req.layer_preset()) {
      case v1::LAYER_PRESET_ALL: o.layer_preset = core::adapt::LayerPreset::kAll; break;
      case v1::LAYER_PRESET_TEXTURE: o.layer_preset = core::adapt::LayerPreset::kTexture; break;
      case v1::LAYER_PRESET_SHAPE: o.layer_preset = core::adapt::LayerPreset::kShape; break;
      case v1::LAYER_PRESET_NO_FINE: o.layer_preset = core::adapt::LayerPreset::kNoFine; break;
      default: o.layer_preset = core::adapt::LayerPreset::kDefault;
    }
    o.lambda_global = req.lambda_global();
    o.lambda_manifold = req.lambda_manifold();
    o.preview_count = req.preview_count();
    o.seed = static_cast<uint64_t>(req.seed());
    ASSIGN_OR_RETURN(auto trainer, core::adapt::NadaTrainer::Create(base, std::move(guides), o, text_cache));
    return std::unique_ptr<core::JobRunner>(new AdaptRunner(repo, std::move(req), job.id, std::move(trainer)));
  };
}

}  // namespace ganserve::server
