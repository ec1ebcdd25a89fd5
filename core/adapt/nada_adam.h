// The optimiser step of StyleGAN-NADA's training: Adam with the reference's betas
// (beta1 = 0 ** 0.8 = 0, so the first moment is the gradient; beta2 = 0.99 ** 0.8,
// eps 1e-8), one parameter at a time, with the two step-counting behaviours of
// AdamSteps. Internal to core/adapt (LibTorch).
#ifndef GANSERVE_CORE_ADAPT_NADA_ADAM_H_
#define GANSERVE_CORE_ADAPT_NADA_ADAM_H_

#include <ATen/ATen.h>

#include <cstdint>

namespace ganserve::core::adapt {

inline constexpr double kNadaAdamBeta2 = 0.99199197;  // 0.99 ** 0.8
inline constexpr double kNadaAdamEps = 1e-8;

struct AdamSlot {
  at::Tensor v;       // second moment, zeros like the parameter
  int64_t steps = 0;  // Adam's step count for this parameter
};

// One step of one parameter. `grad` is undefined when the parameter got no gradient this
// iteration; it is then stepped only when `step_without_grad` (the reference under
// PyTorch 1.x once layer selection has run): v decays and the count advances, the value
// stays (its first moment is zero). Returns whether the parameter was stepped.
bool AdamUpdate(double lr, const at::Tensor& grad, bool step_without_grad, at::Tensor& value, AdamSlot& slot);

}  // namespace ganserve::core::adapt

#endif  // GANSERVE_CORE_ADAPT_NADA_ADAM_H_
