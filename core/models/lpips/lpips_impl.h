// LibTorch-level LPIPS forward, differentiable, for optimisation losses.
#ifndef GANSERVE_CORE_MODELS_LPIPS_LPIPS_IMPL_H_
#define GANSERVE_CORE_MODELS_LPIPS_LPIPS_IMPL_H_

#include <ATen/ATen.h>

#include <vector>

#include "core/models/lpips/lpips.h"

namespace ganserve::core::lpips {

struct Lpips::Impl {
  c10::Device device{c10::kCPU};
  std::vector<at::Tensor> conv_w, conv_b;  // the 13 VGG16 convolutions
  std::vector<at::Tensor> lin;             // 5 x [1, C, 1, 1]
  at::Tensor shift, scale;                 // [1, 3, 1, 1]

  // a, b: [N, 3, H, W] in [-1, 1]. Returns [N].
  at::Tensor Forward(const at::Tensor& a, const at::Tensor& b) const;
};

}  // namespace ganserve::core::lpips

#endif  // GANSERVE_CORE_MODELS_LPIPS_LPIPS_IMPL_H_
