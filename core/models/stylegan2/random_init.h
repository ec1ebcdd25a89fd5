// Seeded random StyleGAN2 weights with rosinality's initialisation, for the built-in
// demo model pack, benchmarks (full official sizes) and tests. Torch-free.
#ifndef GANSERVE_CORE_MODELS_STYLEGAN2_RANDOM_INIT_H_
#define GANSERVE_CORE_MODELS_STYLEGAN2_RANDOM_INIT_H_

#include <cstdint>
#include <map>
#include <string>

#include "core/models/stylegan2/config.h"
#include "core/models/stylegan2/discriminator.h"
#include "core/util/tensor_data.h"

namespace ganserve::core::stylegan2 {

// The architecture of rosinality's Generator(size, style_dim, n_mlp, channel_multiplier)
// with the official width table (512 up to 32 px, then 256*cm, 128*cm, 64*cm, 32*cm,
// 16*cm), optionally capped at `max_channels` (0 = no cap) for small demo models.
GeneratorConfig MakeConfig(int resolution, int style_dim, int n_mlp, int channel_multiplier, int max_channels = 0);
// The same architecture with the width of each resolution given (4 ... resolution; throws
// std::out_of_range for a missing one): the toy world's reduced generator.
GeneratorConfig MakeConfigWithChannels(int resolution, int style_dim, int n_mlp, const std::map<int, int>& channels);

// State dict with rosinality's initialisation: conv and linear weights ~ N(0, 1)
// (mapping weights / lr_mul), modulation biases 1, other biases and noise strengths 0,
// blur kernels [1,3,3,1] (outer product, normalised, x4), noise buffers ~ N(0, 1).
// `perturb` > 0 adds perturb * N(0, 1) to biases and noise strengths so no value is
// exactly 0 or 1 (makes tests sensitive to those terms).
std::map<std::string, FloatTensor> RandomGeneratorWeights(const GeneratorConfig& config, uint32_t seed,
                                                          float perturb = 0.0f);

// The discriminator of Discriminator(size, channel_multiplier) for a generator config
// (same widths), rosinality's initialisation: weights ~ N(0, 1), biases 0 (+ perturb *
// N(0, 1)), blur kernels [1,3,3,1] (outer product, normalised).
DiscriminatorConfig MakeDiscriminatorConfig(const GeneratorConfig& generator);
std::map<std::string, FloatTensor> RandomDiscriminatorWeights(const DiscriminatorConfig& config, uint32_t seed,
                                                              float perturb = 0.0f);

}  // namespace ganserve::core::stylegan2

#endif  // GANSERVE_CORE_MODELS_STYLEGAN2_RANDOM_INIT_H_
