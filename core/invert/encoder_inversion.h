// Inversion by encoder (reference/styleclip.md section 4): the pSp / e4e encoder maps the
// photo (resized to 256 x 256, PIL bilinear, centre-cropped when not square) to w+ in one
// forward pass, decoded with the generator's stored noise maps as e4e's inference does
// (randomize_noise=False). Optionally the projector (projector.h) then refines that w+
// and those noise maps for `refine_steps` steps: the encoder-then-optimise recipe.
#ifndef GANSERVE_CORE_INVERT_ENCODER_INVERSION_H_
#define GANSERVE_CORE_INVERT_ENCODER_INVERSION_H_

#include <memory>
#include <string>

#include "core/invert/projector.h"
#include "core/models/psp/style_encoder.h"

namespace ganserve::core::invert {

// Step 1 encodes ("encode"); steps 2.. refine ("refine"). Not thread-safe.
class EncoderInverter : public Inverter {
 public:
  // `refine` configures the refinement (its steps = the refinement steps, 0 = none; its
  // start is set here). The encoder must give the generator's w+ rows of its style width:
  // InvalidArgument otherwise. `clip` and `lpips` as for Projector::Create (the measures
  // and the refinement's loss).
  static absl::StatusOr<std::unique_ptr<EncoderInverter>> Create(std::shared_ptr<const psp::StyleEncoder> encoder,
                                                                 std::shared_ptr<const stylegan2::Generator> generator,
                                                                 const Rgb8Image& target, ProjectorOptions refine,
                                                                 std::shared_ptr<const clip::ClipModel> clip,
                                                                 std::shared_ptr<const lpips::Lpips> lpips = nullptr);
  ~EncoderInverter() override;

  // The encode step returns "psnr" (and "lpips" when measured) of the encoder's own
  // inversion; refinement steps the projector's terms.
  absl::StatusOr<std::map<std::string, float>> Step() override;
  int64_t step() const override;
  int64_t total_steps() const override;
  std::string phase() const override;
  FloatTensor Target() const override;
  // Before the encode step: FailedPrecondition (nothing to show yet).
  absl::StatusOr<FloatTensor> Current() const override;
  // The encoder's inversion (loss "encoder") or the refined one ("encoder+" the
  // projector's loss).
  absl::StatusOr<Inversion> Result() const override;
  // After the encode step, the projector's checkpoint; a resume encodes again (the
  // forward is deterministic) and restores the refinement.
  absl::Status SaveCheckpoint(const std::string& path) const override;
  absl::Status RestoreCheckpoint(const std::string& path) override;

 private:
  struct State;
  explicit EncoderInverter(std::unique_ptr<State> s);
  absl::Status Encode();
  std::unique_ptr<State> s_;
};

}  // namespace ganserve::core::invert

#endif  // GANSERVE_CORE_INVERT_ENCODER_INVERSION_H_
