#include "core/adapt/nada_adam.h"

#include <cmath>

namespace ganserve::core::adapt {

bool AdamUpdate(double lr, const at::Tensor& grad, bool step_without_grad, at::Tensor& value, AdamSlot& slot) {
  if (!grad.defined()) {
    if (!step_without_grad) return false;
    slot.steps += 1;
    slot.v.mul_(kNadaAdamBeta2);
    return true;
  }
  slot.steps += 1;
  slot.v.mul_(kNadaAdamBeta2).add_(grad * grad, 1 - kNadaAdamBeta2);
  const double bc2 = 1 - std::pow(kNadaAdamBeta2, static_cast<double>(slot.steps));
  at::Tensor denom = slot.v.sqrt() / std::sqrt(bc2) + kNadaAdamEps;
  value.sub_(lr * grad / denom);  // beta1 = 0: the first moment is the gradient, no bias correction
  return true;
}

}  // namespace ganserve::core::adapt
