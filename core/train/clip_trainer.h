// Contrastive training of a CLIP model (Radford et al. 2021) in OpenAI's architecture,
// from given (e.g. random) weights: a ViT image encoder and a causal text transformer,
// both projected to one embedding space, trained on batches of (image, caption) pairs.
// The loss generalises CLIP's symmetric cross-entropy to captions that are true of
// several images of a batch ("a red shape"): each image's target is uniform over the
// captions true of it, each caption's over the images it is true of (with one caption
// per image and nothing else true, this is CLIP's loss). Adam with a linear warm-up and a
// cosine decay; the learned temperature is clamped at 100 as in CLIP.
//
// The result is an ordinary state dict in OpenAI's key names, loaded by ClipModel like
// any release file. Not thread-safe; torch-free interface.
#ifndef GANSERVE_CORE_TRAIN_CLIP_TRAINER_H_
#define GANSERVE_CORE_TRAIN_CLIP_TRAINER_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/models/clip/clip_model.h"
#include "core/util/tensor_data.h"

namespace ganserve::core::train {

struct ClipTrainerOptions {
  float lr = 1e-3f;
  int warmup_steps = 100;
  // The cosine decay reaches 0 at total_steps (and stays there).
  int64_t total_steps = 1000;
  float weight_decay = 0.05f;  // decoupled (AdamW), on matrices only
  std::string device = "cpu";
};

// Starting weights for training `config` from scratch, drawn as OpenAI's CLIP draws them
// (model.py). Text tower, by CLIP.initialize_parameters: token embedding N(0, 0.02),
// positional N(0, 0.01), attention in-projection N(0, w^-1/2), attention and MLP
// out-projections N(0, w^-1/2 (2 L)^-1/2), MLP in-projection N(0, (2 w)^-1/2), text
// projection N(0, w^-1/2). ViT: class and positional embeddings and projection
// N(0, w^-1/2). Everything else keeps PyTorch's layer defaults: Linear weights and biases
// and the patch Conv2d uniform in +-fan_in^-1/2, the attention in-projection
// Xavier-uniform, attention biases 0, layer norms 1 and 0; temperature 1/0.07.
std::map<std::string, FloatTensor> InitialClipWeights(const clip::ClipConfig& config, uint32_t seed);

class ClipTrainer {
 public:
  // `weights`: a complete state dict of `config` (logit_scale included).
  static absl::StatusOr<std::unique_ptr<ClipTrainer>> Create(const std::map<std::string, FloatTensor>& weights,
                                                             const ClipTrainerOptions& options);
  ~ClipTrainer();

  const clip::ClipConfig& config() const;

  // One update. images: [B, 3, R, R] CLIP-normalised (R the model's resolution); tokens:
  // T rows of context_length ids (Tokenizer::Tokenize); truth: B * T flags, row-major,
  // truth[b * T + t] when caption t is true of image b (every image and every caption
  // needs one). Returns "loss", "accuracy" (images whose best caption is a true one) and
  // "temperature" (the logit scale).
  absl::StatusOr<std::map<std::string, float>> Step(const FloatTensor& images,
                                                    const std::vector<std::vector<int>>& tokens,
                                                    const std::vector<uint8_t>& truth);

  int64_t step() const;
  // The current state dict in OpenAI's key names.
  std::map<std::string, FloatTensor> Weights() const;

  struct State;

 private:
  explicit ClipTrainer(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

}  // namespace ganserve::core::train

#endif  // GANSERVE_CORE_TRAIN_CLIP_TRAINER_H_
