#include "core/models/stylegan2/random_init.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/util/np_random.h"

namespace ganserve::core::stylegan2 {

GeneratorConfig MakeConfig(int resolution, int style_dim, int n_mlp, int cm, int max_channels) {
  const std::map<int, int> table = {{4, 512},        {8, 512},       {16, 512},      {32, 512},      {64, 256 * cm},
                                    {128, 128 * cm}, {256, 64 * cm}, {512, 32 * cm}, {1024, 16 * cm}};
  std::map<int, int> channels;
  for (int r = 4; r <= resolution; r *= 2) {
    int ch = table.count(r) ? table.at(r) : 16 * cm;
    if (max_channels > 0) ch = std::min(ch, max_channels);
    channels[r] = ch;
  }
  return MakeConfigWithChannels(resolution, style_dim, n_mlp, channels);
}

GeneratorConfig MakeConfigWithChannels(int resolution, int style_dim, int n_mlp, const std::map<int, int>& channels) {
  GeneratorConfig c;
  c.resolution = resolution;
  c.style_dim = style_dim;
  c.n_mlp = n_mlp;
  int log_size = 0;
  while ((1 << log_size) < resolution) ++log_size;
  c.n_latent = 2 * log_size - 2;
  c.num_layers = 2 * (log_size - 2) + 1;
  for (int r = 4; r <= resolution; r *= 2) c.channels[r] = channels.at(r);
  auto add = [&](std::string module, int latent, int in, int out, int k, bool up, bool demod) {
    c.style_layers.push_back({std::move(module), latent, in, out, k, up, demod, c.s_dim});
    c.s_dim += in;
  };
  add("conv1", 0, c.channels[4], c.channels[4], 3, false, true);
  add("to_rgb1", 1, c.channels[4], 3, 1, false, false);
  int in_ch = c.channels[4];
  for (int i = 0; i < log_size - 2; ++i) {
    const int out_ch = c.channels[1 << (i + 3)];
    add(absl::StrCat("convs.", 2 * i), 2 * i + 1, in_ch, out_ch, 3, true, true);
    add(absl::StrCat("convs.", 2 * i + 1), 2 * i + 2, out_ch, out_ch, 3, false, true);
    add(absl::StrCat("to_rgbs.", i), 2 * i + 3, out_ch, 3, 1, false, false);
    in_ch = out_ch;
  }
  return c;
}

std::map<std::string, FloatTensor> RandomGeneratorWeights(const GeneratorConfig& c, uint32_t seed, float perturb) {
  NumpyRandomState rng(seed);
  std::map<std::string, FloatTensor> out;
  for (const auto& [name, shape] : ExpectedGeneratorTensors(c)) {
    FloatTensor t;
    t.shape = shape;
    const size_t n = static_cast<size_t>(NumElements(shape));
    const std::string& key = name;  // structured bindings cannot be captured before C++20
    auto ends_with = [&key](const char* suffix) { return absl::EndsWith(key, suffix); };
    if (ends_with("kernel")) {
      const float k[4] = {1, 3, 3, 1};
      for (int i = 0; i < 4; ++i) {
        for (int j = 0; j < 4; ++j) t.data.push_back(k[i] * k[j] / 64.0f * 4.0f);
      }
    } else if (ends_with("modulation.bias")) {
      t.data.assign(n, 1.0f);
    } else if (ends_with("bias") || ends_with("noise.weight")) {
      t.data.assign(n, 0.0f);
    } else if (absl::StartsWith(name, "style.")) {
      t.data = rng.Randn(n);
      for (auto& v : t.data) v /= c.lr_mlp;  // randn / lr_mul, as EqualLinear initialises
    } else {
      t.data = rng.Randn(n);
    }
    if (perturb > 0 && (ends_with("bias") || ends_with("noise.weight"))) {
      auto noise = rng.Randn(n);
      const float scale = absl::StartsWith(name, "style.") ? perturb / c.lr_mlp : perturb;
      for (size_t i = 0; i < n; ++i) t.data[i] += scale * noise[i];
    }
    out[name] = std::move(t);
  }
  return out;
}

DiscriminatorConfig MakeDiscriminatorConfig(const GeneratorConfig& generator) {
  DiscriminatorConfig d;
  d.resolution = generator.resolution;
  d.channels = generator.channels;
  return d;
}

std::map<std::string, FloatTensor> RandomDiscriminatorWeights(const DiscriminatorConfig& c, uint32_t seed,
                                                              float perturb) {
  NumpyRandomState rng(seed);
  std::map<std::string, FloatTensor> out;
  for (const auto& [name, shape] : ExpectedDiscriminatorTensors(c)) {
    FloatTensor t;
    t.shape = shape;
    const size_t n = static_cast<size_t>(NumElements(shape));
    if (absl::EndsWith(name, "kernel")) {
      const float k[4] = {1, 3, 3, 1};
      for (int i = 0; i < 4; ++i) {
        for (int j = 0; j < 4; ++j) t.data.push_back(k[i] * k[j] / 64.0f);
      }
    } else if (absl::EndsWith(name, "bias")) {
      t.data.assign(n, 0.0f);
      if (perturb > 0) {
        auto noise = rng.Randn(n);
        for (size_t i = 0; i < n; ++i) t.data[i] = perturb * noise[i];
      }
    } else {
      t.data = rng.Randn(n);
    }
    out[name] = std::move(t);
  }
  return out;
}

}  // namespace ganserve::core::stylegan2
