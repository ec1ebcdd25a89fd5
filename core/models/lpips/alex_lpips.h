// StarGAN v2's AlexNet LPIPS, the perceptual loss of OneshotCLIP's reference alignment
// (cyclomon/OneshotCLIP metrics/lpips.py): images shifted and scaled by LPIPS's
// constants, torchvision AlexNet features tapped after each of its five ReLUs, each map
// scaled to unit channel norm (x * rsqrt(sum x^2 + 1e-10)), squared differences weighted
// by a bias-free 1x1 convolution per tap, averaged over space and summed over taps.
// The official loss is one number for a batch: the mean of Distance() over it.
//
// Weights: torchvision's AlexNet ImageNet state dict (alexnet-owt-7be5be79.pth; only
// features.{0,3,6,8,10} are read) and the 1x1 layers of StarGAN v2's lpips_weights.ckpt
// (lpips_weights.{0..4}.main.1.weight).
#ifndef GANSERVE_CORE_MODELS_LPIPS_ALEX_LPIPS_H_
#define GANSERVE_CORE_MODELS_LPIPS_ALEX_LPIPS_H_

#include <map>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "core/util/tensor_data.h"

namespace ganserve::core::lpips {

class AlexLpips {
 public:
  // NotFound for missing files; InvalidArgument naming missing or mis-shaped tensors.
  static absl::StatusOr<std::unique_ptr<AlexLpips>> Load(const std::string& alexnet_path,
                                                         const std::string& weights_path, const std::string& device);
  static absl::StatusOr<std::unique_ptr<AlexLpips>> FromTensors(const std::map<std::string, TensorView>& alexnet,
                                                                const std::map<std::string, TensorView>& weights,
                                                                const std::string& device);
  ~AlexLpips();

  // Per-image distances [N] between batches [N, 3, H, W] in [-1, 1] (H, W >= 32).
  absl::StatusOr<FloatTensor> Distance(const FloatTensor& a, const FloatTensor& b) const;
  MemoryFootprint Footprint() const;

  struct Impl;  // alex_lpips_impl.h: the differentiable forward
  const Impl& impl() const { return *impl_; }

 private:
  explicit AlexLpips(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace ganserve::core::lpips

#endif  // GANSERVE_CORE_MODELS_LPIPS_ALEX_LPIPS_H_
