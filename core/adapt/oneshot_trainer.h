// One-shot domain adaptation from a single image: OneshotCLIP (Kwon & Ye 2022,
// "One-Shot Adaptation of GAN in Just One CLIP"; reference styleclip.md section 5,
// official code cyclomon/OneshotCLIP train_oneshot.py, losses.py, model.py).
//
// Two phases, one job:
//  1. Reference search: one w (not w+) from the mean of 10,000 mapped z, optimised with
//     Adam so that the frozen source generator renders the target image's content:
//     CLIP distance between the target and 8 augmented copies of the render (one set of
//     augmentation parameters per batch, as torchvision draws them), a w-drift penalty,
//     and AlexNet LPIPS + MSE against the target.
//  2. Fine-tuning, as a GAN: the trainable generator and the frozen source start from the
//     checkpoint's `g`, the EMA generator from its `g_ema`, the discriminator from `d`.
//     Every ref_every-th iteration aligns G_t(w_ref) with the target through the global
//     discriminator (+ LPIPS + MSE); the others train through a patch head on the
//     discriminator's 32x32 map with the cross-domain consistency and patch-wise
//     contrastive CLIP losses. Lazy R1 on the discriminator, StyleGAN2's lazy-regularised
//     Adam settings, EMA of every generator parameter.
//
// Every random draw of a step comes from (seed, step), so a resumed job repeats the
// draws it would have made. Torch-free interface.
#ifndef GANSERVE_CORE_ADAPT_ONESHOT_TRAINER_H_
#define GANSERVE_CORE_ADAPT_ONESHOT_TRAINER_H_

#include <cmath>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/adapt/nada_trainer.h"
#include "core/io/image_codec.h"
#include "core/models/lpips/alex_lpips.h"
#include "core/models/stylegan2/discriminator.h"
#include "core/models/stylegan2/generator.h"
#include "core/util/tensor_data.h"

namespace ganserve::core::adapt {

// The official train_oneshot.py defaults.
struct OneshotOptions {
  // Phase 1 (init_iter, f_lr, lambda_optclip / optl2 / optrec, 8 augmented views).
  int reference_steps = 1001;
  float reference_lr = 0.01f;
  int reference_views = 8;
  float lambda_reference_clip = 1.0f;
  float lambda_reference_l2 = 0.01f;
  float lambda_reference_rec = 1.0f;
  int mean_latent_samples = 10000;
  // A caller's w_ref ([style_dim]) skips phase 1 (the official --skip_init).
  std::vector<float> w_ref;
  // Phase 2.
  int iterations = 2001;
  int batch_size = 2;
  float lr = 0.002f;
  int g_reg_every = 4;   // sets G's Adam ratio 4/5 (no path-length regulariser runs)
  int d_reg_every = 16;  // lazy R1 interval, and D's Adam ratio 16/17
  float r1 = 10.0f;
  float mixing = 0.9f;
  int ref_every = 4;  // reference-alignment iterations (i % ref_every == 0)
  float lambda_const = 10.0f;
  float lambda_patch = 1.0f;
  float tau = 1.0f;
  int crop_size = 128;  // capped at resolution / 2 (see EffectiveCropSize)
  int crops = 16;
  double ema_decay = std::pow(0.5, 32.0 / 10000.0);
  int preview_count = 4;
  uint64_t seed = 1;
};

// Crop side used at `resolution`: the official 128 px crops, at most half the image.
int EffectiveCropSize(const OneshotOptions& o, int resolution);
// The discriminator map the patch head reads: 32 px (the official 512-channel map after
// the 64 -> 32 block's second conv), or resolution / 2 below 64 px.
int PatchFeatureResolution(int resolution);

// OneshotCLIP's sampling convention for adapted models (test_sample.py): w = lerp(map(z),
// w_mean, 0.3), and w+ rows from kOneshotMixIndex on (the 256 px layers and finer; none
// below 256 px) take w_mean.
inline constexpr double kOneshotTruncation = 0.7;
inline constexpr int kOneshotMixIndex = 11;

// The checkpoint pieces the method trains from.
struct OneshotModels {
  std::shared_ptr<const stylegan2::Generator> g;      // `g`: trainable start and frozen source
  std::shared_ptr<const stylegan2::Generator> g_ema;  // `g_ema`: EMA start (the served base)
  std::shared_ptr<const stylegan2::Discriminator> d;  // `d`
  ClipGuide clip;
  std::shared_ptr<const lpips::AlexLpips> lpips;
};

// Not thread-safe: one job drives it, one step at a time.
class OneshotTrainer {
 public:
  // InvalidArgument for missing models, mismatched architectures or options out of range.
  static absl::StatusOr<std::unique_ptr<OneshotTrainer>> Create(OneshotModels models, const Rgb8Image& target,
                                                                const OneshotOptions& options);
  ~OneshotTrainer();

  // reference_steps (0 with a given w_ref) + iterations.
  int64_t total_steps() const;
  int64_t step() const;
  // "reference_search" or "fine_tune" (the phase the next step runs).
  const char* phase() const;
  const OneshotOptions& options() const;

  // One step of the current phase. Reference search: "total", "clip_ref", "w_l2",
  // "ref_lpips", "ref_mse". Fine-tuning: "adv_d", "adv_g", "total" (G's loss), "r1" on
  // regularisation steps, and "ref_lpips"/"ref_mse" (alignment) or "const"/"patch".
  absl::StatusOr<std::map<std::string, float>> Step();

  // The reference latent ([style_dim]; the search's current value), w_mean (the mean of
  // the mapped z through g: the search's start) and the same through g_ema (the mean the
  // sampling convention truncates toward, as the official test_sample.py takes it from
  // the source's g_ema).
  FloatTensor ReferenceLatent() const;
  FloatTensor MeanLatent() const;
  FloatTensor SamplingMeanLatent() const;
  // Previews: the fixed grid through the source (`source`) or the EMA generator, the
  // latter followed by the pair (target, EMA generator at w_ref) (during the search:
  // target, source at w_ref).
  absl::StatusOr<FloatTensor> Preview(bool source) const;

  // Every parameter of the EMA generator by state-dict name (raw checkpoint units): the
  // adapted model, overlaid on the `g_ema` base.
  std::map<std::string, FloatTensor> Delta() const;

  // Resumable state (trainable, discriminator, patch head and EMA tensors, every Adam
  // state, w_ref and its Adam state, the step) as safetensors, written atomically.
  absl::Status SaveCheckpoint(const std::string& path) const;
  absl::Status RestoreCheckpoint(const std::string& path);

  struct State;

 private:
  explicit OneshotTrainer(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

}  // namespace ganserve::core::adapt

#endif  // GANSERVE_CORE_ADAPT_ONESHOT_TRAINER_H_
