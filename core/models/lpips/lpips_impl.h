// LibTorch-level LPIPS forward, differentiable, for optimisation losses.
#ifndef GANSERVE_CORE_MODELS_LPIPS_LPIPS_IMPL_H_
#define GANSERVE_CORE_MODELS_LPIPS_LPIPS_IMPL_H_

#include <ATen/ATen.h>

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/models/lpips/lpips.h"

namespace ganserve::core::lpips {

// LPIPS's input scaling layer (both the VGG and the AlexNet variants): images in
// [-1, 1] become (x - shift) / scale, [1, 3, 1, 1] each.
inline at::Tensor ImageShift(c10::Device device) {
  return at::tensor({-0.030f, -0.088f, -0.188f}, at::TensorOptions().dtype(at::kFloat)).view({1, 3, 1, 1}).to(device);
}
inline at::Tensor ImageScale(c10::Device device) {
  return at::tensor({0.458f, 0.448f, 0.450f}, at::TensorOptions().dtype(at::kFloat)).view({1, 3, 1, 1}).to(device);
}

// The tensors of a torch checkpoint's state dict (the root, or its "state_dict" entry).
absl::StatusOr<std::map<std::string, TensorView>> ReadLpipsStateDict(const std::string& path);

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
