// The operations of ganserve as plain, transport-free specs. Every edge (gRPC, HTTP,
// `ganctl local`) translates its request into one of these; `Validate` then holds every
// range and every default of that operation, written once. Job records store specs as
// JSON (SpecToJson / SpecFromJson), and adapted-model manifests record the AdaptSpec.
//
// Convention, as in the API: a zero or empty value means "the default" wherever a
// default exists, except for settings whose zero is meaningful (a loss weight, the
// mixing probability): those are std::optional, unset = the default. Integral fields are 64-bit, so a value read from
// JSON is never truncated before its range is checked. The default of an algorithm setting is its options struct's
// value (core/adapt, core/invert, core/edit: the reference implementations' values); request-level defaults are set in
// Validate.
//
// Enums mirror the API's numbering (0 = unspecified) so an edge can cast; a number the
// API does not know is refused by Validate.
#ifndef GANSERVE_CORE_SERVICE_SPECS_H_
#define GANSERVE_CORE_SERVICE_SPECS_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/io/image_codec.h"
#include "core/models/stylegan2/generator.h"
#include "core/util/tensor_data.h"

namespace ganserve::core {
class ModelRepository;
namespace edit {
struct GlobalStatsOptions;
struct MapperTrainerOptions;
}  // namespace edit
namespace stylegan2 {
struct GeneratorConfig;
}  // namespace stylegan2
}  // namespace ganserve::core

namespace ganserve::core::service {

enum class LatentSpace : int { kUnspecified = 0, kZ = 1, kW = 2, kWPlus = 3, kS = 4 };
// How InvertImage inverts (proto InvertMethod); unspecified = optimisation.
enum class InvertMethod : int { kUnspecified = 0, kOptimization = 1, kEncoder = 2 };
enum class ImageFormat : int { kUnspecified = 0, kPng = 1, kJpeg = 2, kRawFloat = 3 };
enum class NoiseMode : int { kUnspecified = 0, kConst = 1, kRandom = 2, kNone = 3 };
enum class LayerPreset : int {
  kUnspecified = 0,
  kDefault = 1,
  kAll = 2,
  kTexture = 3,
  kShape = 4,
  kNoFine = 5,
  kShapeExpanded = 6
};
enum class LayerMapping : int { kUnspecified = 0, kConsumer = 1, kOfficial = 2 };
enum class AdamSteps : int { kUnspecified = 0, kShared = 1, kPerParameter = 2 };
enum class ChannelClamping : int { kUnspecified = 0, kCumulative = 1, kIndependent = 2 };
// How an adapted model's delta is stored: float32 values, or float16 / bfloat16
// differences from the base.
enum class DeltaDtype : int { kUnspecified = 0, kFloat32 = 1, kFloat16 = 2, kBFloat16 = 3 };
// The adaptation method (proto AdaptMethod).
enum class AdaptMethod : int { kUnspecified = 0, kNada = 1, kOneShot = 2 };
// What an adaptation trains (proto Parameterization).
enum class Parameterization : int {
  kUnspecified = 0,
  kFull = 1,
  kDomainModulation = 2,
  kStyleSpaceDirection = 3,
  kAffineLight = 4
};
// The lightweight domain kind of a parameterization; nullopt for FULL.
std::optional<stylegan2::DomainKind> DomainKindOf(Parameterization p);
// The parameterization a model manifest names ("full", "domain_modulation", ...);
// kUnspecified for anything else (and for models that are not adapted).
Parameterization ParameterizationNamed(const std::string& name);

// Request-level defaults, for the specs and for clients that show them. Algorithm
// settings default to their options structs' values (core/adapt, core/invert, core/edit).
struct Defaults {
  static constexpr int kGenerateBatch = 8;  // images per streamed message
  static constexpr int kJpegQuality = 90;
  static constexpr float kGlobalAlpha = 4.0f;  // global-direction strength (the reference notebook's)
  static constexpr float kGlobalBeta = 0.15f;  // disentanglement threshold (the reference notebook's)
  static constexpr int kListPageSize = 50;
  // Job priorities: queued jobs are claimed highest first, then oldest first.
  static constexpr int kMinPriority = -10;
  static constexpr int kMaxPriority = 10;
  // Most snapshots one adaptation job may keep (each is a full delta on disk).
  static constexpr int64_t kMaxSnapshots = 50;
  static constexpr float kLrScale = 1.0f;
  static constexpr float kClipWeight = 1.0f;
  // StyleCLIP's CLIP model (ViT-B/32) under the name scripts/fetch-weights.sh installs.
  static constexpr char kStyleClipClipModel[] = "clip-vit-b-32";
  // What an unspecified enum setting means.
  static constexpr LayerMapping kLayerMapping = LayerMapping::kConsumer;
  static constexpr LayerPreset kLayerPreset = LayerPreset::kDefault;
  static constexpr AdamSteps kAdamSteps = AdamSteps::kShared;                 // the official code on PyTorch 1.x
  static constexpr ChannelClamping kClamping = ChannelClamping::kCumulative;  // the official SingleChannel.py
};

// Server-wide limits that specs are checked against. The server's flags set them.
struct Limits {
  // Images one GenerateSamples / Edit call may produce.
  int max_images_per_request = 1024;
  // Largest images-per-message a GenerateSamples call may ask for.
  int max_batch_size = 64;
  // Largest message (request or streamed batch) in MiB.
  int max_message_mb = 32;
  // Largest file ImportModel accepts, MiB (an FFHQ 1024 px training checkpoint is ~380).
  int max_import_mb = 4096;
};

// A latent sent by the caller: its space and a [N, ...] tensor, unchecked until Validate.
struct LatentInput {
  LatentSpace space = LatentSpace::kUnspecified;
  FloatTensor values;
};

struct ClipWeight {
  std::string name;
  std::optional<float> weight;  // [0, 10]; unset = 1; 0 = out of the loss
};

// AdaptDomain: StyleGAN-NADA from text or example images.
struct AdaptSpec {
  std::string request_id;
  std::string model;
  std::string output_name;
  std::string source_text;
  std::string target_text;
  std::vector<std::string> target_images;  // encoded PNG / JPEG
  std::vector<ClipWeight> clip_models;
  int64_t iterations = 0;
  int64_t batch_size = 0;
  float lr_scale = 0;
  std::optional<float> mixing;
  int64_t auto_layer_k = 0;
  int64_t auto_layer_iters = 0;
  int64_t auto_layer_batch = 0;
  LayerMapping layer_mapping = LayerMapping::kUnspecified;
  LayerPreset layer_preset = LayerPreset::kUnspecified;
  float lambda_global = 0;
  float lambda_manifold = 0;
  std::optional<float> lambda_direction;
  AdamSteps adam_steps = AdamSteps::kUnspecified;
  int64_t preview_every = 0;
  int64_t preview_count = 0;
  int64_t seed = 0;
  int64_t max_run_seconds = 0;
  int64_t priority = 0;  // claim order, higher first (Defaults::kMin/MaxPriority)
  ImageFormat preview_format = ImageFormat::kUnspecified;
  int64_t snapshot_every = 0;  // 0 = no snapshots
  DeltaDtype delta_dtype = DeltaDtype::kUnspecified;
  Parameterization parameterization = Parameterization::kUnspecified;
  std::optional<float> lambda_indomain;
  std::string notify_url;  // webhook for the job's end; empty = none
  AdaptMethod method = AdaptMethod::kUnspecified;
  // ONE_SHOT (proto OneShotSettings).
  int64_t reference_steps = 0;
  bool skip_reference_search = false;
  std::vector<float> w_ref;
  std::optional<float> lambda_const;
  std::optional<float> lambda_patch;
  int64_t ref_every = 0;

  // Checks every field against its range and the repository and fills the defaults.
  // INVALID_ARGUMENT / NOT_FOUND / FAILED_PRECONDITION / ALREADY_EXISTS naming the field.
  absl::Status Validate(const ModelRepository& repo);
  // Training steps of a validated spec (a one-shot job's reference search included).
  int64_t TotalSteps() const {
    return method == AdaptMethod::kOneShot && !skip_reference_search ? reference_steps + iterations : iterations;
  }
  // The first step of a one-shot job's fine-tuning (0 for NADA).
  int64_t FineTuneStart() const { return TotalSteps() - iterations; }
};

// InvertImage: projection of one photo into w or w+.
struct InvertSpec {
  std::string request_id;
  std::string model;
  std::string image;  // encoded PNG / JPEG
  bool aligned = false;
  std::vector<float> landmarks;  // x0, y0, x1, y1, ...: 5 or 68 points, or none
  bool align = false;            // detect the landmarks (Validate fills `landmarks` with the largest face's)
  LatentSpace space = LatentSpace::kUnspecified;  // W or W+; unspecified = W+
  int64_t steps = 0;
  float lr = 0;
  std::optional<float> noise_regularize;
  float mse = 0;
  int64_t preview_every = 0;
  int64_t seed = 0;
  int64_t max_run_seconds = 0;
  int64_t priority = 0;  // claim order, higher first (Defaults::kMin/MaxPriority)
  bool pin = false;      // kept past the job retention
  std::string notify_url;
  InvertMethod method = InvertMethod::kUnspecified;
  std::string encoder;       // kEncoder: the encoder model (resolved by Validate when empty)
  int64_t refine_steps = 0;  // kEncoder: projector steps after the encoder

  // Also FAILED_PRECONDITION when the encoder method finds no encoder for the model, or
  // `align` finds no landmarks model.
  absl::Status Validate(const ModelRepository& repo);
  int64_t TotalSteps() const { return method == InvertMethod::kEncoder ? 1 + refine_steps : steps; }

 private:
  absl::Status CheckEncoder(const ModelRepository& repo);
};

// PrepareGlobalDirections: StyleCLIP global-direction statistics of one generator.
struct GlobalStatsSpec {
  std::string request_id;
  std::string model;
  std::string clip_model;
  int64_t num_samples = 0;
  int64_t num_images = 0;
  int64_t batch_size = 0;
  int64_t preview_every = 0;
  int64_t max_run_seconds = 0;
  int64_t priority = 0;  // claim order, higher first (Defaults::kMin/MaxPriority)
  bool recompute = false;
  ChannelClamping clamping = ChannelClamping::kUnspecified;
  std::optional<int64_t> truncation_cutoff;  // unset = every w+ row
  int64_t render_resolution = 0;             // 0 = full images
  std::string notify_url;

  // Also ALREADY_EXISTS when the statistics exist and `recompute` is not set.
  absl::Status Validate(const ModelRepository& repo);
  // The job's steps for a validated spec (0 if the model is gone).
  int64_t TotalSteps(const ModelRepository& repo) const;
};

// TrainMapper: a StyleCLIP latent mapper of one base generator for one text prompt.
enum class MapperKind : int { kUnspecified = 0, kLevels = 1, kSingle = 2 };
struct MapperSpec {
  std::string request_id;
  std::string model;
  std::string output_name;  // empty = derived from the text
  std::string text;
  MapperKind mapper_type = MapperKind::kUnspecified;  // unspecified = LEVELS
  bool no_coarse = false, no_medium = false, no_fine = false;
  int64_t steps = 0;
  float lr = 0;
  int64_t batch_size = 0;
  std::optional<float> clip_lambda;
  std::optional<float> latent_l2_lambda;
  std::optional<float> id_lambda;          // unset = the official 0.1 (needs an ArcFace model)
  std::vector<std::string> inversion_ids;  // training latents; empty = random ones
  int64_t train_latents = 0;
  std::string clip_model;
  int64_t preview_every = 0;
  int64_t preview_count = 0;
  int64_t seed = 0;
  int64_t max_run_seconds = 0;
  int64_t priority = 0;  // claim order, higher first (Defaults::kMin/MaxPriority)
  std::string notify_url;

  // FAILED_PRECONDITION naming the weights when the identity loss is on (the default)
  // and the repository has no ArcFace model.
  absl::Status Validate(const ModelRepository& repo, const std::string& data_dir);
  int64_t TotalSteps() const { return steps; }
};
// The trainer's options of a validated spec (the training latents aside).
edit::MapperTrainerOptions MapperOptionsOf(const MapperSpec& s);

// GenerateSamples.
struct GenerateSpec {
  std::string model;
  // Exactly one source of latents.
  std::vector<int64_t> seeds;
  int64_t count = 0;
  int64_t base_seed = 0;
  std::optional<LatentInput> latents;
  std::string inversion_id;
  int64_t batch_size = 0;
  std::optional<float> truncation;  // unset = the model's default
  NoiseMode noise = NoiseMode::kUnspecified;
  std::vector<int64_t> mix_seeds;
  int64_t inject_index = 0;
  ImageFormat format = ImageFormat::kUnspecified;
  int64_t jpeg_quality = 0;
  bool return_latents = false;
  // z input: w+ rows from this index on at the mean latent; unset = the model's default
  // (OneshotCLIP models: 11), 0 = off.
  std::optional<int64_t> mean_rows_from;

  absl::Status Validate(const ModelRepository& repo, const Limits& limits);
  // The same checks against a generator's configuration (for callers without a
  // repository, e.g. `ganctl local generate`); `model` is not looked up.
  absl::Status ValidateFor(const stylegan2::GeneratorConfig& cfg, const Limits& limits);
};

struct GlobalDirectionSpec {
  std::string neutral_text;
  std::string target_text;
  std::vector<float> alphas;
  float beta = 0;
  std::string clip_model;
};

struct LatentOptimizationSpec {
  std::string target_text;
  int64_t steps = 0;
  float lr = 0;
  std::optional<float> l2_lambda;
  float id_lambda = 0;
  std::string clip_model;
};

struct DirectionSpec {
  LatentInput direction;
  std::vector<float> strengths;
};

// A trained latent mapper applied to the inputs: w + 0.1 * strength * mapper(w).
struct MapperEditSpec {
  std::string mapper;
  std::vector<float> strengths;  // empty = [1]
};

// Edit: exactly one of the methods.
struct EditSpec {
  std::string model;
  std::string render_model;  // empty = model
  std::vector<int64_t> seeds;
  std::optional<LatentInput> latents;
  std::string inversion_id;
  std::optional<float> truncation;
  std::optional<GlobalDirectionSpec> global_direction;
  std::optional<LatentOptimizationSpec> latent_optimization;
  std::optional<DirectionSpec> direction;
  std::optional<MapperEditSpec> mapper;
  ImageFormat format = ImageFormat::kUnspecified;
  bool return_latents = false;
  NoiseMode noise = NoiseMode::kUnspecified;

  // Ranges and defaults of the fields; the inputs are checked against the model when
  // the edit is planned. Latent optimization takes at most kMaxOptimizedInputs inputs.
  absl::Status Validate(const ModelRepository& repo, const Limits& limits);
  // Edits each input renders (strengths of a sweep; 1 for latent optimization).
  int StrengthCount() const;
};
inline constexpr int kMaxOptimizedInputs = 4;

// Job queries.
struct ListJobsSpec {
  int64_t kind = 0;   // core::JobKind value; 0 = any
  int64_t state = 0;  // core::JobState value; 0 = any
  int64_t page_size = 0;
  std::string page_token;

  absl::Status Validate();
};

struct WatchJobSpec {
  std::string id;
  int64_t after_seq = 0;
  bool skip_preview_replay = false;

  absl::Status Validate();
};

// A job id as callers send it: 1..128 characters. INVALID_ARGUMENT otherwise.
absl::Status ValidateJobId(const std::string& id);
// A model name as callers send it (field names it in the message).
absl::Status ValidateModelName(const std::string& name, const char* field = "name");
// A model name or a training snapshot (MODEL@STEP): what reads of a model accept.
absl::Status ValidateModelRef(const std::string& name, const char* field = "name");
// A model-kind filter: a core::ModelKind value, 0 = any.
absl::Status ValidateModelKindFilter(int kind);

// The limits on images inside requests (decoded before a job is queued).
DecodeLimits RequestImageLimits();
// The tensor contract of caller latents and directions: 1 to 4 dimensions, each >= 1,
// as many values as the shape says (at most `max_elements`), all finite.
absl::Status CheckLatentTensor(const FloatTensor& t, const std::string& field, int64_t max_elements);
// The statistics builder's options of a validated spec.
edit::GlobalStatsOptions GlobalStatsOptionsOf(const GlobalStatsSpec& s);

// JSON forms, as job records and manifests store them (and JSON edges read them):
// member names as keys, enums as lower-case names, optional fields null when unset,
// binary fields base64. FromJson refuses documents that are not objects or whose fields
// have the wrong types with DATA_LOSS (stored data is bad; an edge reading a client's
// document reports INVALID_ARGUMENT instead).
std::string SpecToJson(const AdaptSpec& s);
std::string SpecToJson(const InvertSpec& s);
std::string SpecToJson(const GlobalStatsSpec& s);
std::string SpecToJson(const MapperSpec& s);
std::string SpecToJson(const GenerateSpec& s);
std::string SpecToJson(const EditSpec& s);
template <typename Spec>
absl::StatusOr<Spec> SpecFromJson(const std::string& json);

// A digest of a spec's payload (everything but request_id), for idempotent retries.
template <typename Spec>
std::string SpecHash(const Spec& s);

}  // namespace ganserve::core::service

#endif  // GANSERVE_CORE_SERVICE_SPECS_H_
