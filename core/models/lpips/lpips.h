// LPIPS v0.1 with VGG16 features (Zhang et al. 2018), the perceptual distance
// rosinality's projector uses (lpips.PerceptualLoss(model='net-lin', net='vgg')):
// scaling layer, torchvision VGG16 features tapped after relu1_2, relu2_2, relu3_3,
// relu4_3 and relu5_3, channel-normalised, squared differences weighted by the learned
// 1x1 "lin" layers, averaged over space and summed over layers.
//
// Weights: torchvision's VGG16 ImageNet state dict (vgg16-397923af.pth; only
// features.* is read) and LPIPS's v0.1 linear layers (vgg.pth, lin0..lin4).
#ifndef GANSERVE_CORE_MODELS_LPIPS_LPIPS_H_
#define GANSERVE_CORE_MODELS_LPIPS_LPIPS_H_

#include <map>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "core/util/tensor_data.h"

namespace ganserve::core::lpips {

class Lpips {
 public:
  // NotFound for missing files; InvalidArgument naming missing or mis-shaped tensors.
  static absl::StatusOr<std::unique_ptr<Lpips>> Load(const std::string& vgg16_path, const std::string& lin_path,
                                                     const std::string& device);
  // From state dicts: VGG16 ("features.N.weight/bias") and lin ("linK.model.1.weight").
  static absl::StatusOr<std::unique_ptr<Lpips>> FromTensors(const std::map<std::string, TensorView>& vgg16,
                                                            const std::map<std::string, TensorView>& lin,
                                                            const std::string& device);
  ~Lpips();

  // Distances [N] between image batches [N, 3, H, W] in [-1, 1] (H, W >= 32).
  absl::StatusOr<FloatTensor> Distance(const FloatTensor& a, const FloatTensor& b) const;
  // The memory its weights hold.
  MemoryFootprint Footprint() const;

  struct Impl;  // lpips_impl.h: the differentiable forward
  const Impl& impl() const { return *impl_; }

 private:
  explicit Lpips(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace ganserve::core::lpips

#endif  // GANSERVE_CORE_MODELS_LPIPS_LPIPS_H_
