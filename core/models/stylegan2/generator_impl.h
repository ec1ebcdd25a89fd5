// Internal, LibTorch-level view of the StyleGAN2 generator, for code that needs
// tensors and autograd (domain adaptation, inversion, editing). Not part of the
// torch-free public API in generator.h.
#ifndef GANSERVE_CORE_MODELS_STYLEGAN2_GENERATOR_IMPL_H_
#define GANSERVE_CORE_MODELS_STYLEGAN2_GENERATOR_IMPL_H_

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "core/models/stylegan2/generator.h"

namespace ganserve::core::stylegan2 {

inline constexpr double kLeakySlope = 0.2;
inline const double kActGain = std::sqrt(2.0);

// fused_leaky_relu: leaky_relu(x + bias, 0.2) * sqrt(2), bias over dim 1.
inline at::Tensor FusedLeakyRelu(const at::Tensor& x, const at::Tensor& bias) {
  std::vector<int64_t> shape(static_cast<size_t>(x.dim()), 1);
  shape[1] = bias.size(0);
  return at::leaky_relu(x + bias.view(shape), kLeakySlope) * kActGain;
}

// The same on a fresh intermediate that no one else holds, in place (one buffer instead
// of three passes' temporaries) when no autograd graph is being recorded for it.
inline at::Tensor FusedLeakyReluOwned(at::Tensor x, const at::Tensor& bias) {
  if (x.requires_grad()) return FusedLeakyRelu(x, bias);
  std::vector<int64_t> shape(static_cast<size_t>(x.dim()), 1);
  shape[1] = bias.size(0);
  x.add_(bias.view(shape));
  at::leaky_relu_(x, kLeakySlope);
  return x.mul_(kActGain);
}

// conv_transpose2d(x, w^T, stride 2, no padding) for a 3x3 kernel, then the depthwise
// blur with padding 1: the upsampling convolution of StyleGAN2. x: [N, groups * in, H, W];
// `weight` in convolution layout [groups * out, in, 3, 3]; `blur`: [out, 1, 4, 4]. Returns
// [N * groups, out, 2H, 2W] (the groups become the batch).
//
// On CPU LibTorch 1.13 has no oneDNN transposed convolution: it runs them in its
// col2im fallback (slow_conv_transpose2d), profiled at 43-160 GFLOP/s against 200-275
// for the stride-1 convolutions of the same render, a third of the render's time. This
// form (UpsampleMode::kPhases) runs the same products as four stride-1 (oneDNN)
// convolutions; whole renders and training steps measured no faster with it on one
// Intel CPU and peaked higher in memory (docs/benchmarks.md), so it is an option, not
// the default. The four convolutions are one per (row, column) parity
// of the transposed convolution's output: even output rows take kernel row 1, odd ones
// rows 2 and 0 (likewise for columns). The input is padded (1 before, 2 after) so that
// all four phases give (H+2) x (W+2) values; interleaved, they are the transposed
// convolution's output framed by the blur's zero padding (one leading and two trailing
// zero rows and columns), so the blur runs unpadded on its first 2H+3 rows and columns.
inline at::Tensor UpConvPhases(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& blur, int64_t groups) {
  const int64_t h = x.size(2), w = x.size(3);
  const at::Tensor xq = at::constant_pad_nd(x, {1, 2, 1, 2});
  auto taps = [](const at::Tensor& k, int64_t dim, bool odd) {
    // odd: kernel taps {2, 0}; even: tap {1}.
    return odd ? k.slice(dim, 0, 3, 2).flip({dim}) : k.narrow(dim, 1, 1);
  };
  auto phase = [&](bool odd_row, bool odd_col) {
    const at::Tensor k = taps(taps(weight, 2, odd_row), 3, odd_col).contiguous();
    return at::conv2d(xq, k, {}, 1, at::IntArrayRef{0}, 1, groups).narrow(2, 0, h + 2).narrow(3, 0, w + 2);
  };
  // [B, O, H+2, 2, W+2, 2] -> [B, O, 2H+4, 2W+4]: row 2m + r holds phase r's row m.
  const at::Tensor rows0 = at::stack({phase(false, false), phase(false, true)}, -1);
  const at::Tensor rows1 = at::stack({phase(true, false), phase(true, true)}, -1);
  const at::Tensor up = at::stack({rows0, rows1}, 3);
  const at::Tensor framed = up.reshape({-1, blur.size(0), 2 * h + 4, 2 * w + 4});
  return at::conv2d(framed.narrow(2, 0, 2 * h + 3).narrow(3, 0, 2 * w + 3), blur, {}, 1, at::IntArrayRef{0}, 1,
                    blur.size(0));
}

// The same with LibTorch's transposed convolution (the reference form, the default).
inline at::Tensor UpConvTransposed(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& blur,
                                   int64_t groups) {
  const int64_t out = weight.size(0) / groups, in = weight.size(1), k = weight.size(2);
  const at::Tensor wt = weight.view({groups, out, in, k, k}).transpose(1, 2).reshape({groups * in, out, k, k});
  const at::Tensor y = at::conv_transpose2d(x, wt, {}, /*stride=*/2, /*padding=*/0, /*output_padding=*/0, groups);
  return at::conv2d(y.view({-1, blur.size(0), y.size(2), y.size(3)}), blur, {}, 1, 1, 1, blur.size(0));
}

inline at::Tensor UpConv(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& blur, int64_t groups,
                         bool phases) {
  return phases ? UpConvPhases(x, weight, blur, groups) : UpConvTransposed(x, weight, blur, groups);
}

// One modulated convolution with its style affine; weights pre-scaled by their
// equalized-lr constants (the same products the reference forms at run time).
struct ModConv {
  at::Tensor weight;      // [out, in, k, k] * 1/sqrt(in*k*k)
  at::Tensor mod_weight;  // [in, style_dim] * 1/sqrt(style_dim)
  at::Tensor mod_bias;    // [in]
  at::Tensor blur;        // [out, 1, 4, 4] flipped blur kernel (upsampling convs)
  int in_channel = 0, out_channel = 0, kernel = 0;
  bool upsample = false, demodulate = true;

  at::Tensor Style(const at::Tensor& w) const { return at::linear(w, mod_weight, mod_bias); }

  // x: [B, in, H, W]; style: [B, in]. Returns [B, out, H', W'] (H' = 2H when upsampling).
  // phases: the upsampling convolution's form (UpsampleMode). `post_demod` ([B, in] or
  // undefined): per-sample factors of the kernel's input channels applied after
  // demodulation (HyperDomainNet). `kernel_add` ([B, out, in, 1 or k, 1 or k] or undefined):
  // per-sample offsets of the (scaled) kernel; these run in the grouped form.
  at::Tensor Forward(const at::Tensor& x, const at::Tensor& style, bool grouped, bool phases,
                     const at::Tensor& post_demod = {}, const at::Tensor& kernel_add = {}) const {
    return grouped || kernel_add.defined() ? ForwardGrouped(x, style, phases, post_demod, kernel_add)
                                           : ForwardScaled(x, style, phases, post_demod);
  }

  // rosinality's fused=False path: scale the activations by the style, convolve with
  // the shared weight, scale the output by the demodulation coefficients. One large
  // convolution instead of a grouped one per sample.
  at::Tensor ForwardScaled(const at::Tensor& x, const at::Tensor& style, bool phases,
                           const at::Tensor& post_demod = {}) const {
    const int64_t b = x.size(0);
    const at::Tensor scale = post_demod.defined() ? style * post_demod : style;
    at::Tensor in = x * scale.view({b, in_channel, 1, 1});
    at::Tensor out;
    if (upsample) {
      out = UpConv(in, weight, blur, 1, phases);
    } else {
      out = at::conv2d(in, weight, {}, 1, kernel / 2);
    }
    if (demodulate) {
      // sum over i, k of (W[o,i,k] s[i])^2 = sum_i s[i]^2 sum_k W[o,i,k]^2: one [B, in] x
      // [in, out] product instead of a [B, out, in, k, k] tensor (the same sum, summed in
      // another order).
      const at::Tensor sq = at::matmul(style * style, weight.pow(2).sum({2, 3}).t());
      out = out * at::rsqrt(sq + 1e-8).view({b, out_channel, 1, 1});
    }
    return out;
  }

  // rosinality's fused=True path (the reference fixtures' path): per-sample weights,
  // one grouped convolution.
  at::Tensor ForwardGrouped(const at::Tensor& x, const at::Tensor& style, bool phases,
                            const at::Tensor& post_demod = {}, const at::Tensor& kernel_add = {}) const {
    const int64_t b = x.size(0), h = x.size(2), w = x.size(3);
    const at::Tensor base = kernel_add.defined() ? weight.unsqueeze(0) + kernel_add : weight.unsqueeze(0);
    at::Tensor wt = base * style.view({b, 1, in_channel, 1, 1});
    if (demodulate) {
      at::Tensor demod = at::rsqrt(wt.pow(2).sum({2, 3, 4}) + 1e-8);
      wt = wt * demod.view({b, out_channel, 1, 1, 1});
    }
    if (post_demod.defined()) wt = wt * post_demod.view({b, 1, in_channel, 1, 1});
    at::Tensor in = x.reshape({1, b * in_channel, h, w});
    wt = wt.view({b * out_channel, in_channel, kernel, kernel});
    if (upsample) {
      // Blur: upfirdn2d with pad (1, 1), a depthwise convolution with the flipped kernel.
      at::Tensor out = UpConv(in, wt, blur, /*groups=*/b, phases);
      return out.view({b, out_channel, out.size(2), out.size(3)});
    }
    at::Tensor out = at::conv2d(in, wt, {}, 1, kernel / 2, 1, b);
    return out.view({b, out_channel, h, w});
  }
};

// A lightweight domain on a generator's device, by S layer (config.style_layers order);
// an entry is undefined where the domain changes nothing. Training builds one from its
// leaves each step; Generator::MakeDomain from stored tensors.
struct Domain::Impl {
  DomainKind kind = DomainKind::kDomainModulation;
  const void* weights = nullptr;  // the Generator::Impl it belongs to
  int64_t parameters = 0;
  std::vector<at::Tensor> offset;    // kDomainModulation: d [in]; kStyleSpaceDirection: [in]
  std::vector<at::Tensor> affine_u;  // kAffineLight: [in, r]
  std::vector<at::Tensor> affine_v;  // kAffineLight: [r, style_dim] * 1/sqrt(style_dim) (the affine's gain)
  std::vector<at::Tensor> kernel;    // kAffineLight: [out, in, 1, 1] * the kernel's 1/sqrt(in k k)
  DomainTensors source;              // what it was made from (host; exports)
};

// What the domains of a batch do to one S layer (undefined: nothing).
struct LayerDomain {
  at::Tensor style_add;   // [B, in], added to the style
  at::Tensor post_demod;  // [B, in], ModConv::Forward
  at::Tensor kernel_add;  // [B, out, in, 1, 1], ModConv::Forward
};

// Per S layer, what `per_image` (one entry per batch row, null = no domain) does; empty
// when no row has a domain. wplus [B, n_latent, style_dim] (AffineLight+ offsets depend
// on w; undefined for S-space input, where such domains throw).
std::vector<LayerDomain> BatchDomains(const GeneratorConfig& config, const std::vector<const Domain::Impl*>& per_image,
                                      const at::Tensor& wplus);

struct StyledConv {
  ModConv conv;
  at::Tensor noise_weight;  // [1]
  at::Tensor act_bias;      // [out]
};

struct ToRgb {
  ModConv conv;
  at::Tensor bias;      // [1, 3, 1, 1]
  at::Tensor upsample;  // [3, 1, 4, 4] skip upsampling kernel (none for to_rgb1)
};

struct Generator::Impl {
  GeneratorConfig config;
  c10::Device device{c10::kCPU};
  ModConvMode modconv = ModConvMode::kAuto;
  // Upsampling convolutions as four phase convolutions (UpsampleMode::kPhases).
  bool upsample_phases = false;

  // Auto is the grouped form everywhere: choosing the form by batch size would make an
  // image's last bits depend on its batch companions even more, and on CPU the scaled
  // form measured no faster (bench/). (oneDNN may still pick different algorithms for
  // different group counts: results agree to float rounding across batch sizes, and
  // bit for bit only for the same batch composition.)
  bool UseGrouped(int64_t /*batch*/) const { return true; }
  std::vector<at::Tensor> map_weight, map_bias;  // pre-scaled
  at::Tensor const_input;                        // [1, C, 4, 4]
  StyledConv conv1;
  ToRgb to_rgb1;
  std::vector<StyledConv> convs;
  std::vector<ToRgb> to_rgbs;
  std::vector<at::Tensor> noises;  // [1, 1, r, r]
  at::Tensor mean_latent;          // [style_dim]
  FloatTensor mean_latent_host;
  bool mean_from_checkpoint = false;
  std::map<std::string, FloatTensor> state_dict;

  at::Tensor Map(const at::Tensor& z) const {
    at::Tensor x = z * at::rsqrt(z.pow(2).mean(1, true) + 1e-8);
    for (size_t i = 0; i < map_weight.size(); ++i) {
      x = FusedLeakyRelu(at::linear(x, map_weight[i]), map_bias[i]);
    }
    return x;
  }

  // The per-layer modulated convs in S-space order.
  std::vector<const ModConv*> StyleOrder() const {
    std::vector<const ModConv*> out{&conv1.conv, &to_rgb1.conv};
    for (size_t j = 0; j < to_rgbs.size(); ++j) {
      out.push_back(&convs[2 * j].conv);
      out.push_back(&convs[2 * j + 1].conv);
      out.push_back(&to_rgbs[j].conv);
    }
    return out;
  }

  // NVIDIA's conv_clamp on a layer's output (after bias and activation); none at 0.
  at::Tensor Clamp(at::Tensor x) const {
    const double c = config.conv_clamp;
    if (c <= 0) return x;
    return x.requires_grad() ? x.clamp(-c, c) : x.clamp_(-c, c);
  }

  // The style of every S layer from w+ [B, n_latent, style_dim].
  std::vector<at::Tensor> Styles(const at::Tensor& wplus) const {
    std::vector<at::Tensor> styles;
    const auto order = StyleOrder();
    for (size_t i = 0; i < order.size(); ++i) {
      styles.push_back(order[i]->Style(wplus.select(1, config.style_layers[i].latent_index)));
    }
    return styles;
  }

  // Renders w+ with `noise` in `domain` (null: none), differentiably: what training,
  // inversion and latent optimisation run. `form`: the modulated convolutions' form for
  // this call (kAuto: the generator's).
  at::Tensor RenderWPlus(const at::Tensor& wplus, const std::vector<at::Tensor>& noise,
                         const Domain::Impl* domain = nullptr, ModConvMode form = ModConvMode::kAuto) const {
    if (domain == nullptr) return Synthesize(Styles(wplus), noise, {}, 1, 0, std::numeric_limits<size_t>::max(), form);
    const std::vector<const Domain::Impl*> rows(static_cast<size_t>(wplus.size(0)), domain);
    return Synthesize(Styles(wplus), noise, BatchDomains(config, rows, wplus), 1, 0, std::numeric_limits<size_t>::max(),
                      form);
  }

  // styles: one [B, in] per S layer. noise: one [B or 1, 1, r, r] per layer or empty.
  // domain: BatchDomains (empty: none). Runs of `group` rows share the S layers before
  // `shared_layers` (checked by the caller): those run on one row per group. blocks:
  // the upsampling blocks to run (all by default; fewer stop at a partial image).
  // form: the modulated convolutions' form (kAuto: the generator's).
  at::Tensor Synthesize(const std::vector<at::Tensor>& styles, const std::vector<at::Tensor>& noise,
                        const std::vector<LayerDomain>& domain = {}, int64_t group = 1, size_t shared_layers = 0,
                        size_t blocks = std::numeric_limits<size_t>::max(),
                        ModConvMode form = ModConvMode::kAuto) const {
    const int64_t b = styles[0].size(0);
    const ModConvMode m = form == ModConvMode::kAuto ? modconv : form;
    const bool grouped = m == ModConvMode::kGrouped || (m == ModConvMode::kAuto && UseGrouped(b));
    // Inputs of S layer `layer`: one row per group before the shared layers end.
    auto rows = [&](const at::Tensor& t, size_t layer) {
      return layer < shared_layers && t.size(0) == b ? t.slice(0, 0, b, group) : t;
    };
    at::Tensor x, skip;
    bool one_per_group = group > 1 && shared_layers > 0;
    auto enter = [&](size_t layer) {
      if (one_per_group && layer >= shared_layers) {
        x = x.repeat_interleave(group, 0);
        if (skip.defined()) skip = skip.repeat_interleave(group, 0);
        one_per_group = false;
      }
    };
    // The style of S layer `layer` with its domain's effects, for its rows.
    auto forward = [&](const ModConv& c, size_t layer) {
      if (domain.empty()) return c.Forward(x, rows(styles[layer], layer), grouped, upsample_phases);
      const LayerDomain& d = domain[layer];
      const at::Tensor s = d.style_add.defined() ? styles[layer] + d.style_add : styles[layer];
      auto opt = [&](const at::Tensor& t) { return t.defined() ? rows(t, layer) : t; };
      return c.Forward(x, rows(s, layer), grouped, upsample_phases, opt(d.post_demod), opt(d.kernel_add));
    };
    auto styled = [&](const StyledConv& c, size_t layer, size_t noise_idx) {
      enter(layer);
      at::Tensor out = forward(c.conv, layer);
      if (!noise.empty()) {
        const at::Tensor n = rows(noise[noise_idx], layer);
        out = out.requires_grad() ? out + c.noise_weight * n : out.add_(c.noise_weight * n);
      }
      x = Clamp(FusedLeakyReluOwned(out, c.act_bias));
    };
    auto rgb = [&](const ToRgb& t, size_t layer) {
      enter(layer);
      at::Tensor out = Clamp(forward(t.conv, layer) + t.bias);
      if (skip.defined()) {
        out = out + at::conv_transpose2d(skip, t.upsample, {}, 2, 1, 0, 3);
      }
      skip = out;
    };
    x = const_input.expand({one_per_group ? b / group : b, -1, -1, -1});
    styled(conv1, 0, 0);
    rgb(to_rgb1, 1);
    for (size_t j = 0; j < std::min(blocks, to_rgbs.size()); ++j) {
      styled(convs[2 * j], 2 + 3 * j, 1 + 2 * j);
      styled(convs[2 * j + 1], 3 + 3 * j, 2 + 2 * j);
      rgb(to_rgbs[j], 4 + 3 * j);
    }
    if (one_per_group) skip = skip.repeat_interleave(group, 0);  // every layer run was shared
    return skip;
  }
};

}  // namespace ganserve::core::stylegan2

#endif  // GANSERVE_CORE_MODELS_STYLEGAN2_GENERATOR_IMPL_H_
