// The LibTorch side of ArcFace (arcface.h), for losses that backpropagate through it.
#ifndef GANSERVE_CORE_MODELS_ARCFACE_ARCFACE_IMPL_H_
#define GANSERVE_CORE_MODELS_ARCFACE_ARCFACE_IMPL_H_

#include <ATen/ATen.h>

#include <vector>

#include "core/models/arcface/arcface.h"
#include "core/models/arcface/ir_se.h"

namespace ganserve::core::arcface {

struct ArcFace::Impl {
  c10::Device device = c10::kCPU;
  IrSeTrunk trunk;
  BatchNorm output_bn2d, output_bn1d;
  at::Tensor linear_w, linear_b;
  std::vector<at::Tensor> all;  // every tensor, for the footprint

  // Unit features [N, 512] of [N, 3, 112, 112].
  at::Tensor Forward(const at::Tensor& x) const;
  // The official IDLoss.extract_feats: 256 px (adaptive average pooling unless already
  // 256), crop [35:223, 32:220], adaptive average pooling to 112, Forward.
  at::Tensor IdFeatures(const at::Tensor& images) const;
  // mean_i (1 - <IdFeatures(y_hat)_i, IdFeatures(y)_i>), y's features detached.
  at::Tensor IdLoss(const at::Tensor& y_hat, const at::Tensor& y) const;
};

}  // namespace ganserve::core::arcface

#endif  // GANSERVE_CORE_MODELS_ARCFACE_ARCFACE_IMPL_H_
