// Text-driven training of a lightweight domain (HyperDomainNet's td_single recipe,
// reference lightweight-adaptation.md section 2.2): the base generator stays frozen;
// only the domain's parameters train (domain modulation d, a StyleSpace direction, or
// AffineLight+'s rank-r affine and kernel offsets), with the directional CLIP loss and
// the in-domain angle-consistency regulariser summed over the CLIP models, and Adam.
// Torch-free interface.
#ifndef GANSERVE_CORE_ADAPT_DOMAIN_TRAINER_H_
#define GANSERVE_CORE_ADAPT_DOMAIN_TRAINER_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/adapt/nada_trainer.h"
#include "core/models/clip/text_embedding_cache.h"
#include "core/models/stylegan2/generator.h"
#include "core/util/tensor_data.h"

namespace ganserve::core::adapt {

struct DomainTrainerOptions {
  stylegan2::DomainKind kind = stylegan2::DomainKind::kDomainModulation;
  std::string source_text = "photo";
  std::string target_text;
  int iterations = 300;
  int batch_size = 4;  // >= 2: the regulariser compares pairs
  float lr = 0.02f;
  float beta1 = 0.9f;
  float beta2 = 0.999f;
  float mixing = 0.9f;  // probability of a two-latent batch (every official config: 0.9)
  float lambda_direction = 1.0f;
  float lambda_indomain = 1.5f;
  float lambda_l2 = 0.0f;  // sum over layers of mean(offset^2) (HyperDomainNet's offsets_l2)
  int rank = stylegan2::kAffineLightRank;
  // The modulated convolutions' form in training. kScaled (the default) scales the
  // activations by the style and convolves with the frozen shared kernel, so the backward
  // needs no kernel gradients (only AffineLight+'s kernel-offset block forms per-sample
  // kernels); kGrouped builds per-sample kernels whose gradients the backward computes.
  stylegan2::ModConvMode form = stylegan2::ModConvMode::kScaled;
  int preview_count = 4;
  float preview_truncation = 0.7f;
  uint64_t seed = 0;
};

// The defaults of each kind, from the official configurations:
// kDomainModulation: HyperDomainNet td_single_car (lr 0.02, in-domain 1.5, batch 8 there);
// kStyleSpaceDirection: StyleDomain td_nada_ffhq_sdelta (lr 0.05, in-domain 0.25, batch 4);
// kAffineLight: StyleDomain's glrate 0.008 for AffineLight+ (a few-shot GAN recipe
// there; no official text-driven one), in-domain 0.5. Adam betas (0.9, 0.999), mixing
// 0.9, 300 iterations, batch 4 for all.
DomainTrainerOptions DomainTrainerDefaults(stylegan2::DomainKind kind);

// The losses of a batch, as HyperDomainNet's core/loss.py defines them. e_src, e_trg:
// [B, D] unit CLIP embeddings of the frozen and the adapted images (same latents);
// direction [D]: the template mean of (target - source) text embeddings (not renormalised).
struct DomainLosses {
  float direction = 0;  // mean_b 1 - cos(e_trg_b - e_src_b, direction)
  float indomain = 0;   // mean over pairs i > j of (<e_src_i, e_src_j> - <e_trg_i, e_trg_j>)^2
};
absl::StatusOr<DomainLosses> ComputeDomainLosses(const FloatTensor& e_src, const FloatTensor& e_trg,
                                                 const FloatTensor& direction);

// Not thread-safe: one job drives it, one step at a time, on its device's executor.
class DomainTrainer {
 public:
  // InvalidArgument for empty target text, no CLIP models, or options out of range.
  static absl::StatusOr<std::unique_ptr<DomainTrainer>> Create(const std::shared_ptr<const stylegan2::Generator>& base,
                                                               std::vector<ClipGuide> clips,
                                                               const DomainTrainerOptions& options,
                                                               clip::TextEmbeddingCache* text_cache);
  ~DomainTrainer();

  // One training iteration: fresh latents (mixed with probability `mixing`, each
  // generator its own crossover) and fresh noise for each of the two renders, as the
  // official trainer draws them. Returns "total", "direction", "indomain" (and "l2").
  absl::StatusOr<std::map<std::string, float>> Step();
  // The same update on given z [B, style_dim] with the stored noise maps and no mixing
  // (parity with the official code, reproducible comparisons).
  absl::StatusOr<std::map<std::string, float>> StepOn(const FloatTensor& z);
  // The loss gradient with respect to every parameter at z (stored noise, no mixing),
  // without an update.
  absl::StatusOr<stylegan2::DomainTensors> Gradient(const FloatTensor& z);
  int64_t step() const;
  const DomainTrainerOptions& options() const;

  // The directional loss on a fixed batch drawn from `seed`, no update.
  absl::StatusOr<float> EvalDirectionLoss(uint64_t seed, int batch) const;
  // The preview grid ([P, 3, H, W]) of the base (`frozen`) or the domain, truncation
  // `preview_truncation`, stored noise.
  absl::StatusOr<FloatTensor> Preview(bool frozen) const;

  // The trained parameters (the domain to store).
  stylegan2::DomainTensors Parameters() const;
  // Replaces the parameters (same names and shapes); Adam's state is kept.
  absl::Status SetParameters(const stylegan2::DomainTensors& tensors);

  // Resumable state (parameters, Adam moments, step) as safetensors, written atomically.
  absl::Status SaveCheckpoint(const std::string& path) const;
  absl::Status RestoreCheckpoint(const std::string& path);

  // The text direction of one CLIP model ([D]), for tests.
  absl::StatusOr<FloatTensor> TextDirection(size_t clip_index) const;

  struct State;

 private:
  explicit DomainTrainer(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

}  // namespace ganserve::core::adapt

#endif  // GANSERVE_CORE_ADAPT_DOMAIN_TRAINER_H_
