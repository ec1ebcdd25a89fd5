// Ranger (RAdam + Lookahead + gradient centralisation), as the version 20.4.11 that
// StyleCLIP's mapper training ships (mapper/training/ranger.py) steps under PyTorch 1.x:
//
//  * gradients of tensors with more than one dimension are centralised (their mean over
//    every dimension but the first subtracted); biases are not;
//  * moments with betas (0.95, 0.999); RAdam's rectification: while the approximated SMA
//    length N_sma <= 5 the step is lr * m / (1 - beta1^t) (no denominator), after that
//    lr * r_t / (1 - beta1^t) * m / (sqrt(v) + 1e-5) with the rectifier r_t;
//  * every k = 6 steps the slow weights move alpha = 0.5 of the way to the fast ones and
//    the fast weights are reset to them;
//  * tensors without a gradient are skipped (their step count does not advance).
// The step-size arithmetic is done in double, as Python's floats are.
#ifndef GANSERVE_CORE_MODELS_COMMON_RANGER_H_
#define GANSERVE_CORE_MODELS_COMMON_RANGER_H_

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>

#include <cmath>
#include <vector>

namespace ganserve::core {

class Ranger {
 public:
  static constexpr double kBeta1 = 0.95, kBeta2 = 0.999, kEps = 1e-5, kAlpha = 0.5, kSmaThreshold = 5;
  static constexpr int64_t kLookaheadSteps = 6;

  struct ParamState {
    int64_t step = 0;
    at::Tensor exp_avg, exp_avg_sq, slow;
  };

  explicit Ranger(const std::vector<at::Tensor>& params) : state_(params.size()) {
    for (size_t i = 0; i < params.size(); ++i) {
      state_[i].exp_avg = at::zeros_like(params[i]);
      state_[i].exp_avg_sq = at::zeros_like(params[i]);
      state_[i].slow = params[i].detach().clone();
    }
  }

  const std::vector<ParamState>& state() const { return state_; }
  // Restores a checkpoint's state (same tensors, same order as at construction).
  void SetState(std::vector<ParamState> s) { state_ = std::move(s); }

  // One update of `params` from their .grad(), which is then cleared.
  void Step(const std::vector<at::Tensor>& params, double lr) {
    c10::NoGradGuard ng;
    const double n_sma_max = 2 / (1 - kBeta2) - 1;
    for (size_t i = 0; i < params.size(); ++i) {
      const at::Tensor& p = params[i];
      at::Tensor g = p.grad();
      if (!g.defined()) continue;
      ParamState& s = state_[i];
      if (g.dim() > 1) {
        std::vector<int64_t> dims;
        for (int64_t d = 1; d < g.dim(); ++d) dims.push_back(d);
        g = g - g.mean(dims, true);
      }
      s.step += 1;
      s.exp_avg_sq.mul_(kBeta2).addcmul_(g, g, 1 - kBeta2);
      s.exp_avg.mul_(kBeta1).add_(g, 1 - kBeta1);
      const auto t = static_cast<double>(s.step);
      const double beta2_t = std::pow(kBeta2, t);
      const double n_sma = n_sma_max - 2 * t * beta2_t / (1 - beta2_t);
      double step_size = 1.0 / (1 - std::pow(kBeta1, t));
      if (n_sma > kSmaThreshold) {
        step_size = std::sqrt((1 - beta2_t) * (n_sma - 4) / (n_sma_max - 4) * (n_sma - 2) / n_sma * n_sma_max /
                              (n_sma_max - 2)) /
                    (1 - std::pow(kBeta1, t));
        p.addcdiv_(s.exp_avg, s.exp_avg_sq.sqrt().add_(kEps), -step_size * lr);
      } else {
        p.add_(s.exp_avg, -step_size * lr);
      }
      if (s.step % kLookaheadSteps == 0) {
        s.slow.add_(p - s.slow, kAlpha);
        p.copy_(s.slow);
      }
      p.mutable_grad() = at::Tensor();
    }
  }

 private:
  std::vector<ParamState> state_;
};

}  // namespace ganserve::core

#endif  // GANSERVE_CORE_MODELS_COMMON_RANGER_H_
