// Adversarial training of a StyleGAN2 generator and discriminator (Karras et al. 2020,
// rosinality's train.py and NVIDIA's stylegan2-ada-pytorch training loop), from scratch or
// from given weights: every generator parameter (mapping included) and every
// discriminator parameter trained, the non-saturating logistic loss, R1 on real images
// every d_reg_every steps (lazy, scaled by the interval), style mixing, Adam with
// StyleGAN2's betas (0, 0.99) and an EMA generator whose half-life ramps up with the
// images seen (stylegan2-ada's ema_kimg and ema_rampup). No path-length regulariser.
//
// The caller supplies real images each step, so the loop is the same for any data
// source (the toy world's scenes, a one-shot target). Every random draw of a step comes
// from (seed, step): a resumed run repeats the draws it would have made. Not thread-safe;
// torch-free interface.
#ifndef GANSERVE_CORE_ADAPT_GAN_TRAINER_H_
#define GANSERVE_CORE_ADAPT_GAN_TRAINER_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "core/models/stylegan2/config.h"
#include "core/models/stylegan2/discriminator.h"
#include "core/util/tensor_data.h"

namespace ganserve::core::adapt {

struct GanTrainerOptions {
  int batch_size = 32;
  float g_lr = 0.0025f;
  float d_lr = 0.0025f;
  // R1 weight (gamma); stylegan2-ada's heuristic is 0.0002 * resolution^2 / batch.
  float r1 = 0.1f;
  int d_reg_every = 16;
  float mixing = 0.9f;
  // EMA half-life in thousands of images, capped at ema_rampup * images seen.
  double ema_kimg = 10;
  double ema_rampup = 0.05;
  uint64_t seed = 1;
  // The upsampling convolutions as four stride-1 convolutions (UpsampleMode::kPhases):
  // 20 training steps of the toy generator (64 px, batch 32) took 23.4 s against 27.2 s
  // with LibTorch's transposed convolution on a 2-core Intel CPU.
  bool upsample_phases = true;
  // "cpu", "cuda", "cuda:N" or "auto".
  std::string device = "cpu";
};

class GanTrainer {
 public:
  // `generator` / `discriminator`: complete state dicts of `config` and its
  // discriminator (e.g. RandomGeneratorWeights / RandomDiscriminatorWeights for training
  // from scratch). InvalidArgument for incomplete weights or options out of range.
  static absl::StatusOr<std::unique_ptr<GanTrainer>> Create(const stylegan2::GeneratorConfig& config,
                                                            const std::map<std::string, FloatTensor>& generator,
                                                            const std::map<std::string, FloatTensor>& discriminator,
                                                            const GanTrainerOptions& options);
  ~GanTrainer();

  // One discriminator update (plus R1 on every d_reg_every-th step) and one generator
  // update, then the EMA. reals: [batch_size, 3, R, R] float32 in [-1, 1]. Returns "d"
  // (the discriminator's logistic loss), "g" (the generator's non-saturating loss),
  // "real_score", "fake_score" (mean logits) and "r1" on regularisation steps.
  absl::StatusOr<std::map<std::string, float>> Step(const FloatTensor& reals);

  int64_t step() const;
  int64_t images_seen() const;
  const GanTrainerOptions& options() const;

  // Full state dicts (noise buffers and blur kernels included): the EMA generator (what
  // is served, rosinality's g_ema), the trained one (`g`) and the discriminator (`d`).
  std::map<std::string, FloatTensor> GeneratorWeights(bool ema) const;
  std::map<std::string, FloatTensor> DiscriminatorWeights() const;

  // Images of the EMA generator (or the trained one) for z [N, style_dim] with w
  // truncated toward the mean of 4096 mapped z by `truncation` (1 = none), constant
  // noise: [N, 3, R, R].
  absl::StatusOr<FloatTensor> Sample(const FloatTensor& z, float truncation, bool ema = true) const;

  // Every tensor (both generators, the discriminator, both Adam states) and the counters,
  // as safetensors written atomically; Restore needs a trainer of the same shapes.
  absl::Status SaveCheckpoint(const std::string& path) const;
  absl::Status RestoreCheckpoint(const std::string& path);

  struct State;

 private:
  explicit GanTrainer(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

}  // namespace ganserve::core::adapt

#endif  // GANSERVE_CORE_ADAPT_GAN_TRAINER_H_
