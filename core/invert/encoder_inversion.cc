#include "core/invert/encoder_inversion.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/models/clip/preprocess.h"
#include "core/models/common/torch_convert.h"
#include "core/models/psp/style_encoder_impl.h"
#include "core/models/stylegan2/generator_impl.h"
#include "core/util/status_macros.h"

namespace ganserve::core::invert {

struct EncoderInverter::State {
  std::shared_ptr<const psp::StyleEncoder> encoder;
  std::shared_ptr<const stylegan2::Generator> gen;
  std::shared_ptr<const clip::ClipModel> clip;
  std::shared_ptr<const lpips::Lpips> lpips;
  Rgb8Image target;
  FloatTensor encoder_input;  // [1, 3, 256, 256] in [-1, 1]
  ProjectorOptions refine;
  // Made by the encode step: the projector starts at the encoder's w+ and the stored
  // noise maps (with 0 steps it only measures them).
  std::unique_ptr<Projector> projector;
  Inversion encoded;
};

EncoderInverter::EncoderInverter(std::unique_ptr<State> s) : s_(std::move(s)) {}
EncoderInverter::~EncoderInverter() = default;

absl::StatusOr<std::unique_ptr<EncoderInverter>> EncoderInverter::Create(
    std::shared_ptr<const psp::StyleEncoder> encoder, std::shared_ptr<const stylegan2::Generator> generator,
    const Rgb8Image& target, ProjectorOptions refine, std::shared_ptr<const clip::ClipModel> clip,
    std::shared_ptr<const lpips::Lpips> lpips) {
  if (encoder == nullptr || generator == nullptr) return absl::InvalidArgumentError("no encoder or generator");
  if (target.width <= 0 || target.height <= 0) return absl::InvalidArgumentError("the image is empty");
  const auto& c = generator->config();
  if (encoder->config().styles != c.n_latent || psp::kEncoderStyleDim != c.style_dim) {
    return absl::InvalidArgumentError(absl::StrCat("the encoder gives w+ [", encoder->config().styles, ", ",
                                                   psp::kEncoderStyleDim, "], the generator takes [", c.n_latent, ", ",
                                                   c.style_dim, "]"));
  }
  if (refine.steps < 0) return absl::InvalidArgumentError("refinement steps must be >= 0");
  auto s = std::make_unique<State>();
  s->encoder = std::move(encoder);
  s->gen = std::move(generator);
  s->clip = std::move(clip);
  s->lpips = std::move(lpips);
  s->target = target;
  s->encoder_input = Rgb8ToFloat(clip::ResizeAndCenterCrop(target, psp::kEncoderInputSize, clip::PilFilter::kBilinear));
  s->refine = std::move(refine);
  s->refine.w_plus = true;
  return std::unique_ptr<EncoderInverter>(new EncoderInverter(std::move(s)));
}

absl::Status EncoderInverter::Encode() {
  State& s = *s_;
  ASSIGN_OR_RETURN(FloatTensor wplus, s.encoder->Encode(s.encoder_input));
  ProjectorOptions o = s.refine;
  o.start_wplus = std::move(wplus);
  o.start_noises.clear();
  {
    c10::NoGradGuard ng;
    for (const at::Tensor& n : s.gen->impl().noises) o.start_noises.push_back(FromTorch(n));
  }
  ASSIGN_OR_RETURN(s.projector, Projector::Create(s.gen, s.target, std::move(o), s.clip, s.lpips));
  ASSIGN_OR_RETURN(s.encoded, s.projector->Result());
  s.encoded.loss = "encoder";
  return absl::OkStatus();
}

absl::StatusOr<std::map<std::string, float>> EncoderInverter::Step() {
  State& s = *s_;
  if (s.projector == nullptr) {
    RETURN_IF_ERROR(Encode());
    std::map<std::string, float> out{{"psnr", s.encoded.psnr}};
    if (s.encoded.lpips >= 0) out["lpips"] = s.encoded.lpips;
    return out;
  }
  if (s.projector->step() >= s.projector->total_steps()) {
    return absl::FailedPreconditionError("the inversion has no steps left");
  }
  return s.projector->Step();
}

int64_t EncoderInverter::step() const { return s_->projector == nullptr ? 0 : 1 + s_->projector->step(); }
int64_t EncoderInverter::total_steps() const { return 1 + s_->refine.steps; }
std::string EncoderInverter::phase() const { return s_->projector == nullptr ? "encode" : "refine"; }

FloatTensor EncoderInverter::Target() const {
  if (s_->projector != nullptr) return s_->projector->Target();
  const int r = std::min(s_->gen->config().resolution, 256);
  return Rgb8ToFloat(clip::ResizeAndCenterCrop(s_->target, r, clip::PilFilter::kBilinear));
}

absl::StatusOr<FloatTensor> EncoderInverter::Current() const {
  if (s_->projector == nullptr) return absl::FailedPreconditionError("the photo is not encoded yet");
  return s_->projector->Current();
}

absl::StatusOr<Inversion> EncoderInverter::Result() const {
  if (s_->projector == nullptr) return absl::FailedPreconditionError("the photo is not encoded yet");
  if (s_->projector->total_steps() == 0) return s_->encoded;
  ASSIGN_OR_RETURN(Inversion inv, s_->projector->Result());
  inv.loss = "encoder+" + inv.loss;
  return inv;
}

absl::Status EncoderInverter::SaveCheckpoint(const std::string& path) const {
  if (s_->projector == nullptr) return absl::FailedPreconditionError("nothing to checkpoint before the encode step");
  return s_->projector->SaveCheckpoint(path);
}

absl::Status EncoderInverter::RestoreCheckpoint(const std::string& path) {
  if (s_->projector == nullptr) RETURN_IF_ERROR(Encode());
  return s_->projector->RestoreCheckpoint(path);
}

}  // namespace ganserve::core::invert
