#include "core/models/stylegan2/discriminator.h"

#include "core/models/stylegan2/discriminator_impl.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>
#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <cmath>

#include <nlohmann/json.hpp>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/checkpoint/safetensors.h"
#include "core/checkpoint/torch_file.h"
#include "core/models/common/torch_convert.h"
#include "core/models/stylegan2/config.h"
#include "core/models/stylegan2/generator_impl.h"
#include "core/util/status_macros.h"

namespace ganserve::core::stylegan2 {
namespace {

const TensorView* Find(const std::map<std::string, TensorView>& t, const std::string& key) {
  auto it = t.find(key);
  return it == t.end() ? nullptr : &it->second;
}

// Blur padding before a stride-2 conv of `kernel`: the 4-tap blur and the conv's
// footprint, split evenly (both cases here are symmetric: 3x3 -> 2, 1x1 -> 1).
int DownsamplePad(int kernel) { return ((4 - 2) + (kernel - 1) + 1) / 2; }

}  // namespace

std::string DiscriminatorConfig::ToJson() const {
  nlohmann::json j;
  j["resolution"] = resolution;
  nlohmann::json ch = nlohmann::json::object();
  for (const auto& [r, c] : channels) ch[std::to_string(r)] = c;
  j["channels"] = ch;
  j["stddev_group"] = stddev_group;
  return j.dump(2);
}

absl::StatusOr<DiscriminatorConfig> InferDiscriminatorConfig(const std::map<std::string, TensorView>& t) {
  DiscriminatorConfig c;
  const TensorView* from_rgb = Find(t, "convs.0.0.weight");
  if (from_rgb == nullptr || from_rgb->shape.size() != 4 || from_rgb->shape[1] != 3) {
    return absl::InvalidArgumentError(
        "not a StyleGAN2 discriminator state dict: 'convs.0.0.weight' (the [C, 3, 1, 1] FromRGB conv) is missing or "
        "malformed");
  }
  int blocks = 0;
  while (Find(t, absl::StrCat("convs.", blocks + 1, ".conv1.0.weight")) != nullptr) ++blocks;
  if (blocks < 1 || blocks > 10) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot infer the discriminator's resolution: found ", blocks, " residual blocks"));
  }
  c.resolution = 4 << blocks;
  c.channels[c.resolution] = static_cast<int>(from_rgb->shape[0]);
  for (int i = 1; i <= blocks; ++i) {
    const TensorView* w = Find(t, absl::StrCat("convs.", i, ".conv2.1.weight"));
    if (w == nullptr || w->shape.size() != 4) {
      return absl::InvalidArgumentError(absl::StrCat("missing or malformed 'convs.", i, ".conv2.1.weight'"));
    }
    c.channels[c.resolution >> i] = static_cast<int>(w->shape[0]);
  }
  RETURN_IF_ERROR(CheckStateDict(t, ExpectedDiscriminatorTensors(c), "StyleGAN2 discriminator"));
  return c;
}

std::vector<std::pair<std::string, std::vector<int64_t>>> ExpectedDiscriminatorTensors(const DiscriminatorConfig& c) {
  std::vector<std::pair<std::string, std::vector<int64_t>>> out;
  const int64_t top = c.channels.at(c.resolution);
  out.push_back({"convs.0.0.weight", {top, 3, 1, 1}});
  out.push_back({"convs.0.1.bias", {top}});
  int i = 1;
  for (int r = c.resolution; r > 4; r /= 2, ++i) {
    const int64_t in = c.channels.at(r), o = c.channels.at(r / 2);
    const std::string p = absl::StrCat("convs.", i, ".");
    out.push_back({p + "conv1.0.weight", {in, in, 3, 3}});
    out.push_back({p + "conv1.1.bias", {in}});
    out.push_back({p + "conv2.0.kernel", {4, 4}});
    out.push_back({p + "conv2.1.weight", {o, in, 3, 3}});
    out.push_back({p + "conv2.2.bias", {o}});
    out.push_back({p + "skip.0.kernel", {4, 4}});
    out.push_back({p + "skip.1.weight", {o, in, 1, 1}});
  }
  const int64_t c4 = c.channels.at(4);
  out.push_back({"final_conv.0.weight", {c4, c4 + 1, 3, 3}});
  out.push_back({"final_conv.1.bias", {c4}});
  out.push_back({"final_linear.0.weight", {c4, c4 * 16}});
  out.push_back({"final_linear.0.bias", {c4}});
  out.push_back({"final_linear.1.weight", {1, c4}});
  out.push_back({"final_linear.1.bias", {1}});
  return out;
}

at::Tensor DiscConv::Forward(const at::Tensor& x) const {
  at::Tensor out;
  if (downsample) {
    // upfirdn2d blur (a depthwise correlation with the flipped kernel), then stride 2.
    const int pad = DownsamplePad(kernel);
    out = at::conv2d(x, blur, {}, 1, pad, 1, x.size(1));
    out = at::conv2d(out, weight, {}, 2, at::IntArrayRef{0});
  } else {
    out = at::conv2d(x, weight, {}, 1, kernel / 2);
  }
  return activate ? FusedLeakyRelu(out, bias) : out;
}

at::Tensor Discriminator::Impl::Forward(const at::Tensor& images) const {
  at::Tensor out = from_rgb.Forward(images);
  const double inv_sqrt2 = 1.0 / std::sqrt(2.0);
  for (const DiscResBlock& b : blocks) {
    at::Tensor main = b.conv2.Forward(b.conv1.Forward(out));
    out = (main + b.skip.Forward(out)) * inv_sqrt2;
  }
  const int64_t n = out.size(0), ch = out.size(1), h = out.size(2), w = out.size(3);
  const int64_t group = std::min<int64_t>(n, config.stddev_group);
  // Minibatch standard deviation: image k*M + m is grouped with the images at the same
  // m; one feature map holding the group's mean standard deviation.
  at::Tensor sd = out.view({group, -1, 1, ch, h, w});
  sd = at::sqrt(sd.var(0, /*unbiased=*/false) + 1e-8);
  sd = sd.mean({2, 3, 4}, /*keepdim=*/true).squeeze(2);
  sd = sd.repeat({group, 1, h, w});
  out = final_conv.Forward(at::cat({out, sd}, 1)).view({n, -1});
  out = FusedLeakyRelu(at::linear(out, linear0_weight), linear0_bias);
  return at::linear(out, linear1_weight, linear1_bias);
}

at::Tensor Discriminator::Impl::BlockFeatures(const at::Tensor& images, int64_t resolution) const {
  at::Tensor out = from_rgb.Forward(images);
  const double inv_sqrt2 = 1.0 / std::sqrt(2.0);
  for (const DiscResBlock& b : blocks) {
    at::Tensor main = b.conv2.Forward(b.conv1.Forward(out));
    if (main.size(2) == resolution) return main;
    out = (main + b.skip.Forward(out)) * inv_sqrt2;
  }
  TORCH_CHECK(false, "the discriminator has no block with ", resolution, " px output");
}

Discriminator::Discriminator(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Discriminator::~Discriminator() = default;
const DiscriminatorConfig& Discriminator::config() const { return impl_->config; }

Discriminator::Impl BuildDiscriminatorImpl(const DiscriminatorConfig& config,
                                           const std::map<std::string, at::Tensor>& t) {
  Discriminator::Impl impl;
  impl.config = config;
  impl.device = t.at("convs.0.0.weight").device();
  auto conv = [&](const std::string& weight, const std::string& bias, const std::string& kernel) {
    DiscConv c;
    const at::Tensor& w = t.at(weight);
    c.kernel = static_cast<int>(w.size(2));
    c.weight = w * (1.0 / std::sqrt(static_cast<double>(w.size(1)) * c.kernel * c.kernel));
    c.activate = !bias.empty();
    if (c.activate) c.bias = t.at(bias);
    c.downsample = !kernel.empty();
    if (c.downsample) {
      c.blur = at::flip(t.at(kernel).detach(), {0, 1}).view({1, 1, 4, 4}).repeat({w.size(1), 1, 1, 1});
    }
    return c;
  };
  impl.from_rgb = conv("convs.0.0.weight", "convs.0.1.bias", "");
  for (int i = 1; (config.resolution >> i) >= 4; ++i) {
    const std::string p = absl::StrCat("convs.", i, ".");
    DiscResBlock b;
    b.conv1 = conv(p + "conv1.0.weight", p + "conv1.1.bias", "");
    b.conv2 = conv(p + "conv2.1.weight", p + "conv2.2.bias", p + "conv2.0.kernel");
    b.skip = conv(p + "skip.1.weight", "", p + "skip.0.kernel");
    impl.blocks.push_back(std::move(b));
  }
  impl.final_conv = conv("final_conv.0.weight", "final_conv.1.bias", "");
  const double c4 = config.channels.at(4);
  impl.linear0_weight = t.at("final_linear.0.weight") * (1.0 / std::sqrt(c4 * 16));
  impl.linear0_bias = t.at("final_linear.0.bias");
  impl.linear1_weight = t.at("final_linear.1.weight") * (1.0 / std::sqrt(c4));
  impl.linear1_bias = t.at("final_linear.1.bias");
  impl.raw = t;
  return impl;
}

absl::StatusOr<std::unique_ptr<Discriminator>> Discriminator::FromTensors(
    const std::map<std::string, TensorView>& tensors, const std::string& device_spec) {
  ASSIGN_OR_RETURN(DiscriminatorConfig config, InferDiscriminatorConfig(tensors));
  ASSIGN_OR_RETURN(c10::Device device, ParseDevice(device_spec));
  try {
    c10::NoGradGuard no_grad;
    std::map<std::string, at::Tensor> t;
    for (const auto& [name, shape] : ExpectedDiscriminatorTensors(config)) {
      ASSIGN_OR_RETURN(t[name], ToTorchFloat(tensors.at(name), device));
    }
    auto impl = std::make_unique<Impl>(BuildDiscriminatorImpl(config, t));
    return std::unique_ptr<Discriminator>(new Discriminator(std::move(impl)));
  } catch (const c10::Error& e) {
    return TorchErrorStatus(e, "building the discriminator failed");
  }
}

absl::StatusOr<std::unique_ptr<Discriminator>> Discriminator::Load(const std::string& path, const std::string& device) {
  std::map<std::string, TensorView> tensors;  // views keep their file mapped
  if (absl::EndsWith(path, ".safetensors")) {
    ASSIGN_OR_RETURN(SafetensorsFile f, LoadSafetensors(path));
    tensors = std::move(f.tensors);
  } else {
    ASSIGN_OR_RETURN(TorchFile f, LoadTorchFile(path));
    const PyRef& root = f.root;
    if (root->kind != PyValue::Kind::kDict) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": expected a checkpoint dict, found ", root->Describe()));
    }
    PyRef sd = root->Get("d");
    if (sd == nullptr && root->Get("convs.0.0.weight") != nullptr) sd = root;
    if (sd == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat(path,
                       ": no discriminator found: the checkpoint has no 'd' entry (generator-only releases such as "
                       "exported g_ema files do not carry one; use the training checkpoint)"));
    }
    ASSIGN_OR_RETURN(tensors, StateDictTensors(sd));
  }
  auto d = FromTensors(tensors, device);
  if (!d.ok()) return absl::Status(d.status().code(), absl::StrCat(path, ": ", d.status().message()));
  return d;
}

absl::StatusOr<FloatTensor> Discriminator::Score(const FloatTensor& images) const {
  const int r = impl_->config.resolution;
  if (images.shape.size() != 4 || images.shape[1] != 3 || images.shape[2] != r || images.shape[3] != r ||
      images.shape[0] < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("images must be [N, 3, ", r, ", ", r, "], got ", ShapeString(images.shape)));
  }
  const int64_t n = images.shape[0];
  const int64_t group = std::min<int64_t>(n, impl_->config.stddev_group);
  if (n % group != 0) {
    return absl::InvalidArgumentError(absl::StrCat("a batch of ", n, " images cannot form minibatch-stddev groups of ",
                                                   group, ": send a multiple of ", group, " or fewer than ", group));
  }
  try {
    c10::InferenceMode guard;
    at::Tensor logits = impl_->Forward(ToTorch(images, impl_->device));
    return FromTorch(logits.view({n}));
  } catch (const c10::Error& e) {
    return TorchErrorStatus(e, "discriminator forward failed");
  }
}

}  // namespace ganserve::core::stylegan2
