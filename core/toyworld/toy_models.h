// The toy world's models: the architectures of its generator and CLIP, the scenes the
// generator learns, and zero-shot classification of images by shape, colour and style
// with a CLIP model (the measurements of the semantic tests and the demo). Torch-free.
#ifndef GANSERVE_CORE_TOYWORLD_TOY_MODELS_H_
#define GANSERVE_CORE_TOYWORLD_TOY_MODELS_H_

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/status/statusor.h"
#include "core/io/image_codec.h"
#include "core/models/clip/clip_model.h"
#include "core/models/clip/tokenizer.h"
#include "core/models/stylegan2/config.h"
#include "core/toyworld/scenes.h"
#include "core/util/tensor_data.h"

namespace ganserve::core::toyworld {

// 64 px StyleGAN2 with reduced widths (128 up to 16 px, 64 at 32 px, 32 at 64 px), w of 128, a
// 4-layer mapping network.
stylegan2::GeneratorConfig ToyGeneratorConfig();
// What it is trained on: "photo" scenes of one shape (so "pencil sketch" and "painting"
// are domains it has never seen).
SceneOptions ToyGeneratorScenes();
// ViT on 64 px images in 8 px patches, 4 layers of width 128 in each tower, 128-d
// embeddings, 32-token context, `vocab_size` tokens.
clip::ClipConfig ToyClipConfig(int vocab_size);

struct ClassScores {
  std::vector<float> probabilities;  // softmax over the classes at the model's temperature
  int best = 0;
  float best_probability = 0;
};

// Class indices follow AllShapeKinds / AllColours / AllStyles.
struct Classification {
  ClassScores shape, colour, style;
};

nlohmann::json ToJson(const Classification& c);

// Zero-shot classifier over ShapePrompts / ColourPrompts / StylePrompts. Immutable after
// Create; borrows the model, which must outlive it; thread-safe as the model is.
class ToyClassifier {
 public:
  static absl::StatusOr<ToyClassifier> Create(const clip::ClipModel& model, const clip::Tokenizer& tokenizer);

  // Images of any size (CLIP's resize and centre crop to the model's resolution).
  absl::StatusOr<std::vector<Classification>> Classify(const std::vector<Rgb8Image>& images) const;

 private:
  ToyClassifier(const clip::ClipModel* model, std::vector<FloatTensor> prompts)
      : model_(model), prompts_(std::move(prompts)) {}
  const clip::ClipModel* model_;
  std::vector<FloatTensor> prompts_;  // shape, colour, style: [classes, D], unit rows
};

}  // namespace ganserve::core::toyworld

#endif  // GANSERVE_CORE_TOYWORLD_TOY_MODELS_H_
