// The shape of a rosinality StyleGAN2 generator, inferred from checkpoint tensors.
#ifndef GANSERVE_CORE_MODELS_STYLEGAN2_CONFIG_H_
#define GANSERVE_CORE_MODELS_STYLEGAN2_CONFIG_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/util/tensor_data.h"

namespace ganserve::core::stylegan2 {

// One modulated convolution as seen from S space (StyleSpace).
struct StyleLayer {
  std::string module;  // "conv1", "to_rgb1", "convs.0", "to_rgbs.0", ...
  int latent_index;    // the w+ row it consumes
  int in_channel;      // = its style vector's length
  int out_channel;
  int kernel_size;
  bool upsample;
  bool demodulate;  // false for ToRGB
  int64_t offset;   // start of its style in the flat S vector
};

struct GeneratorConfig {
  int resolution = 0;
  int style_dim = 0;
  int n_mlp = 0;
  int n_latent = 0;    // 2*log2(resolution) - 2
  int num_layers = 0;  // noise inputs: 2*(log2(resolution) - 2) + 1
  float lr_mlp = 0.01f;
  // Feature-map channels per resolution (4, 8, ..., resolution).
  std::map<int, int> channels;
  // S space layout in rosinality call order, ToRGB included.
  std::vector<StyleLayer> style_layers;
  int64_t s_dim = 0;
  // NVIDIA's conv_clamp (stylegan2-ada-pytorch training configs use 256): every layer's
  // output after its bias and activation is clamped to [-conv_clamp, conv_clamp]. 0 =
  // none (rosinality's generator never clamps). Not inferable from tensors: LoadOptions.
  float conv_clamp = 0;

  // JSON text for `ganctl local inspect` and logs.
  std::string ToJson() const;
};

// Infers the configuration from a state dict's names and shapes (size, style dim,
// mapping depth and per-resolution widths are not stored in checkpoints).
// InvalidArgument naming the offending keys if the tensors do not form a complete
// generator: a missing tensor, a wrong shape, or a gap in the layer numbering.
absl::StatusOr<GeneratorConfig> InferGeneratorConfig(const std::map<std::string, TensorView>& tensors);

// InvalidArgument "incomplete <what>: missing N tensor(s): ...; wrong shape: ..." (the
// first 8 of each) unless every expected tensor is present with its shape.
absl::Status CheckStateDict(const std::map<std::string, TensorView>& tensors,
                            const std::vector<std::pair<std::string, std::vector<int64_t>>>& expected,
                            const std::string& what);

// The tensor names and shapes a generator of `config` needs, in a stable order.
std::vector<std::pair<std::string, std::vector<int64_t>>> ExpectedGeneratorTensors(const GeneratorConfig& config);

}  // namespace ganserve::core::stylegan2

#endif  // GANSERVE_CORE_MODELS_STYLEGAN2_CONFIG_H_
