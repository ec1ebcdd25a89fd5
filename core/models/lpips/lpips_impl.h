// LibTorch-level LPIPS forward, differentiable, for optimisation losses.
#ifndef GANSERVE_CORE_MODELS_LPIPS_LPIPS_IMPL_H_
#define GANSERVE_CORE_MODELS_LPIPS_LPIPS_IMPL_H_

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "core/models/common/torch_convert.h"
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

// Per-image distances of two image batches through `forward` (a variant's Impl::Forward):
// the shapes checked ([N, 3, H, W] alike, H, W >= 32), LibTorch errors as a status.
template <typename Impl>
absl::StatusOr<FloatTensor> LpipsDistance(const Impl& impl, const FloatTensor& a, const FloatTensor& b) {
  if (a.shape.size() != 4 || a.shape[1] != 3 || a.shape != b.shape || a.shape[2] < 32 || a.shape[3] < 32) {
    return absl::InvalidArgumentError(
        absl::StrCat("LPIPS needs two [N, 3, H, W] batches of the same shape, H, W >= 32; got ", ShapeString(a.shape),
                     " and ", ShapeString(b.shape)));
  }
  try {
    c10::InferenceMode guard;
    return FromTorch(impl.Forward(ToTorch(a, impl.device), ToTorch(b, impl.device)));
  } catch (const c10::Error& e) {
    return TorchErrorStatus(e, "LPIPS failed");
  }
}

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
