// StyleGAN-NADA domain adaptation (Gal et al. 2021), as the official code does it
// (reference/nada.md section 1): a frozen and a trainable copy of one generator, w from
// the frozen mapping network, a directional CLIP loss against a text direction averaged
// over 79 prompt templates, optional global and manifold-angle losses, adaptive layer
// freezing, Adam with the reference's learning rate and betas. Torch-free interface.
#ifndef GANSERVE_CORE_ADAPT_NADA_TRAINER_H_
#define GANSERVE_CORE_ADAPT_NADA_TRAINER_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "core/io/image_codec.h"
#include "core/models/clip/clip_model.h"
#include "core/models/clip/text_embedding_cache.h"
#include "core/models/clip/tokenizer.h"
#include "core/models/stylegan2/generator.h"
#include "core/util/tensor_data.h"

namespace ganserve::core::adapt {

struct ClipGuide {
  std::string name;  // repository name, the text-cache key
  std::shared_ptr<const clip::ClipModel> model;
  std::shared_ptr<const clip::Tokenizer> tokenizer;
  float weight = 1.0f;
};

// Trainable layer sets when adaptive selection is off (the reference's `--phase`):
// kDefault: input, conv1, every conv; kAll: also the ToRGBs; kTexture: input, conv1,
// convs[2:10]; kShape: input, conv1, convs[0:2]; kNoFine: input, conv1, convs[0:10];
// kShapeExpanded: input, conv1, convs[0:3].
enum class LayerPreset { kDefault, kAll, kTexture, kShape, kNoFine, kShapeExpanded };
// How a selected w+ index maps to a layer.
enum class LayerMapping {
  kConsumer,  // the layer that consumes w[i]: conv1 for 0, convs[i-1], the last ToRGB for the last index
  kOfficial,  // the reference's list [conv1, to_rgb1, convs...], one place off (reproduces published runs)
};

// How Adam counts its steps under adaptive layer selection.
enum class AdamSteps {
  // The reference under PyTorch 1.x (its pinned 1.7, also 1.13): the selection pass gives
  // every synthesis parameter a gradient that zero_grad() zeroes but keeps, so Adam steps
  // every parameter each iteration; the shared count drives bias correction and v decays
  // for unselected layers. A layer first selected at step t moves sqrt((1-b2^t)/(1-b2))
  // times further than under kPerParameter (3.1x at t=10, 8.3x at t=100).
  kShared,
  // PyTorch >= 2.0 (zero_grad sets gradients to None): a parameter's count advances only
  // on the steps that train it.
  kPerParameter,
};

struct NadaOptions {
  std::string source_text = "photo";
  std::string target_text;
  // Image-guided mode (the reference's style-image variant): the direction is the mean
  // CLIP embedding of these images minus that of 16 generated samples. target_text may
  // then be empty, but adaptive layer selection and the global/manifold losses need it.
  std::vector<Rgb8Image> target_images;
  int iterations = 300;
  int batch_size = 2;
  float lr = 0.002f * 0.8f;  // the reference's lr * g_reg_ratio
  float mixing = 0.0f;       // probability of a two-latent (mixed) batch
  int auto_layer_k = 0;      // 0: no selection, train the preset
  int auto_layer_iters = 1;
  int auto_layer_batch = 8;
  LayerMapping layer_mapping = LayerMapping::kConsumer;
  LayerPreset layer_preset = LayerPreset::kDefault;
  AdamSteps adam_steps = AdamSteps::kShared;
  float lambda_direction = 1.0f;
  float lambda_global = 0.0f;
  float lambda_manifold = 0.0f;
  int preview_count = 4;
  float preview_truncation = 0.7f;
  uint64_t seed = 0;
};

// Not thread-safe: one job drives it, one step at a time, on its device's executor.
class NadaTrainer {
 public:
  // InvalidArgument for empty target text, no CLIP models, or options out of range.
  static absl::StatusOr<std::unique_ptr<NadaTrainer>> Create(const std::shared_ptr<const stylegan2::Generator>& base,
                                                             std::vector<ClipGuide> clips, const NadaOptions& options,
                                                             clip::TextEmbeddingCache* text_cache);
  ~NadaTrainer();

  // One training iteration. Returns the loss terms ("total", "direction", and
  // "global"/"manifold" when their lambdas are set).
  absl::StatusOr<std::map<std::string, float>> Step();
  int64_t step() const;
  // The directional loss on a fixed batch drawn from `seed` (same latents and noise
  // every call), without updating anything: a low-noise measure of progress.
  absl::StatusOr<float> EvalDirectionLoss(uint64_t seed, int batch) const;
  const NadaOptions& options() const;
  // The layer units ("conv1", "convs.3", ...) the last step trained.
  const std::vector<std::string>& last_trained_layers() const;
  // The style-mixing crossovers of the last step for the frozen and the trainable
  // generator (each draws its own, as the reference's two generators do); 0 when the
  // step did not mix.
  std::pair<int, int> last_inject_indices() const;

  // The fixed preview grid ([P, 3, H, W], raw output) through the frozen (source) or the
  // trainable generator, truncation `preview_truncation`, stored noise.
  absl::StatusOr<FloatTensor> Preview(bool frozen) const;

  // Renders w+ latents [N, n_latent, style_dim] through the trainable generator with the
  // stored noise maps (what the adapted model will render).
  absl::StatusOr<FloatTensor> Render(const FloatTensor& wplus) const;

  // The tensors training changed, by state-dict name, in checkpoint units (raw
  // parameters, as rosinality stores them). Overlaid on the base they give the adapted
  // generator.
  std::map<std::string, FloatTensor> Delta() const;

  // Resumable state (changed parameters, Adam moments, step) as safetensors, written
  // atomically; Restore loads it into a trainer created with the same options.
  absl::Status SaveCheckpoint(const std::string& path) const;
  absl::Status RestoreCheckpoint(const std::string& path);

  // The text direction of one CLIP model ([embed_dim], unit length), for tests.
  absl::StatusOr<FloatTensor> TextDirection(size_t clip_index) const;

  struct State;

 private:
  explicit NadaTrainer(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

// Adaptive layer selection's ranking: w+ rows ordered by mean |w - w0| over the batch
// and the style dimension, largest first; the first k. w0, w: [B, n_latent, style_dim].
std::vector<int> RankLatentIndices(const FloatTensor& w0, const FloatTensor& w, int k);

// The trainable layer units of a preset for a generator with `n_convs` convs.
std::vector<std::string> PresetLayers(LayerPreset preset, int n_convs);
// The unit a selected w+ index trains under `mapping`, for a generator with n_latent rows.
std::string LayerForLatentIndex(int index, int n_latent, LayerMapping mapping);

}  // namespace ganserve::core::adapt

#endif  // GANSERVE_CORE_ADAPT_NADA_TRAINER_H_
