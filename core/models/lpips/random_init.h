// Seeded random weights for StarGAN v2's AlexNet LPIPS (the real architecture,
// meaningless values), for the built-in demo pack and tests. Torch-free.
#ifndef GANSERVE_CORE_MODELS_LPIPS_RANDOM_INIT_H_
#define GANSERVE_CORE_MODELS_LPIPS_RANDOM_INIT_H_

#include <cstdint>
#include <map>
#include <string>

#include "core/util/tensor_data.h"

namespace ganserve::core::lpips {

// torchvision AlexNet's `features.{0,3,6,8,10}` (He-scaled normal weights, biases
// 0.01): what AlexLpips reads of alexnet-owt-7be5be79.pth.
std::map<std::string, FloatTensor> RandomAlexNetFeatures(uint32_t seed);
// The five 1x1 layers of lpips_weights.ckpt (|normal| * 0.1).
std::map<std::string, FloatTensor> RandomAlexLpipsLayers(uint32_t seed);

}  // namespace ganserve::core::lpips

#endif  // GANSERVE_CORE_MODELS_LPIPS_RANDOM_INIT_H_
