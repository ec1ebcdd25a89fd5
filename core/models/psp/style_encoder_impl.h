// The LibTorch side of the pSp / e4e encoders (style_encoder.h).
#ifndef GANSERVE_CORE_MODELS_PSP_STYLE_ENCODER_IMPL_H_
#define GANSERVE_CORE_MODELS_PSP_STYLE_ENCODER_IMPL_H_

#include <ATen/ATen.h>

#include <vector>

#include "core/models/arcface/ir_se.h"
#include "core/models/psp/style_encoder.h"

namespace ganserve::core::psp {

struct GradualStyleBlock {
  std::vector<at::Tensor> conv_w, conv_b;  // stride-2 conv3x3, LeakyReLU(0.01) after each
  at::Tensor linear_w, linear_b;           // EqualLinear, lr_mul 1
  // x: [N, 512, s, s] -> [N, 512].
  at::Tensor operator()(const at::Tensor& x) const;
};

struct StyleEncoder::Impl {
  c10::Device device = c10::kCPU;
  EncoderConfig config;
  arcface::IrSeTrunk trunk;
  std::vector<GradualStyleBlock> styles;
  at::Tensor latlayer1_w, latlayer1_b, latlayer2_w, latlayer2_b;
  at::Tensor latent_avg;  // [styles, 512]; undefined unless config.start_from_latent_avg
  std::vector<at::Tensor> all;

  // x: [N, 3, 256, 256] in [-1, 1] -> the codes [N, styles, 512] before latent_avg.
  at::Tensor Codes(const at::Tensor& x) const;
  // Codes plus latent_avg where the configuration adds it.
  at::Tensor Encode(const at::Tensor& x) const;
};

}  // namespace ganserve::core::psp

#endif  // GANSERVE_CORE_MODELS_PSP_STYLE_ENCODER_IMPL_H_
