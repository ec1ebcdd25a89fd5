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

  explicit Adam(const std::vector<at::Tensor>& params, double beta1 = kBeta1, double beta2 = kBeta2)
      : beta1_(beta1), beta2_(beta2) {
    for (const auto& p : params) {
      m_.push_back(at::zeros_like(p));
      v_.push_back(at::zeros_like(p));
    }
  }

  // The moments and the step count, for checkpoints; SetState restores them (same
  // shapes, same order).
  const std::vector<at::Tensor>& m() const { return m_; }
  const std::vector<at::Tensor>& v() const { return v_; }
  int64_t steps() const { return steps_; }
  void SetState(std::vector<at::Tensor> m, std::vector<at::Tensor> v, int64_t steps) {
    m_ = std::move(m);
    v_ = std::move(v);
    steps_ = steps;
  }

  // One update of `params` (the same tensors, in the same order, as at construction)
  // from their .grad(), which is then cleared. Parameters without a gradient are skipped.
  void Step(const std::vector<at::Tensor>& params, double lr) {
    c10::NoGradGuard ng;
    ++steps_;
    const double bc1 = 1 - std::pow(beta1_, static_cast<double>(steps_));
    const double bc2 = 1 - std::pow(beta2_, static_cast<double>(steps_));
    for (size_t i = 0; i < params.size(); ++i) {
      const at::Tensor& p = params[i];
      const at::Tensor& g = p.grad();
      if (!g.defined()) continue;
      m_[i].mul_(beta1_).add_(g, 1 - beta1_);
      v_[i].mul_(beta2_).add_(g * g, 1 - beta2_);
      at::Tensor denom = v_[i].sqrt() / std::sqrt(bc2) + kEps;
      p.sub_((lr / bc1) * m_[i] / denom);
      p.mutable_grad() = at::Tensor();
    }
  }

 private:
  double beta1_, beta2_;
  std::vector<at::Tensor> m_, v_;
  int64_t steps_ = 0;
};

}  // namespace ganserve::core

#endif  // GANSERVE_CORE_MODELS_COMMON_ADAM_H_
