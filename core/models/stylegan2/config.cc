#include "core/models/stylegan2/config.h"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/util/status_macros.h"

namespace ganserve::core::stylegan2 {
namespace {

const TensorView* Find(const std::map<std::string, TensorView>& t, const std::string& key) {
  auto it = t.find(key);
  return it == t.end() ? nullptr : &it->second;
}

}  // namespace

std::string GeneratorConfig::ToJson() const {
  nlohmann::json j;
  j["resolution"] = resolution;
  j["style_dim"] = style_dim;
  j["n_mlp"] = n_mlp;
  j["n_latent"] = n_latent;
  j["num_layers"] = num_layers;
  j["lr_mlp"] = lr_mlp;
  nlohmann::json ch = nlohmann::json::object();
  for (const auto& [r, c] : channels) ch[std::to_string(r)] = c;
  j["channels"] = ch;
  j["s_dim"] = s_dim;
  if (conv_clamp > 0) j["conv_clamp"] = conv_clamp;
  nlohmann::json layers = nlohmann::json::array();
  for (const auto& l : style_layers) {
    layers.push_back({{"module", l.module},
                      {"latent_index", l.latent_index},
                      {"size", l.in_channel},
                      {"offset", l.offset},
                      {"out_channel", l.out_channel},
                      {"upsample", l.upsample},
                      {"demodulate", l.demodulate}});
  }
  j["style_layers"] = layers;
  return j.dump(2);
}

absl::StatusOr<GeneratorConfig> InferGeneratorConfig(const std::map<std::string, TensorView>& t) {
  GeneratorConfig c;
  const TensorView* s1 = Find(t, "style.1.weight");
  if (s1 == nullptr || s1->shape.size() != 2) {
    return absl::InvalidArgumentError(
        "not a StyleGAN2 generator state dict: 'style.1.weight' (the first mapping layer) is missing");
  }
  c.style_dim = static_cast<int>(s1->shape[1]);
  while (Find(t, absl::StrCat("style.", c.n_mlp + 1, ".weight")) != nullptr) ++c.n_mlp;
  int n_rgbs = 0;
  while (Find(t, absl::StrCat("to_rgbs.", n_rgbs, ".conv.weight")) != nullptr) ++n_rgbs;
  if (n_rgbs < 1 || n_rgbs > 12) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot infer the resolution: found ", n_rgbs, " 'to_rgbs.N.conv.weight' tensors"));
  }
  const int log_size = n_rgbs + 2;
  c.resolution = 1 << log_size;
  c.n_latent = 2 * log_size - 2;
  c.num_layers = 2 * (log_size - 2) + 1;
  const TensorView* input = Find(t, "input.input");
  if (input == nullptr || input->shape.size() != 4) {
    return absl::InvalidArgumentError("missing or malformed 'input.input' (the constant input)");
  }
  c.channels[4] = static_cast<int>(input->shape[1]);
  for (int i = 0; i < n_rgbs; ++i) {
    const TensorView* w = Find(t, absl::StrCat("convs.", 2 * i, ".conv.weight"));
    if (w == nullptr || w->shape.size() != 5) {
      return absl::InvalidArgumentError(absl::StrCat("missing or malformed 'convs.", 2 * i, ".conv.weight'"));
    }
    c.channels[1 << (i + 3)] = static_cast<int>(w->shape[1]);
  }
  // S-space layout, rosinality call order.
  auto add = [&](std::string module, int latent, int in, int out, int k, bool up, bool demod) {
    c.style_layers.push_back({std::move(module), latent, in, out, k, up, demod, c.s_dim});
    c.s_dim += in;
  };
  add("conv1", 0, c.channels[4], c.channels[4], 3, false, true);
  add("to_rgb1", 1, c.channels[4], 3, 1, false, false);
  int in_ch = c.channels[4];
  for (int i = 0; i < n_rgbs; ++i) {
    const int out_ch = c.channels[1 << (i + 3)];
    add(absl::StrCat("convs.", 2 * i), 2 * i + 1, in_ch, out_ch, 3, true, true);
    add(absl::StrCat("convs.", 2 * i + 1), 2 * i + 2, out_ch, out_ch, 3, false, true);
    add(absl::StrCat("to_rgbs.", i), 2 * i + 3, out_ch, 3, 1, false, false);
    in_ch = out_ch;
  }

  // Strict check of every tensor.
  RETURN_IF_ERROR(CheckStateDict(t, ExpectedGeneratorTensors(c), "StyleGAN2 generator"));
  return c;
}

absl::Status CheckStateDict(const std::map<std::string, TensorView>& t,
                            const std::vector<std::pair<std::string, std::vector<int64_t>>>& expected,
                            const std::string& what) {
  std::vector<std::string> missing, misshaped;
  for (const auto& [name, shape] : expected) {
    const TensorView* v = Find(t, name);
    if (v == nullptr) {
      missing.push_back(name);
    } else if (v->shape != shape) {
      misshaped.push_back(absl::StrCat(name, " is ", ShapeString(v->shape), ", expected ", ShapeString(shape)));
    }
  }
  if (missing.empty() && misshaped.empty()) return absl::OkStatus();
  auto first = [](const std::vector<std::string>& v, const char* sep) {
    return absl::StrCat(absl::StrJoin(v.begin(), v.begin() + std::min<size_t>(v.size(), 8), sep),
                        v.size() > 8 ? ", ..." : "");
  };
  std::string msg = absl::StrCat("incomplete ", what, ":");
  if (!missing.empty()) absl::StrAppend(&msg, " missing ", missing.size(), " tensor(s): ", first(missing, ", "), ";");
  if (!misshaped.empty()) absl::StrAppend(&msg, " wrong shape: ", first(misshaped, "; "));
  return absl::InvalidArgumentError(msg);
}

std::vector<std::pair<std::string, std::vector<int64_t>>> ExpectedGeneratorTensors(const GeneratorConfig& c) {
  std::vector<std::pair<std::string, std::vector<int64_t>>> out;
  const int64_t sd = c.style_dim;
  for (int i = 1; i <= c.n_mlp; ++i) {
    out.push_back({absl::StrCat("style.", i, ".weight"), {sd, sd}});
    out.push_back({absl::StrCat("style.", i, ".bias"), {sd}});
  }
  out.push_back({"input.input", {1, c.channels.at(4), 4, 4}});
  for (const StyleLayer& l : c.style_layers) {
    const std::string& m = l.module;
    out.push_back({m + ".conv.weight", {1, l.out_channel, l.in_channel, l.kernel_size, l.kernel_size}});
    out.push_back({m + ".conv.modulation.weight", {l.in_channel, sd}});
    out.push_back({m + ".conv.modulation.bias", {l.in_channel}});
    if (l.demodulate) {
      out.push_back({m + ".noise.weight", {1}});
      out.push_back({m + ".activate.bias", {l.out_channel}});
    } else {
      out.push_back({m + ".bias", {1, 3, 1, 1}});
      if (m != "to_rgb1") out.push_back({m + ".upsample.kernel", {4, 4}});
    }
    if (l.upsample) out.push_back({m + ".conv.blur.kernel", {4, 4}});
  }
  for (int i = 0; i < c.num_layers; ++i) {
    const int64_t r = int64_t{1} << ((i + 5) / 2);
    out.push_back({absl::StrCat("noises.noise_", i), {1, 1, r, r}});
  }
  return out;
}

}  // namespace ganserve::core::stylegan2
