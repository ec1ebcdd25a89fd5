// Optimisation-based projection of a real image into a StyleGAN2 generator's latent
// space, as rosinality's projector does it (reference/styleclip.md section 4): start
// at the mean w (10,000 mapped samples, fixed seed), Adam with a cosine learning-rate
// ramp, a decaying latent noise, optimised and renormalised noise maps with their
// regulariser. The target is resized as its transforms do (PIL bilinear, shorter side
// to min(resolution, 256), centre crop). The image loss is LPIPS (VGG, v0.1) when an LPIPS
// model is given, as in the reference; without one, MSE plus, when a CLIP model is
// given, a CLIP image-embedding loss. The result says which loss was used.
#ifndef GANSERVE_CORE_INVERT_PROJECTOR_H_
#define GANSERVE_CORE_INVERT_PROJECTOR_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/io/image_codec.h"
#include "core/models/clip/clip_model.h"
#include "core/models/lpips/lpips.h"
#include "core/models/stylegan2/generator.h"

namespace ganserve::core::invert {

struct ProjectorOptions {
  int steps = 1000;
  float lr = 0.1f;
  float noise = 0.05f;       // latent noise scale (times the latent std)
  float noise_ramp = 0.75f;  // fraction of steps over which it decays to 0
  float noise_regularize = 1e5f;
  float mse = 1.0f;   // MSE weight (rosinality uses 0 with LPIPS; needed without it)
  float clip = 1.0f;  // CLIP image-embedding loss weight, when a CLIP model is given
                      // and no LPIPS model (LPIPS replaces it)
  bool w_plus = true;
  uint64_t seed = 0;
  // Where to start instead of the mean w with random noise maps (an encoder's inversion:
  // the encoder-then-optimise recipe): a w+ [1, n_latent, style_dim] (needs w_plus) and
  // noise maps, one [1, 1, r, r] per layer, or none for random ones. With a start,
  // steps may be 0: the result is then the start itself, measured.
  std::optional<FloatTensor> start_wplus;
  std::vector<FloatTensor> start_noises;
};

struct Inversion {
  FloatTensor wplus;                          // [1, n_latent, style_dim]
  std::map<std::string, FloatTensor> noises;  // "noise_<i>" -> [1, 1, r, r]
  FloatTensor reconstruction;                 // [1, 3, H, W], raw generator output
  float psnr = 0;                             // dB, at the comparison resolution
  float lpips = -1;                           // LPIPS to the target when LPIPS was used, else -1
  std::string loss;                           // "lpips", "lpips+mse", "mse" or "mse+clip"
};

// A job's inversion of one image, step by step. Not thread-safe; one job drives it on its
// device's executor.
class Inverter {
 public:
  virtual ~Inverter() = default;
  // One step; returns its loss terms.
  virtual absl::StatusOr<std::map<std::string, float>> Step() = 0;
  virtual int64_t step() const = 0;
  virtual int64_t total_steps() const = 0;
  // The phase the next Step() runs ("encode", "refine"); empty for single-phase ones.
  virtual std::string phase() const { return {}; }
  // The target as the generator sees it ([1, 3, R, R] in [-1, 1]) and the current
  // reconstruction.
  virtual FloatTensor Target() const = 0;
  virtual absl::StatusOr<FloatTensor> Current() const = 0;
  virtual absl::StatusOr<Inversion> Result() const = 0;
  virtual absl::Status SaveCheckpoint(const std::string& path) const = 0;
  virtual absl::Status RestoreCheckpoint(const std::string& path) = 0;
};

class Projector : public Inverter {
 public:
  // `clip` and `lpips` may be null. With LPIPS the loss is rosinality's (LPIPS + noise
  // regulariser + mse * MSE); without it MSE plus the CLIP image-embedding term.
  // InvalidArgument for bad options or an empty image.
  static absl::StatusOr<std::unique_ptr<Projector>> Create(std::shared_ptr<const stylegan2::Generator> generator,
                                                           const Rgb8Image& target, ProjectorOptions options,
                                                           std::shared_ptr<const clip::ClipModel> clip,
                                                           std::shared_ptr<const lpips::Lpips> lpips = nullptr);
  ~Projector() override;

  absl::StatusOr<std::map<std::string, float>> Step() override;
  int64_t step() const override;
  int64_t total_steps() const override;
  FloatTensor Target() const override;
  // The reconstruction without the latent noise.
  absl::StatusOr<FloatTensor> Current() const override;
  absl::StatusOr<Inversion> Result() const override;
  // Latent and noise maps (Adam moments restart after a resume).
  absl::Status SaveCheckpoint(const std::string& path) const override;
  absl::Status RestoreCheckpoint(const std::string& path) override;

  struct State;

 private:
  explicit Projector(std::unique_ptr<State> s);
  std::unique_ptr<State> s_;
};

// Saves / loads an inversion as safetensors ("wplus", "noise_<i>", metadata).
absl::Status SaveInversion(const std::string& path, const Inversion& inv, const std::string& model);
absl::StatusOr<Inversion> LoadInversion(const std::string& path, std::string* model);

}  // namespace ganserve::core::invert

#endif  // GANSERVE_CORE_INVERT_PROJECTOR_H_
