// LibTorch-level discriminator forward, for training code that needs autograd.
#ifndef GANSERVE_CORE_MODELS_STYLEGAN2_DISCRIMINATOR_IMPL_H_
#define GANSERVE_CORE_MODELS_STYLEGAN2_DISCRIMINATOR_IMPL_H_

#include <ATen/ATen.h>

#include <map>
#include <string>
#include <vector>

#include "core/models/stylegan2/discriminator.h"

namespace ganserve::core::stylegan2 {

// An equalized conv (weight pre-scaled by 1/sqrt(fan_in)) with optional blur-before-
// stride-2 downsampling and an optional fused leaky ReLU.
struct DiscConv {
  at::Tensor weight;  // [out, in, k, k], scaled
  at::Tensor bias;    // [out] activation bias, or undefined (skip convs have none)
  at::Tensor blur;    // [in, 1, 4, 4] depthwise blur, only when downsampling
  int kernel = 1;
  bool downsample = false;
  bool activate = true;

  at::Tensor Forward(const at::Tensor& x) const;
};

struct DiscResBlock {
  DiscConv conv1, conv2, skip;
};

struct Discriminator::Impl {
  DiscriminatorConfig config;
  c10::Device device{c10::kCPU};
  DiscConv from_rgb;
  std::vector<DiscResBlock> blocks;
  DiscConv final_conv;
  at::Tensor linear0_weight, linear0_bias, linear1_weight, linear1_bias;  // scaled
  // The state dict the tensors above were built from (raw checkpoint units), for
  // training code that starts from it.
  std::map<std::string, at::Tensor> raw;

  // images [N, 3, R, R] -> logits [N, 1]. Differentiable.
  at::Tensor Forward(const at::Tensor& images) const;
  // The second convolution's output (before the residual sum) of the block whose output
  // has `resolution` pixels per side: OneshotCLIP's patch-level feature map. Runs only
  // the layers up to it. InvalidArgument-style c10::Error when no block has it.
  at::Tensor BlockFeatures(const at::Tensor& images, int64_t resolution) const;
};

// Builds the forward's (scaled) tensors from raw state-dict tensors, on their device. With
// tensors that require grad the result is differentiable in them (training rebuilds it
// from its leaves after each update).
Discriminator::Impl BuildDiscriminatorImpl(const DiscriminatorConfig& config,
                                           const std::map<std::string, at::Tensor>& raw);

}  // namespace ganserve::core::stylegan2

#endif  // GANSERVE_CORE_MODELS_STYLEGAN2_DISCRIMINATOR_IMPL_H_
