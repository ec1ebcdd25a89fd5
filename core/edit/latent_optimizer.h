// StyleCLIP latent optimization (Patashnik et al. 2021, section 4), as the official
// run_optimization.py does it in edit mode: w+ optimized with Adam under the projector's
// learning-rate ramp; loss = (1 - CLIP similarity of the image and the target text)
// + l2_lambda * sum((w+ - w+_start)^2). The image reaches CLIP as the reference feeds it:
// nearest-neighbour upsampled 7x, average-pooled by resolution/32 (1024 -> 7168 -> 224),
// without CLIP's mean/std normalisation. Noise stays fixed (the model's buffers, or an
// inversion's maps). With id_lambda > 0 the official identity loss is added:
// id_lambda * (1 - <ArcFace(image), ArcFace(starting image)>) (criteria/id_loss.py).
#ifndef GANSERVE_CORE_EDIT_LATENT_OPTIMIZER_H_
#define GANSERVE_CORE_EDIT_LATENT_OPTIMIZER_H_

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/models/arcface/arcface.h"
#include "core/models/clip/clip_model.h"
#include "core/models/stylegan2/generator.h"
#include "core/util/tensor_data.h"

namespace ganserve::core::edit {

struct LatentOptimizationOptions {
  int steps = 300;  // reference default
  float lr = 0.1f;  // peak learning rate
  float l2_lambda = 0.008f;
  float id_lambda = 0.0f;  // reference default (its Colab uses 0.005)
};

// Not thread-safe; one request drives it on its device's executor.
class LatentOptimizer {
 public:
  // start_wplus: [1, n_latent, style_dim]; text_embedding: the target text's CLIP
  // embedding [embed_dim] (raw, as encode_text returns it); noise_maps: empty for the
  // model's constant noise. arcface: needed when id_lambda > 0. InvalidArgument for bad
  // shapes or options, generators below 32 px (the reference's pooling needs at least
  // that), or below 64 px with the identity loss.
  static absl::StatusOr<std::unique_ptr<LatentOptimizer>> Create(
      std::shared_ptr<const stylegan2::Generator> generator, std::shared_ptr<const clip::ClipModel> clip,
      const FloatTensor& start_wplus, const FloatTensor& text_embedding, const std::vector<FloatTensor>& noise_maps,
      LatentOptimizationOptions options, std::shared_ptr<const arcface::ArcFace> arcface = nullptr);
  ~LatentOptimizer();

  int64_t step() const;
  int64_t total_steps() const;
  // One Adam step. Returns {"total", "clip", "l2"} of the step's loss, and "id" with the
  // identity loss.
  absl::StatusOr<std::map<std::string, float>> Step();
  // The current w+ [1, n_latent, style_dim].
  FloatTensor WPlus() const;

 private:
  struct State;
  explicit LatentOptimizer(std::unique_ptr<State> s);
  std::unique_ptr<State> s_;
};

}  // namespace ganserve::core::edit

#endif  // GANSERVE_CORE_EDIT_LATENT_OPTIMIZER_H_
