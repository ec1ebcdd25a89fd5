// LibTorch-level AlexNet LPIPS forward, differentiable, for optimisation losses.
#ifndef GANSERVE_CORE_MODELS_LPIPS_ALEX_LPIPS_IMPL_H_
#define GANSERVE_CORE_MODELS_LPIPS_ALEX_LPIPS_IMPL_H_

#include <ATen/ATen.h>

#include <vector>

#include "core/models/lpips/alex_lpips.h"

namespace ganserve::core::lpips {

struct AlexLpips::Impl {
  c10::Device device{c10::kCPU};
  std::vector<at::Tensor> conv_w, conv_b;  // AlexNet's 5 convolutions
  std::vector<at::Tensor> lin;             // 5 x [1, C, 1, 1], no bias
  at::Tensor shift, scale;                 // [1, 3, 1, 1]

  // a, b: [N, 3, H, W] in [-1, 1]. Returns [N].
  at::Tensor Forward(const at::Tensor& a, const at::Tensor& b) const;
};

}  // namespace ganserve::core::lpips

#endif  // GANSERVE_CORE_MODELS_LPIPS_ALEX_LPIPS_IMPL_H_
