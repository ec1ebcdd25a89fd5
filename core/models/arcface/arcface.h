// ArcFace IR-SE-50: TreB1eN's InsightFace Backbone(112, 50, mode='ir_se') as StyleCLIP's
// identity loss builds it (criteria/id_loss.py, weights model_ir_se50.pth), in eval mode:
//
//   input  conv3x3(3 -> 64) + BatchNorm + PReLU
//   body   24 bottleneck_IR_SE units in four stages (3, 4, 14, 3 units; depths 64, 128,
//          256, 512; the first unit of each stage has stride 2): res = BN, conv3x3,
//          PReLU, conv3x3 (stride), BN, squeeze-excitation (reduction 16); shortcut =
//          the input subsampled (MaxPool2d(1, stride)) where the depth is unchanged, else
//          conv1x1 (stride) + BN
//   output BN, (dropout: identity in eval), flatten 512 x 7 x 7, Linear -> 512, BN1d,
//          then L2-normalised.
//
// BatchNorm uses the running statistics (eps 1e-5). The identity loss (IdLoss) pools the
// image to 256 px, crops [35:223, 32:220], pools to 112 and compares the unit features.
#ifndef GANSERVE_CORE_MODELS_ARCFACE_ARCFACE_H_
#define GANSERVE_CORE_MODELS_ARCFACE_ARCFACE_H_

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/util/tensor_data.h"

namespace ganserve::core::arcface {

// The weights file the identity losses of StyleCLIP (and e4e's training) use.
inline constexpr char kArcFaceWeightsFile[] = "model_ir_se50.pth";

// The units of IR-SE-50: (in channels, depth, stride) in body order.
struct UnitShape {
  int64_t in, depth, stride;
};
std::vector<UnitShape> IrSe50Units();

class ArcFace {
 public:
  // A state dict file (torch zip or legacy; a {'state_dict': ...} wrapper is accepted).
  static absl::StatusOr<std::unique_ptr<ArcFace>> Load(const std::string& path, const std::string& device);
  // InvalidArgument naming a missing or misshapen tensor.
  static absl::StatusOr<std::unique_ptr<ArcFace>> FromTensors(const std::map<std::string, TensorView>& tensors,
                                                              const std::string& device);
  ~ArcFace();

  // Unit identity features [N, 512] of faces [N, 3, 112, 112].
  absl::StatusOr<FloatTensor> Embed(const FloatTensor& faces) const;
  // The official IDLoss features of images [N, 3, H, W] in [-1, 1] (H = W >= 64).
  absl::StatusOr<FloatTensor> IdFeatures(const FloatTensor& images) const;
  // mean_i (1 - <f(y_hat_i), f(y_i)>), the official IDLoss(y_hat, y).
  absl::StatusOr<float> IdLoss(const FloatTensor& y_hat, const FloatTensor& y) const;
  MemoryFootprint Footprint() const;

  struct Impl;  // arcface_impl.h: the differentiable forward
  const Impl& impl() const { return *impl_; }

 private:
  explicit ArcFace(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace ganserve::core::arcface

#endif  // GANSERVE_CORE_MODELS_ARCFACE_ARCFACE_H_
