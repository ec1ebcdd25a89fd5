// The IR-SE-50 trunk that ArcFace (arcface.h) and the pSp / e4e encoders
// (core/models/psp) share: TreB1eN's input layer and bottleneck_IR_SE units, eval mode,
// read from state-dict names "input_layer.*" and "body.N.*".
//
//   input  conv3x3(3 -> 64, no bias) + BatchNorm + PReLU
//   body   24 units in four stages (3, 4, 14, 3 units; depths 64, 128, 256, 512; the
//          first unit of each stage has stride 2): res = BN, conv3x3, PReLU, conv3x3
//          (stride), BN, squeeze-excitation (reduction 16); shortcut = the input
//          subsampled (MaxPool2d(1, stride)) where the depth is unchanged, else conv1x1
//          (stride) + BN.
#ifndef GANSERVE_CORE_MODELS_ARCFACE_IR_SE_H_
#define GANSERVE_CORE_MODELS_ARCFACE_IR_SE_H_

#include <ATen/ATen.h>

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/models/arcface/arcface.h"
#include "core/util/tensor_data.h"

namespace ganserve::core::arcface {

// Eval-mode BatchNorm (running statistics, eps 1e-5), as torch.nn.BatchNorm*d.
struct BatchNorm {
  at::Tensor weight, bias, mean, var;  // [C]
  at::Tensor operator()(const at::Tensor& x) const {
    return at::batch_norm(x, weight, bias, mean, var, /*training=*/false, 0.1, 1e-5, /*cudnn_enabled=*/true);
  }
};

struct Unit {
  UnitShape shape;
  BatchNorm bn_in, bn_out, shortcut_bn;
  at::Tensor conv1, prelu, conv2, se_fc1, se_fc2, shortcut_conv;  // shortcut_conv undefined: subsampling
  // h: [N, in, H, W] -> [N, depth, H / stride, W / stride].
  at::Tensor operator()(const at::Tensor& h) const;
};

struct IrSeTrunk {
  at::Tensor input_conv, input_prelu;
  BatchNorm input_bn;
  std::vector<Unit> units;
  // x: [N, 3, H, W] -> [N, 64, H, W].
  at::Tensor Input(const at::Tensor& x) const;
};

// Named, shape-checked tensors of one state dict copied onto a device; `what` names the
// network in errors ("ArcFace tensor 'body.3.res_layer.1.weight' is missing").
class StateReader {
 public:
  StateReader(const std::map<std::string, TensorView>& tensors, c10::Device device, std::string what,
              std::vector<at::Tensor>* all)
      : t_(tensors), d_(device), what_(std::move(what)), all_(all) {}
  // InvalidArgument naming a missing or misshapen tensor.
  absl::StatusOr<at::Tensor> Get(const std::string& name, const std::vector<int64_t>& shape);
  absl::StatusOr<BatchNorm> Bn(const std::string& prefix, int64_t channels);
  absl::StatusOr<IrSeTrunk> Trunk();  // input_layer.*, body.* of IR-SE-50

 private:
  const std::map<std::string, TensorView>& t_;
  c10::Device d_;
  std::string what_;
  std::vector<at::Tensor>* all_;  // every tensor read, for footprints
};

}  // namespace ganserve::core::arcface

#endif  // GANSERVE_CORE_MODELS_ARCFACE_IR_SE_H_
