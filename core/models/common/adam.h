// Adam (Kingma & Ba) on plain tensors, as torch.optim.Adam with default settings, and
// the learning-rate ramp rosinality's projector and StyleCLIP's optimization share.
// For optimisation loops that keep their own leaves (projection, latent editing).
#ifndef GANSERVE_CORE_MODELS_COMMON_ADAM_H_
#define GANSERVE_CORE_MODELS_COMMON_ADAM_H_

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>

#include <algorithm>
#include <cmath>
#include <vector>

namespace ganserve::core {

// lr * ramp(t), t = step / steps in [0, 1): cosine ramp-down over the last 25 %, linear
// ramp-up over the first 5 % (so step 0 has lr 0, as in the references).
inline double RampedLearningRate(double t, double initial) {
  double ramp = std::min(1.0, (1 - t) / 0.25);
  ramp = 0.5 - 0.5 * std::cos(ramp * M_PI);
  ramp = ramp * std::min(1.0, t / 0.05);
  return initial * ramp;
}

class Adam {
 public:
  static constexpr double kBeta1 = 0.9, kBeta2 = 0.999, kEps = 1e-8;

  explicit Adam(const std::vector<at::Tensor>& params) {
    for (const auto& p : params) {
      m_.push_back(at::zeros_like(p));
      v_.push_back(at::zeros_like(p));
    }
  }

  // One update of `params` (the same tensors, in the same order, as at construction)
  // from their .grad(), which is then cleared. Parameters without a gradient are skipped.
  void Step(const std::vector<at::Tensor>& params, double lr) {
    c10::NoGradGuard ng;
    ++steps_;
    const double bc1 = 1 - std::pow(kBeta1, static_cast<double>(steps_));
    const double bc2 = 1 - std::pow(kBeta2, static_cast<double>(steps_));
    for (size_t i = 0; i < params.size(); ++i) {
      const at::Tensor& p = params[i];
      const at::Tensor& g = p.grad();
      if (!g.defined()) continue;
      m_[i].mul_(kBeta1).add_(g, 1 - kBeta1);
      v_[i].mul_(kBeta2).add_(g * g, 1 - kBeta2);
      at::Tensor denom = v_[i].sqrt() / std::sqrt(bc2) + kEps;
      p.sub_((lr / bc1) * m_[i] / denom);
      p.mutable_grad() = at::Tensor();
    }
  }

 private:
  std::vector<at::Tensor> m_, v_;
  int64_t steps_ = 0;
};

}  // namespace ganserve::core

#endif  // GANSERVE_CORE_MODELS_COMMON_ADAM_H_
