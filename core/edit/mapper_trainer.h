// StyleCLIP latent-mapper training (the official mapper/training/coach.py): a mapper is
// trained for one text prompt on a set of w+ latents; each step takes a batch of them,
// renders w_hat = w + 0.1 * mapper(w) with the generator's fixed noise and minimises
//   clip_lambda * (1 - CLIP similarity of the image and the text)      (clip_loss.py)
// + latent_l2_lambda * mean((w_hat - w)^2)                              (nn.MSELoss)
// + id_lambda * mean(1 - <ArcFace(x_hat), ArcFace(x)>)                 (id_loss.py)
// with Ranger at learning rate 0.5, batch 2, shuffled epochs without the last partial
// batch (the official DataLoader's shuffle and drop_last); x = G(w) is the unedited image.
//
// Training latents: the caller's (e.g. stored inversions, [N, n_latent, dim]), or
// `train_latents` random ones: z ~ N(0, I) mapped and truncated (psi 0.7) toward the
// generator's mean latent, every row equal (the official random-latent path names a
// `latent_avg` attribute its network does not have; the generator's mean latent is what
// it means). The official validation pass (best_model.pt) is not run; the result is the
// mapper after the last step. x = G(w) is rendered only when the identity loss is on (the
// official code renders it every step, also for its logs).
//
// Every random draw derives from (seed, epoch), so a resumed job repeats the batches.
#ifndef GANSERVE_CORE_EDIT_MAPPER_TRAINER_H_
#define GANSERVE_CORE_EDIT_MAPPER_TRAINER_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "core/edit/latent_mapper.h"
#include "core/models/arcface/arcface.h"
#include "core/models/clip/clip_model.h"
#include "core/models/stylegan2/generator.h"
#include "core/util/tensor_data.h"

namespace ganserve::core::edit {

struct MapperTrainerOptions {
  MapperConfig mapper;            // dim is taken from the generator
  int64_t steps = 50000;          // official max_steps
  double lr = 0.5;                // official learning_rate (Ranger)
  int64_t batch_size = 2;         // official batch_size
  float clip_lambda = 1.0f;       // official clip_lambda
  float latent_l2_lambda = 0.8f;  // official latent_l2_lambda
  float id_lambda = 0.1f;         // official id_lambda (needs an ArcFace model)
  int64_t train_latents = 5000;   // official train_dataset_size (random latents)
  float truncation = 0.7f;        // of the random latents (official)
  int64_t preview_count = 4;
  uint64_t seed = 0;
};

// Not thread-safe: one job drives it on its device's executor.
class MapperTrainer {
 public:
  // text_embedding: the prompt's CLIP embedding [embed_dim] as encode_text returns it.
  // latents: training w+ [N, n_latent, style_dim], or empty for random ones. arcface:
  // needed when id_lambda > 0 (may be null otherwise). InvalidArgument for bad options
  // or shapes, a missing ArcFace, or a generator whose images do not pool to the CLIP
  // model's input (or are below the identity loss's 64 px).
  static absl::StatusOr<std::unique_ptr<MapperTrainer>> Create(
      std::shared_ptr<const stylegan2::Generator> generator, std::shared_ptr<const clip::ClipModel> clip,
      const FloatTensor& text_embedding, const FloatTensor& latents, MapperTrainerOptions options,
      std::shared_ptr<const arcface::ArcFace> arcface = nullptr);
  ~MapperTrainer();
  // InvalidArgument unless the generator's images pool to the CLIP model's input.
  static absl::Status CheckModels(const stylegan2::Generator& generator, const clip::ClipModel& clip);

  int64_t step() const;
  int64_t total_steps() const;
  // One Ranger step. Returns {"total", "clip", "l2"} and "id" when the identity loss is on.
  absl::StatusOr<std::map<std::string, float>> Step();
  // The preview latents rendered as they are (source) or through the mapper.
  absl::StatusOr<FloatTensor> Preview(bool source) const;
  const LatentMapper& mapper() const;
  absl::Status SaveCheckpoint(const std::string& path) const;
  absl::Status RestoreCheckpoint(const std::string& path);

 private:
  struct State;
  explicit MapperTrainer(std::unique_ptr<State> s);
  std::unique_ptr<State> s_;
};

}  // namespace ganserve::core::edit

#endif  // GANSERVE_CORE_EDIT_MAPPER_TRAINER_H_
