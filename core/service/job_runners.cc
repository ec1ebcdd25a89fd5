#include "core/service/job_runners.h"

#include <filesystem>
#include <nlohmann/json.hpp>
#include <type_traits>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/adapt/domain_trainer.h"
#include "core/adapt/nada_trainer.h"
#include "core/adapt/oneshot_trainer.h"
#include "core/checkpoint/safetensors.h"
#include "core/edit/global_directions.h"
#include "core/edit/mapper_trainer.h"
#include "core/invert/encoder_inversion.h"
#include "core/invert/face_align.h"
#include "core/invert/projector.h"
#include "core/io/image_codec.h"
#include "core/service/specs.h"
#include "core/service/storage.h"
#include "core/util/file_util.h"
#include "core/util/status_macros.h"

namespace ganserve::core::service {
namespace {

// The stored spec of a job: JSON written by this version (older stores are upgraded at
// start-up, see request_upgrade.h).
template <typename Spec>
absl::StatusOr<Spec> StoredSpec(const JobRecord& job) {
  if (job.request_encoding != kSpecJsonEncoding) {
    return absl::DataLossError(absl::StrCat("the stored request of job ", job.id, " is in the old '",
                                            job.request_encoding,
                                            "' encoding and could not be upgraded; submit the job again"));
  }
  return SpecFromJson<Spec>(job.request);
}

adapt::NadaOptions NadaOptionsOf(const AdaptSpec& s) {
  adapt::NadaOptions o;
  o.source_text = s.source_text;
  o.target_text = s.target_text;
  o.iterations = s.iterations;
  o.batch_size = s.batch_size;
  o.lr *= s.lr_scale;  // a multiplier over the reference's learning rate
  o.mixing = s.mixing.value_or(o.mixing);
  o.auto_layer_k = s.auto_layer_k;
  o.auto_layer_iters = s.auto_layer_iters;
  o.auto_layer_batch = s.auto_layer_batch;
  o.layer_mapping =
      s.layer_mapping == LayerMapping::kOfficial ? adapt::LayerMapping::kOfficial : adapt::LayerMapping::kConsumer;
  switch (s.layer_preset) {
    case LayerPreset::kAll: o.layer_preset = adapt::LayerPreset::kAll; break;
    case LayerPreset::kTexture: o.layer_preset = adapt::LayerPreset::kTexture; break;
    case LayerPreset::kShape: o.layer_preset = adapt::LayerPreset::kShape; break;
    case LayerPreset::kNoFine: o.layer_preset = adapt::LayerPreset::kNoFine; break;
    case LayerPreset::kShapeExpanded: o.layer_preset = adapt::LayerPreset::kShapeExpanded; break;
    default: o.layer_preset = adapt::LayerPreset::kDefault;
  }
  o.lambda_global = s.lambda_global;
  o.lambda_manifold = s.lambda_manifold;
  o.lambda_direction = s.lambda_direction.value_or(o.lambda_direction);
  // A validated spec names the counting; records stored before the setting existed
  // (unspecified) began with per-parameter counts and resume with them.
  o.adam_steps = s.adam_steps == AdamSteps::kShared ? adapt::AdamSteps::kShared : adapt::AdamSteps::kPerParameter;
  o.preview_count = s.preview_count;
  o.seed = static_cast<uint64_t>(s.seed);
  return o;
}

adapt::DomainTrainerOptions DomainOptionsOf(const AdaptSpec& s, stylegan2::DomainKind kind) {
  adapt::DomainTrainerOptions o = adapt::DomainTrainerDefaults(kind);
  o.source_text = s.source_text;
  o.target_text = s.target_text;
  o.iterations = static_cast<int>(s.iterations);
  o.batch_size = static_cast<int>(s.batch_size);
  o.lr *= s.lr_scale;  // a multiplier over the parameterization's learning rate
  o.mixing = s.mixing.value_or(o.mixing);
  o.lambda_direction = s.lambda_direction.value_or(o.lambda_direction);
  o.lambda_indomain = s.lambda_indomain.value_or(o.lambda_indomain);
  o.preview_count = static_cast<int>(s.preview_count);
  o.seed = static_cast<uint64_t>(s.seed);
  return o;
}

// What the manifest records of the training: the spec itself, with digests in place of
// the example images.
nlohmann::json TrainingRecord(const AdaptSpec& s, size_t changed_tensors) {
  AdaptSpec copy = s;
  copy.target_images.clear();
  copy.request_id.clear();
  nlohmann::json t = nlohmann::json::parse(SpecToJson(copy));
  t.erase("target_images");
  t.erase("request_id");
  nlohmann::json hashes = nlohmann::json::array();
  for (const auto& img : s.target_images) {
    uint64_t v = 1469598103934665603ULL;  // FNV-1a 64
    for (unsigned char c : img) v = (v ^ c) * 1099511628211ULL;
    hashes.push_back(absl::StrCat("fnv1a64:", absl::Hex(v, absl::kZeroPad16)));
  }
  t["target_image_hashes"] = hashes;
  t["changed_tensors"] = changed_tensors;
  return t;
}

// What AdaptRunner drives: a NADA, lightweight-domain or one-shot trainer.
class AdaptTrainer {
 public:
  virtual ~AdaptTrainer() = default;
  virtual int64_t step() const = 0;
  virtual absl::StatusOr<std::map<std::string, float>> Step() = 0;
  virtual absl::StatusOr<FloatTensor> Preview(bool source) const = 0;
  virtual absl::Status Save(const std::string& path) const = 0;
  virtual absl::Status Restore(const std::string& path) = 0;
  virtual std::string phase() const { return {}; }
};

template <typename T>
class TrainerOf : public AdaptTrainer {
 public:
  explicit TrainerOf(std::unique_ptr<T> t) : t_(std::move(t)) {}
  int64_t step() const override { return t_->step(); }
  absl::StatusOr<std::map<std::string, float>> Step() override { return t_->Step(); }
  absl::StatusOr<FloatTensor> Preview(bool source) const override { return t_->Preview(source); }
  absl::Status Save(const std::string& path) const override { return t_->SaveCheckpoint(path); }
  absl::Status Restore(const std::string& path) override { return t_->RestoreCheckpoint(path); }
  std::string phase() const override {
    if constexpr (std::is_same_v<T, adapt::OneshotTrainer>) return t_->phase();
    return {};
  }
  const T& get() const { return *t_; }

 private:
  std::unique_ptr<T> t_;
};

class AdaptRunner : public JobRunner {
 public:
  AdaptRunner(ModelRepository* repo, AdaptSpec spec, std::string job_id, std::unique_ptr<adapt::NadaTrainer> t)
      : AdaptRunner(repo, std::move(spec), std::move(job_id)) {
    nada_ = t.get();
    trainer_ = std::make_unique<TrainerOf<adapt::NadaTrainer>>(std::move(t));
  }
  AdaptRunner(ModelRepository* repo, AdaptSpec spec, std::string job_id, std::unique_ptr<adapt::DomainTrainer> t)
      : AdaptRunner(repo, std::move(spec), std::move(job_id)) {
    domain_ = t.get();
    trainer_ = std::make_unique<TrainerOf<adapt::DomainTrainer>>(std::move(t));
  }
  AdaptRunner(ModelRepository* repo, AdaptSpec spec, std::string job_id, std::unique_ptr<adapt::OneshotTrainer> t)
      : AdaptRunner(repo, std::move(spec), std::move(job_id)) {
    oneshot_ = t.get();
    trainer_ = std::make_unique<TrainerOf<adapt::OneshotTrainer>>(std::move(t));
  }

  int64_t total_steps() const override { return spec_.TotalSteps(); }
  int64_t step() const override { return trainer_->step(); }
  std::string phase() const override { return trainer_->phase(); }
  absl::StatusOr<std::map<std::string, float>> Step() override {
    ASSIGN_OR_RETURN(auto losses, trainer_->Step());
    // Snapshots at every snapshot_every-th training step before the last (the last is the
    // result); a one-shot job counts from its fine-tuning.
    const int64_t s = step(), trained = s - spec_.FineTuneStart();
    if (spec_.snapshot_every > 0 && trained > 0 && trained % spec_.snapshot_every == 0 && s < spec_.TotalSteps()) {
      RETURN_IF_ERROR(repo_
                          ->PublishSnapshot(spec_.output_name, job_id_, trained,
                                            [&](const std::string& folder) { return WriteModel(folder, trained); })
                          .status());
    }
    return losses;
  }
  absl::StatusOr<FloatTensor> PreviewImages(bool source) override { return trainer_->Preview(source); }
  absl::Status SaveCheckpoint(const std::string& path) override { return trainer_->Save(path); }
  absl::Status RestoreCheckpoint(const std::string& path) override { return trainer_->Restore(path); }

  absl::StatusOr<std::string> Finish() override {
    RETURN_IF_ERROR(
        repo_->Publish(spec_.output_name, job_id_, [&](const std::string& folder) { return WriteModel(folder, 0); })
            .status());
    return spec_.output_name;
  }

 private:
  AdaptRunner(ModelRepository* repo, AdaptSpec spec, std::string job_id)
      : repo_(repo), spec_(std::move(spec)), job_id_(std::move(job_id)) {}

  // The manifest entries every adapted model has; a snapshot (step > 0) also names its
  // model and step.
  nlohmann::json Manifest(size_t changed_tensors, int64_t parameters, int64_t snapshot_step) const {
    nlohmann::json m = {{"kind", "adapted_generator"},
                        {"base_model", spec_.model},
                        {"domain", spec_.target_text},
                        {"source_text", spec_.source_text},
                        {"target_text", spec_.target_text},
                        {"default_truncation", adapt::NadaOptions{}.preview_truncation},
                        {"job", job_id_},
                        {"trained_parameters", parameters},
                        {"training", TrainingRecord(spec_, changed_tensors)}};
    if (snapshot_step > 0) {
      m["snapshot_of"] = spec_.output_name;
      m["step"] = snapshot_step;
    }
    if (oneshot_ != nullptr) {
      // OneshotCLIP's sampling convention (its test_sample.py): truncation 0.7 toward the
      // source g_ema's w_mean, and w+ rows from mean_rows_from on at w_mean.
      const FloatTensor w_mean = oneshot_->SamplingMeanLatent();
      m["method"] = "one_shot";
      m["domain"] = spec_.target_text.empty() ? "one-shot target image" : spec_.target_text;
      m["default_truncation"] = adapt::kOneshotTruncation;
      m["mean_latent"] = w_mean.data;
      m["mean_rows_from"] = adapt::kOneshotMixIndex;
      m["w_ref"] = oneshot_->ReferenceLatent().data;
    }
    return m;
  }

  absl::Status WriteModel(const std::string& folder, int64_t snapshot_step) {
    if (domain_ != nullptr) return WriteDomain(folder, snapshot_step);
    return WriteDelta(folder, snapshot_step);
  }

  // A lightweight domain: its trained tensors and a manifest naming the kind.
  absl::Status WriteDomain(const std::string& folder, int64_t snapshot_step) {
    const stylegan2::DomainTensors t = domain_->Parameters();
    int64_t parameters = 0;
    for (const auto& [name, v] : t.tensors) parameters += v.numel();
    const std::filesystem::path dir(folder);
    const std::string kind = stylegan2::DomainKindName(t.kind);
    RETURN_IF_ERROR(SaveSafetensors((dir / "domain.safetensors").string(), t.tensors,
                                    {{"base_model", spec_.model}, {"job", job_id_}, {"parameterization", kind}}));
    nlohmann::json m = Manifest(t.tensors.size(), parameters, snapshot_step);
    m["parameterization"] = kind;
    m["domain_file"] = "domain.safetensors";
    return WriteFileAtomic((dir / "manifest.json").string(), m.dump(2) + "\n");
  }

  // A FULL result: the changed tensors (or their differences in half precision).
  absl::Status WriteDelta(const std::string& folder, int64_t snapshot_step) {
    std::map<std::string, FloatTensor> delta = nada_ != nullptr ? nada_->Delta() : oneshot_->Delta();
    int64_t parameters = 0;
    for (const auto& [name, v] : delta) parameters += v.numel();
    const std::filesystem::path dir(folder);
    // Half precision stores differences from the base: rounding a difference loses far
    // less than rounding the weight itself.
    const bool half = spec_.delta_dtype == DeltaDtype::kFloat16 || spec_.delta_dtype == DeltaDtype::kBFloat16;
    if (half) {
      ASSIGN_OR_RETURN(auto base, repo_->GetGenerator(spec_.model));
      const std::map<std::string, FloatTensor> base_sd = base->StateDict();
      for (auto& [name, t] : delta) {
        const FloatTensor& b = base_sd.at(name);
        for (size_t i = 0; i < t.data.size(); ++i) t.data[i] -= b.data[i];
      }
    }
    const DType stored = spec_.delta_dtype == DeltaDtype::kFloat16    ? DType::kFloat16
                         : spec_.delta_dtype == DeltaDtype::kBFloat16 ? DType::kBFloat16
                                                                      : DType::kFloat32;
    RETURN_IF_ERROR(SaveSafetensors((dir / "delta.safetensors").string(), delta,
                                    {{"base_model", spec_.model}, {"job", job_id_}}, stored));
    nlohmann::json m = Manifest(delta.size(), parameters, snapshot_step);
    m["parameterization"] = "full";
    m["delta"] = "delta.safetensors";
    if (half) {
      m["delta_encoding"] = "difference";
      m["delta_dtype"] = spec_.delta_dtype == DeltaDtype::kFloat16 ? "float16" : "bfloat16";
    }
    return WriteFileAtomic((dir / "manifest.json").string(), m.dump(2) + "\n");
  }

  ModelRepository* repo_;
  AdaptSpec spec_;
  std::string job_id_;
  std::unique_ptr<AdaptTrainer> trainer_;
  // The trainer, by kind (exactly one is set).
  const adapt::NadaTrainer* nada_ = nullptr;
  const adapt::DomainTrainer* domain_ = nullptr;
  const adapt::OneshotTrainer* oneshot_ = nullptr;
};

class InvertRunner : public JobRunner {
 public:
  InvertRunner(const ModelRepository* repo, std::unique_ptr<invert::Inverter> p, std::string data_dir, std::string id,
               std::string model, bool pin)
      : repo_(repo),
        p_(std::move(p)),
        data_dir_(std::move(data_dir)),
        id_(std::move(id)),
        model_(std::move(model)),
        pin_(pin) {}
  int64_t total_steps() const override { return p_->total_steps(); }
  int64_t step() const override { return p_->step(); }
  std::string phase() const override { return p_->phase(); }
  absl::StatusOr<std::map<std::string, float>> Step() override { return p_->Step(); }
  absl::StatusOr<FloatTensor> PreviewImages(bool source) override {
    if (source) return p_->Target();
    return p_->Current();
  }
  absl::Status SaveCheckpoint(const std::string& path) override { return p_->SaveCheckpoint(path); }
  absl::Status RestoreCheckpoint(const std::string& path) override { return p_->RestoreCheckpoint(path); }
  absl::StatusOr<std::string> Finish() override {
    ASSIGN_OR_RETURN(invert::Inversion inv, p_->Result());
    RETURN_IF_ERROR(MakeDirs(InversionsDir(data_dir_)));
    ASSIGN_OR_RETURN(std::string path, InversionPath(data_dir_, id_));
    RETURN_IF_ERROR(invert::SaveInversion(path, inv, model_));
    if (pin_) RETURN_IF_ERROR(WriteFileAtomic(InversionPinPath(path), "kept past the job retention\n"));
    RETURN_IF_ERROR(ShareInversion(*repo_, data_dir_, id_));
    return id_;
  }

 private:
  const ModelRepository* const repo_;
  std::unique_ptr<invert::Inverter> p_;
  std::string data_dir_, id_, model_;
  bool pin_ = false;
};

class GlobalStatsRunner : public JobRunner {
 public:
  GlobalStatsRunner(const ModelRepository* repo, std::unique_ptr<edit::GlobalStatsBuilder> b, std::string model,
                    std::string clip)
      : repo_(repo),
        b_(std::move(b)),
        path_(GlobalStatsPath(*repo, model, clip)),
        model_(std::move(model)),
        clip_(std::move(clip)) {}
  int64_t total_steps() const override { return b_->total_steps(); }
  int64_t step() const override { return b_->step(); }
  absl::StatusOr<std::map<std::string, float>> Step() override { return b_->Step(); }
  absl::StatusOr<FloatTensor> PreviewImages(bool source) override {
    if (source) return absl::UnavailableError("no source preview for statistics");
    return b_->Preview();
  }
  absl::Status SaveCheckpoint(const std::string& path) override { return b_->SaveCheckpoint(path); }
  absl::Status RestoreCheckpoint(const std::string& path) override { return b_->RestoreCheckpoint(path); }
  absl::StatusOr<std::string> Finish() override {
    ASSIGN_OR_RETURN(edit::GlobalStats s, b_->Result());
    RETURN_IF_ERROR(MakeDirs(std::filesystem::path(path_).parent_path().string()));
    RETURN_IF_ERROR(edit::SaveGlobalStats(path_, s, model_, clip_));
    RETURN_IF_ERROR(ShareGlobalStats(*repo_, model_, clip_));
    return absl::StrCat(model_, "/", clip_);
  }

 private:
  const ModelRepository* const repo_;
  std::unique_ptr<edit::GlobalStatsBuilder> b_;
  std::string path_, model_, clip_;
};

// A latent mapper: trained on the base generator, published as a repository model
// (kind mapper) under its generator.
class MapperRunner : public JobRunner {
 public:
  MapperRunner(ModelRepository* repo, MapperSpec spec, std::string job_id, std::unique_ptr<edit::MapperTrainer> t)
      : repo_(repo), spec_(std::move(spec)), job_id_(std::move(job_id)), t_(std::move(t)) {}
  int64_t total_steps() const override { return t_->total_steps(); }
  int64_t step() const override { return t_->step(); }
  absl::StatusOr<std::map<std::string, float>> Step() override { return t_->Step(); }
  absl::StatusOr<FloatTensor> PreviewImages(bool source) override { return t_->Preview(source); }
  absl::Status SaveCheckpoint(const std::string& path) override { return t_->SaveCheckpoint(path); }
  absl::Status RestoreCheckpoint(const std::string& path) override { return t_->RestoreCheckpoint(path); }
  absl::StatusOr<std::string> Finish() override {
    RETURN_IF_ERROR(
        repo_->Publish(spec_.output_name, job_id_, [&](const std::string& folder) { return Write(folder); }).status());
    return spec_.output_name;
  }

 private:
  absl::Status Write(const std::string& folder) const {
    const edit::LatentMapper& m = t_->mapper();
    const std::filesystem::path dir(folder);
    RETURN_IF_ERROR(SaveSafetensors((dir / "mapper.safetensors").string(), m.StateDict(),
                                    {{"base_model", spec_.model}, {"job", job_id_}, {"text", spec_.text}}));
    MapperSpec record = spec_;
    record.request_id.clear();
    nlohmann::json training = nlohmann::json::parse(SpecToJson(record));
    training.erase("request_id");
    nlohmann::json groups = nlohmann::json::array();
    if (m.config().type == edit::MapperType::kLevels) {
      if (m.config().coarse) groups.push_back("coarse");
      if (m.config().medium) groups.push_back("medium");
      if (m.config().fine) groups.push_back("fine");
    }
    const nlohmann::json manifest = {{"kind", "mapper"},
                                     {"base_model", spec_.model},
                                     {"domain", spec_.text},
                                     {"target_text", spec_.text},
                                     {"mapper_type", edit::MapperTypeName(m.config().type)},
                                     {"groups", groups},
                                     {"mapper_file", "mapper.safetensors"},
                                     {"job", job_id_},
                                     {"trained_parameters", m.parameter_count()},
                                     {"training", training}};
    return WriteFileAtomic((dir / "manifest.json").string(), manifest.dump(2) + "\n");
  }

  ModelRepository* repo_;
  MapperSpec spec_;
  std::string job_id_;
  std::unique_ptr<edit::MapperTrainer> t_;
};

// A one-shot job: the base's training checkpoint (`g`, `d`; the served `g_ema`), the CLIP
// model, the AlexNet LPIPS and the target image.
absl::StatusOr<std::unique_ptr<JobRunner>> MakeOneshotRunner(ModelRepository* repo, AdaptSpec spec,
                                                             const std::string& job_id) {
  adapt::OneshotModels m;
  ASSIGN_OR_RETURN(m.g_ema, repo->GetGenerator(spec.model));
  ASSIGN_OR_RETURN(TrainingFiles files, repo->TrainingFilesOf(spec.model));
  stylegan2::LoadOptions load;
  load.device = m.g_ema->device();
  load.key = files.g_key;
  ASSIGN_OR_RETURN(m.g, stylegan2::Generator::Load(files.g_path, load));
  ASSIGN_OR_RETURN(m.d, stylegan2::Discriminator::Load(files.d_path, load.device));
  const ClipWeight& c = spec.clip_models.at(0);
  ASSIGN_OR_RETURN(ModelRepository::Clip clip, repo->GetClip(c.name));
  m.clip = {c.name, clip.model, clip.tokenizer, 1.0f};
  ASSIGN_OR_RETURN(m.lpips, repo->FirstAlexLpips());
  ASSIGN_OR_RETURN(Rgb8Image target, DecodeImage(spec.target_images.at(0), RequestImageLimits()));
  adapt::OneshotOptions o;
  o.reference_steps = static_cast<int>(spec.reference_steps);
  if (spec.skip_reference_search) o.w_ref = spec.w_ref;
  o.iterations = static_cast<int>(spec.iterations);
  o.batch_size = static_cast<int>(spec.batch_size);
  o.lr *= spec.lr_scale;
  o.mixing = spec.mixing.value_or(o.mixing);
  o.lambda_const = spec.lambda_const.value_or(o.lambda_const);
  o.lambda_patch = spec.lambda_patch.value_or(o.lambda_patch);
  o.ref_every = static_cast<int>(spec.ref_every);
  o.preview_count = static_cast<int>(spec.preview_count);
  o.seed = static_cast<uint64_t>(spec.seed);
  ASSIGN_OR_RETURN(auto trainer, adapt::OneshotTrainer::Create(std::move(m), target, o));
  return std::unique_ptr<JobRunner>(new AdaptRunner(repo, std::move(spec), job_id, std::move(trainer)));
}

}  // namespace

void RegisterJobRunners(JobEngine* engine, ModelRepository* repo, clip::TextEmbeddingCache* text_cache,
                        const std::string& data_dir) {
  engine->RegisterFactory(
      JobKind::kAdapt, [repo, text_cache](const JobRecord& job) -> absl::StatusOr<std::unique_ptr<JobRunner>> {
        ASSIGN_OR_RETURN(AdaptSpec spec, StoredSpec<AdaptSpec>(job));
        ASSIGN_OR_RETURN(auto base, repo->GetGenerator(spec.model));
        std::vector<adapt::ClipGuide> guides;
        for (const auto& c : spec.clip_models) {
          ASSIGN_OR_RETURN(auto clip, repo->GetClip(c.name));
          guides.push_back({c.name, clip.model, clip.tokenizer, c.weight.value_or(Defaults::kClipWeight)});
        }
        if (spec.method == AdaptMethod::kOneShot) return MakeOneshotRunner(repo, std::move(spec), job.id);
        if (const auto kind = DomainKindOf(spec.parameterization)) {
          ASSIGN_OR_RETURN(auto trainer, adapt::DomainTrainer::Create(base, std::move(guides),
                                                                      DomainOptionsOf(spec, *kind), text_cache));
          return std::unique_ptr<JobRunner>(new AdaptRunner(repo, std::move(spec), job.id, std::move(trainer)));
        }
        adapt::NadaOptions o = NadaOptionsOf(spec);
        for (const auto& bytes : spec.target_images) {
          ASSIGN_OR_RETURN(Rgb8Image img, DecodeImage(bytes, RequestImageLimits()));
          o.target_images.push_back(std::move(img));
        }
        ASSIGN_OR_RETURN(auto trainer, adapt::NadaTrainer::Create(base, std::move(guides), o, text_cache));
        return std::unique_ptr<JobRunner>(new AdaptRunner(repo, std::move(spec), job.id, std::move(trainer)));
      });
  engine->RegisterFactory(
      JobKind::kInvert, [repo, data_dir](const JobRecord& job) -> absl::StatusOr<std::unique_ptr<JobRunner>> {
        ASSIGN_OR_RETURN(InvertSpec spec, StoredSpec<InvertSpec>(job));
        ASSIGN_OR_RETURN(auto gen, repo->GetGenerator(spec.model));
        ASSIGN_OR_RETURN(Rgb8Image img, DecodeImage(spec.image, RequestImageLimits()));
        if (!spec.landmarks.empty()) {
          // FFHQ alignment (e4e's align_face) straight to the model's resolution.
          invert::FaceAlignOptions align;
          align.output_size = align.transform_size = gen->config().resolution;
          ASSIGN_OR_RETURN(invert::AlignedFace face, invert::AlignFace(img, invert::PointsOf(spec.landmarks), align));
          img = std::move(face.image);
        }
        // LPIPS when the repository has it (rosinality's loss); else a CLIP model adds an
        // image-embedding loss to MSE: the StyleCLIP default when installed, else the first
        // ready one (this loss is ours, not StyleCLIP's, so any CLIP serves).
        std::shared_ptr<const lpips::Lpips> lpips = repo->FirstLpips();
        std::shared_ptr<const clip::ClipModel> clip;
        std::string clip_name = ResolveClipModel(*repo, "").value_or("");
        for (const auto& m : repo->List()) {
          if (!clip_name.empty()) break;
          if (m.kind == ModelKind::kClip && IsUsable(m.state)) clip_name = m.name;
        }
        if (auto c = repo->GetClip(clip_name); !clip_name.empty() && c.ok()) clip = c->model;
        invert::ProjectorOptions o;
        o.steps = static_cast<int>(spec.method == InvertMethod::kEncoder ? spec.refine_steps : spec.steps);
        o.lr = spec.lr;
        o.noise_regularize = spec.noise_regularize.value_or(o.noise_regularize);
        o.mse = spec.mse > 0 ? spec.mse : (lpips != nullptr ? 0.0f : 1.0f);
        o.w_plus = spec.space != LatentSpace::kW;
        o.seed = static_cast<uint64_t>(spec.seed);
        std::unique_ptr<invert::Inverter> inverter;
        if (spec.method == InvertMethod::kEncoder) {
          ASSIGN_OR_RETURN(auto encoder, repo->GetEncoder(spec.encoder));
          ASSIGN_OR_RETURN(inverter, invert::EncoderInverter::Create(encoder, gen, img, o, clip, lpips));
        } else {
          ASSIGN_OR_RETURN(inverter, invert::Projector::Create(gen, img, o, clip, lpips));
        }
        return std::unique_ptr<JobRunner>(
            new InvertRunner(repo, std::move(inverter), data_dir, InversionIdForJob(job.id), spec.model, spec.pin));
      });
  engine->RegisterFactory(
      JobKind::kEditStats, [repo](const JobRecord& job) -> absl::StatusOr<std::unique_ptr<JobRunner>> {
        ASSIGN_OR_RETURN(GlobalStatsSpec spec, StoredSpec<GlobalStatsSpec>(job));
        ASSIGN_OR_RETURN(auto gen, repo->GetGenerator(spec.model));
        ASSIGN_OR_RETURN(ModelRepository::Clip clip, repo->GetClip(spec.clip_model));
        ASSIGN_OR_RETURN(auto builder, edit::GlobalStatsBuilder::Create(gen, clip.model, GlobalStatsOptionsOf(spec)));
        return std::unique_ptr<JobRunner>(new GlobalStatsRunner(repo, std::move(builder), spec.model, spec.clip_model));
      });
  engine->RegisterFactory(
      JobKind::kTrainMapper,
      [repo, text_cache, data_dir](const JobRecord& job) -> absl::StatusOr<std::unique_ptr<JobRunner>> {
        ASSIGN_OR_RETURN(MapperSpec spec, StoredSpec<MapperSpec>(job));
        ASSIGN_OR_RETURN(auto gen, repo->GetGenerator(spec.model));
        ASSIGN_OR_RETURN(ModelRepository::Clip clip, repo->GetClip(spec.clip_model));
        ASSIGN_OR_RETURN(FloatTensor text,
                         text_cache->Encode(spec.clip_model, *clip.model, *clip.tokenizer, {spec.text}));
        text.shape = {text.shape[1]};
        // Training latents: the stored inversions' w+, or random ones drawn by the trainer.
        FloatTensor latents;
        for (const std::string& id : spec.inversion_ids) {
          ASSIGN_OR_RETURN(StoredInversion inv, LoadInversionFor(data_dir, id, *repo, spec.model, false));
          if (latents.data.empty()) latents.shape = {0, inv.wplus.shape[1], inv.wplus.shape[2]};
          latents.shape[0] += 1;
          latents.data.insert(latents.data.end(), inv.wplus.data.begin(), inv.wplus.data.end());
        }
        const edit::MapperTrainerOptions options = MapperOptionsOf(spec);
        std::shared_ptr<const arcface::ArcFace> face;
        if (options.id_lambda > 0) {
          ASSIGN_OR_RETURN(face, repo->FirstArcFace());
        }
        ASSIGN_OR_RETURN(auto trainer, edit::MapperTrainer::Create(gen, clip.model, text, latents, options, face));
        return std::unique_ptr<JobRunner>(new MapperRunner(repo, std::move(spec), job.id, std::move(trainer)));
      });
}

}  // namespace ganserve::core::service
