// The LibTorch side of the latent mapper (latent_mapper.h): its leaves, for training.
#ifndef GANSERVE_CORE_EDIT_LATENT_MAPPER_IMPL_H_
#define GANSERVE_CORE_EDIT_LATENT_MAPPER_IMPL_H_

#include <ATen/ATen.h>

#include <string>
#include <vector>

#include "core/edit/latent_mapper.h"

namespace ganserve::core::edit {

struct LatentMapper::Impl {
  MapperConfig config;
  c10::Device device = c10::kCPU;
  // In MapperTensorNames order: weight, bias per layer, sub-mapper after sub-mapper.
  std::vector<std::string> names;
  std::vector<at::Tensor> params;

  // mapper(w) for w+ [B, L, dim], differentiable in the parameters.
  at::Tensor Forward(const at::Tensor& wplus) const;
};

}  // namespace ganserve::core::edit

#endif  // GANSERVE_CORE_EDIT_LATENT_MAPPER_IMPL_H_
