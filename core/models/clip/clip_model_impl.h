// Internal, LibTorch-level view of CLIP for code that needs tensors and autograd
// (the differentiable image encoding of StyleGAN-NADA's losses).
#ifndef GANSERVE_CORE_MODELS_CLIP_CLIP_MODEL_IMPL_H_
#define GANSERVE_CORE_MODELS_CLIP_CLIP_MODEL_IMPL_H_

#include <ATen/ATen.h>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/models/clip/clip_model.h"

namespace ganserve::core::clip {

struct Block {
  at::Tensor ln1_w, ln1_b, in_w, in_b, out_w, out_b, ln2_w, ln2_b, fc_w, fc_b, proj_w, proj_b;
};

// Computed in float32 whatever x's precision (float32 parameters), back in x's type.
inline at::Tensor LayerNorm(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b) {
  if (x.scalar_type() == at::kFloat) return at::layer_norm(x, {x.size(-1)}, w, b, 1e-5);
  return at::layer_norm(x.to(at::kFloat), {x.size(-1)}, w, b, 1e-5).to(x.scalar_type());
}

// One residual attention block; x: [B, L, W] (batch first), mask: [L, L] or undefined.
inline at::Tensor ResBlock(const Block& blk, const at::Tensor& x, int heads, const at::Tensor& mask) {
  const int64_t b = x.size(0), l = x.size(1), w = x.size(2), hd = w / heads;
  at::Tensor h = LayerNorm(x, blk.ln1_w, blk.ln1_b);
  at::Tensor qkv = at::linear(h, blk.in_w, blk.in_b);  // [B, L, 3W]
  auto parts = qkv.chunk(3, -1);
  auto heads_view = [&](const at::Tensor& t) { return t.reshape({b, l, heads, hd}).transpose(1, 2); };
  at::Tensor q = heads_view(parts[0]) / std::sqrt(static_cast<double>(hd));
  at::Tensor k = heads_view(parts[1]), v = heads_view(parts[2]);
  at::Tensor att = at::matmul(q, k.transpose(-2, -1));
  if (mask.defined()) att = att + mask.to(att.scalar_type());
  att = at::softmax(att, -1);
  at::Tensor o = at::matmul(att, v).transpose(1, 2).reshape({b, l, w});
  at::Tensor x1 = x + at::linear(o, blk.out_w, blk.out_b);
  at::Tensor m = at::linear(LayerNorm(x1, blk.ln2_w, blk.ln2_b), blk.fc_w, blk.fc_b);
  m = m * at::sigmoid(1.702 * m);  // QuickGELU
  return x1 + at::linear(m, blk.proj_w, blk.proj_b);
}

struct ClipModel::Impl {
  ClipConfig config;
  c10::Device device{c10::kCPU};
  ClipPrecision precision = ClipPrecision::kFloat32;
  at::ScalarType dtype = at::kFloat;  // of the matmul weights and activations
  at::Tensor conv1, class_emb, vis_pos, ln_pre_w, ln_pre_b, ln_post_w, ln_post_b, vis_proj;
  std::vector<Block> vis_blocks, txt_blocks;
  at::Tensor tok_emb, txt_pos, ln_final_w, ln_final_b, txt_proj, causal_mask;
  float logit_scale = 0;

  // x: float32 images; returns float32 [B, embed_dim].
  at::Tensor EncodeImage(const at::Tensor& x) const {
    at::Tensor h = at::conv2d(x.to(dtype), conv1, {}, config.vision_patch_size);  // [B, W, g, g]
    const int64_t b = h.size(0);
    h = h.reshape({b, h.size(1), -1}).permute({0, 2, 1});
    h = at::cat({class_emb.to(dtype).view({1, 1, -1}).expand({b, 1, -1}), h}, 1) + vis_pos.to(dtype);
    h = LayerNorm(h, ln_pre_w, ln_pre_b);
    for (const Block& blk : vis_blocks) h = ResBlock(blk, h, config.vision_heads, at::Tensor());
    return at::matmul(LayerNorm(h.select(1, 0), ln_post_w, ln_post_b), vis_proj).to(at::kFloat);
  }

  at::Tensor EncodeText(const at::Tensor& tokens) const {
    at::Tensor h = at::embedding(tok_emb, tokens).to(dtype) + txt_pos.to(dtype);
    for (const Block& blk : txt_blocks) h = ResBlock(blk, h, config.transformer_heads, causal_mask);
    h = LayerNorm(h, ln_final_w, ln_final_b);
    at::Tensor eot = tokens.argmax(-1);
    at::Tensor rows = at::arange(tokens.size(0), tokens.options());
    return at::matmul(h.index({rows, eot}), txt_proj).to(at::kFloat);
  }
};

// Sets every tensor of `impl` (whose config, device and dtype are set) from state-dict
// tensors in OpenAI's key names: `get(key)` returns the float32 tensor on impl's device;
// matmul weights are converted to impl->dtype. With leaves that require grad (training)
// the encoders are differentiable in them. Errors of `get` are returned as they are.
absl::Status FillClipImpl(const std::function<absl::StatusOr<at::Tensor>(const std::string&)>& get,
                          ClipModel::Impl* impl);

// Differentiable preprocessing of generator output for CLIP losses, as
// StyleGAN-NADA does it: (x + 1) / 2, bicubic resize to the CLIP resolution
// (align_corners false, no antialias; square inputs need no crop), normalisation.
// images: [B, 3, H, W], nominally in [-1, 1].
inline at::Tensor PreprocessGeneratorOutput(const at::Tensor& images, int resolution) {
  at::Tensor x = (images + 1) / 2;
  if (x.size(2) != resolution || x.size(3) != resolution) {
    x = at::upsample_bicubic2d(x, {resolution, resolution}, false);
  }
  const auto opts = x.options();
  at::Tensor mean = at::tensor({0.48145466f, 0.4578275f, 0.40821073f}, opts).view({1, 3, 1, 1});
  at::Tensor std = at::tensor({0.26862954f, 0.26130258f, 0.27577711f}, opts).view({1, 3, 1, 1});
  return (x - mean) / std;
}

}  // namespace ganserve::core::clip

#endif  // GANSERVE_CORE_MODELS_CLIP_CLIP_MODEL_IMPL_H_
