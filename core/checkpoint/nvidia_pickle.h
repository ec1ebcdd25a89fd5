// NVIDIA stylegan2-ada-pytorch network pickles (training snapshots, legacy.py output, the
// stylegan2-*.pkl of the StyleGAN3 release), read as data: the persistent network
// objects are walked for their parameters, buffers and layer attributes; the embedded
// Python source is never run. The G_ema generator maps onto the rosinality state-dict
// layout the engine loads (no transposes or rescaling, except the resampling filters,
// which rosinality stores with the upsampling gain of 4 baked in).
#ifndef GANSERVE_CORE_CHECKPOINT_NVIDIA_PICKLE_H_
#define GANSERVE_CORE_CHECKPOINT_NVIDIA_PICKLE_H_

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/checkpoint/pickle.h"
#include "core/util/tensor_data.h"

namespace ganserve::core {

struct NvidiaGenerator {
  // rosinality names and shapes ("style.1.weight", "convs.0.conv.blur.kernel", ...).
  std::map<std::string, FloatTensor> tensors;
  // mapping.w_avg: the training-time EMA of w, rosinality's latent_avg.
  FloatTensor latent_avg;
  int resolution = 0;
  // The synthesis layers' conv_clamp (256 in NVIDIA's training configs; none when the
  // pickle was converted from TensorFlow). The engine does not clamp: outputs differ
  // only where an activation exceeds it.
  std::optional<double> conv_clamp;
  // Why an unmodified rosinality tool would not load an export of this generator
  // (w_dim != 512, mapping depth != 8); empty when it would.
  std::vector<std::string> notes;
};

// True when `root` is a dict whose G_ema entry is an NVIDIA persistent network object.
bool IsNvidiaNetworkPickle(const PyRef& root);

// Maps G_ema of an NVIDIA network pickle onto the rosinality layout. InvalidArgument
// naming the reason for what has no rosinality equivalent: StyleGAN3 (alias-free)
// generators, conditional generators (c_dim > 0), z_dim != w_dim, resnet/orig
// architectures, other than 3 image channels, other activations or resampling filters,
// missing or mis-shaped tensors.
absl::StatusOr<NvidiaGenerator> NvidiaGeneratorToRosinality(const PyRef& root);

}  // namespace ganserve::core

#endif  // GANSERVE_CORE_CHECKPOINT_NVIDIA_PICKLE_H_
