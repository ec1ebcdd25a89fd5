// Seeded random weights for the pSp / e4e encoders (the real architecture, meaningless
// values), for tests and benchmarks. Torch-free.
#ifndef GANSERVE_CORE_MODELS_PSP_RANDOM_INIT_H_
#define GANSERVE_CORE_MODELS_PSP_RANDOM_INIT_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "core/util/np_random.h"
#include "core/util/tensor_data.h"

namespace ganserve::core::psp {

// Every tensor of Encoder4Editing / GradualStyleEncoder (the same state dict) with
// `styles` heads, in its state dict's order (input_layer, body, styles, latlayer1,
// latlayer2; num_batches_tracked left out), each one rs->Randn(numel) shaped by the
// ArcFace rules (core/models/arcface/random_init.h) for the IR-SE trunk; style and
// lateral convolutions He-scaled with biases 0.1 x; EqualLinear weights x itself (the
// layer scales by 1/sqrt(512)), their biases 0.1 x. Then "latent_avg" [styles, 512] = x.
std::vector<std::pair<std::string, FloatTensor>> RandomEncoderWeights(NumpyRandomState* rs, int64_t styles);

}  // namespace ganserve::core::psp

#endif  // GANSERVE_CORE_MODELS_PSP_RANDOM_INIT_H_
