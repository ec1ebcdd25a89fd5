// Seeded random weights for ArcFace IR-SE-50 (the real architecture, meaningless
// values), for tests and benchmarks. Torch-free.
#ifndef GANSERVE_CORE_MODELS_ARCFACE_RANDOM_INIT_H_
#define GANSERVE_CORE_MODELS_ARCFACE_RANDOM_INIT_H_

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "core/util/np_random.h"
#include "core/util/tensor_data.h"

namespace ganserve::core::arcface {

// Every tensor of Backbone(112, 50, 'ir_se') in its state dict's order (input_layer,
// output_layer, then body; num_batches_tracked left out), each drawn with one
// rs->Randn(numel) and shaped by its kind: convolution and linear weights He-scaled
// (x sqrt(2 / fan_in)), BatchNorm weights 1 + 0.1 x except 0.1 + 0.01 x for the BN that
// closes each residual branch (small branches keep the random network well conditioned,
// so its outputs do not amplify float rounding), biases and running means 0.1 x, running
// variances 1 + 0.1 |x|, PReLU slopes 0.25 + 0.05 x (float32 arithmetic).
std::vector<std::pair<std::string, FloatTensor>> RandomArcFaceWeights(NumpyRandomState* rs);

// How a drawn x ~ N(0, 1) becomes a weight (the rules above; kUnit keeps x).
enum class InitRule { kHe, kBnWeight, kResidualBnWeight, kBias, kMean, kVar, kPrelu, kUnit };

// Draws named tensors in call order, one rs->Randn(numel) each, shaped by a rule; the
// other IR-SE networks (core/models/psp) draw their trunks with it.
class RandomWeightDraw {
 public:
  explicit RandomWeightDraw(NumpyRandomState* rs) : rs_(rs) {}
  void Add(const std::string& name, std::vector<int64_t> shape, InitRule rule);
  void Bn(const std::string& prefix, int64_t channels, InitRule weight = InitRule::kBnWeight);
  void InputLayer();  // input_layer.*
  void Body();        // body.* of IR-SE-50
  std::vector<std::pair<std::string, FloatTensor>> Take() { return std::move(out_); }

 private:
  NumpyRandomState* rs_;
  std::vector<std::pair<std::string, FloatTensor>> out_;
};
std::map<std::string, FloatTensor> RandomArcFaceWeights(uint32_t seed);

}  // namespace ganserve::core::arcface

#endif  // GANSERVE_CORE_MODELS_ARCFACE_RANDOM_INIT_H_
