// GenerateSamples and Edit as plans: a validated spec resolved against the repository
// (generators, starting latents, text directions) into immutable plans whose batches
// the render batcher draws, and the rendered images encoded for any edge.
#ifndef GANSERVE_CORE_SERVICE_RENDER_H_
#define GANSERVE_CORE_SERVICE_RENDER_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/edit/latent_optimizer.h"
#include "core/models/clip/text_embedding_cache.h"
#include "core/models/stylegan2/generator.h"
#include "core/registry/model_repository.h"
#include "core/service/specs.h"
#include "core/service/storage.h"

namespace ganserve::core::service {

// How rendered images are encoded.
struct EncodeOptions {
  ImageFormat format = ImageFormat::kPng;
  int jpeg_quality = 90;
  bool return_latents = false;
};

// One rendered image and what made it.
struct RenderedImage {
  std::string data;  // PNG or JPEG bytes; empty for kRawFloat
  ImageFormat format = ImageFormat::kPng;
  int width = 0, height = 0;
  int64_t seed = -1;   // -1 when not from a seed
  int index = 0;       // within the request
  FloatTensor latent;  // w+ [1, n_latent, style_dim] when asked for
  FloatTensor raw;     // kRawFloat: [1, 3, H, W]
};

// Latent optimization progress.
struct EditProgress {
  int input = 0;
  int step = 0;
  int total_steps = 0;
  std::map<std::string, float> losses;
};

// One streamed message of GenerateSamples / Edit.
struct ImageBatchResult {
  std::vector<RenderedImage> images;
  int done = 0;   // images sent including these
  int total = 0;  // images the request produces
  std::string model;
  int channels_moved = 0;  // global-direction edits
  std::optional<EditProgress> progress;
};

// One batch of a stream: the generator call, and how its result becomes a message.
struct BatchWork {
  std::shared_ptr<const stylegan2::Generator> generator;
  stylegan2::GenerateParams params;
  std::string model;           // reported in the message
  int total = 0;               // images in the whole request
  int start = 0;               // index of the first image of this batch
  std::vector<int64_t> seeds;  // per image, -1 when not from a seed
  EncodeOptions encode;
  int channels_moved = 0;
};

// Encodes a batch's rendered result into its message.
absl::StatusOr<ImageBatchResult> EncodeBatch(const BatchWork& work, const stylegan2::GenerateResult& result);

// A validated GenerateSamples spec, resolved. Immutable.
struct GeneratePlan {
  std::string model;
  std::shared_ptr<const stylegan2::Generator> generator;
  int total = 0;
  int batch_size = 0;
  std::vector<uint32_t> seeds;  // per image (seed mode), or empty for caller latents
  stylegan2::LatentSpace space = stylegan2::LatentSpace::kZ;
  FloatTensor latents;                  // caller latents or an inversion, [total, ...]
  std::vector<FloatTensor> noise_maps;  // an inversion's optimised noise (one image)
  float truncation = 1.0f;
  stylegan2::NoiseMode noise = stylegan2::NoiseMode::kConst;
  std::vector<uint32_t> mix_seeds;
  int inject_index = 0;
  int mean_rows_from = 0;  // GenerateParams::mean_rows_from (z input only)
  EncodeOptions encode;
};

// Validates `spec` and resolves it. The spec's errors, or NotFound / FailedPrecondition
// for an inversion that is missing or made with another model.
absl::StatusOr<GeneratePlan> PlanGenerate(GenerateSpec spec, const ModelRepository& repo, const Limits& limits,
                                          const std::string& data_dir);
// The generator input for images [start, start + count).
BatchWork PrepareGenerateBatch(const GeneratePlan& plan, int start, int count);

// What text edits need besides the repository. Not owned; null disables text edits.
struct EditResources {
  clip::TextEmbeddingCache* text_cache = nullptr;
  GlobalStatsCache* stats = nullptr;
};

// Direction, global-direction and mapper edits: strengths of a direction swept over inputs.
struct EditPlan {
  std::string render_model;
  std::shared_ptr<const stylegan2::Generator> render;
  // Starting points in the edit space: [N, n_latent, sd] (w+) or [N, s_dim] (S).
  FloatTensor base;
  stylegan2::LatentSpace space = stylegan2::LatentSpace::kWPlus;
  FloatTensor direction;  // one row of the edit space, or one per input (mapper residuals)
  std::vector<float> strengths;
  std::vector<int64_t> seeds;  // per input, -1 when not from a seed
  int total = 0;               // inputs x strengths; image k = input k / S, strength k % S
  int batch_size = 8;
  EncodeOptions encode;
  stylegan2::NoiseMode noise = stylegan2::NoiseMode::kConst;
  std::vector<FloatTensor> noise_maps;
  int channels_moved = 0;
};
// Runs on the device executor (maps latents, may encode text).
absl::StatusOr<EditPlan> PlanEdit(EditSpec spec, const ModelRepository& repo, const Limits& limits,
                                  const std::string& data_dir, const EditResources& resources);
BatchWork PrepareEditBatch(const EditPlan& plan, int start, int count);

// StyleCLIP latent optimization: each input's w+ optimised toward the text, then rendered.
struct OptimizePlan {
  std::string render_model;
  std::shared_ptr<const stylegan2::Generator> render;
  std::shared_ptr<const clip::ClipModel> clip;
  std::shared_ptr<const arcface::ArcFace> arcface;  // the identity loss's, when id_lambda > 0
  FloatTensor starts;                               // [N, n_latent, sd]
  std::vector<int64_t> seeds;
  std::vector<FloatTensor> noise_maps;
  FloatTensor text_embedding;  // [embed_dim]
  edit::LatentOptimizationOptions options;
  int progress_every = 10;
  EncodeOptions encode;
};
absl::StatusOr<OptimizePlan> PlanOptimize(EditSpec spec, const ModelRepository& repo, const Limits& limits,
                                          const std::string& data_dir, const EditResources& resources);

// Drives an OptimizePlan one Adam step at a time. Not thread-safe: one request drives
// it on the device executor.
class OptimizeSession {
 public:
  explicit OptimizeSession(std::shared_ptr<const OptimizePlan> plan) : plan_(std::move(plan)) {}
  // One step of the current input. Returns a message to send (progress every few
  // steps; an input's rendered result with its final losses) or nullopt.
  absl::StatusOr<std::optional<ImageBatchResult>> Step();
  bool done() const { return input_ >= inputs(); }
  int input() const { return input_; }
  int inputs() const { return static_cast<int>(plan_->starts.shape[0]); }

 private:
  std::shared_ptr<const OptimizePlan> plan_;
  std::unique_ptr<edit::LatentOptimizer> opt_;
  int input_ = 0;
};

}  // namespace ganserve::core::service

#endif  // GANSERVE_CORE_SERVICE_RENDER_H_
