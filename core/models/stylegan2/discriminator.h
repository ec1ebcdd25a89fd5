// The StyleGAN2 discriminator of rosinality's stylegan2-pytorch (`d` in its training
// checkpoints): a 1x1 FromRGB conv, one residual downsampling block per resolution,
// minibatch standard deviation, a 3x3 conv and two equalized linear layers.
// Torch-free API; discriminator_impl.h has the LibTorch-level forward for training code.
#ifndef GANSERVE_CORE_MODELS_STYLEGAN2_DISCRIMINATOR_H_
#define GANSERVE_CORE_MODELS_STYLEGAN2_DISCRIMINATOR_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/util/tensor_data.h"

namespace ganserve::core::stylegan2 {

struct DiscriminatorConfig {
  int resolution = 0;
  // Feature-map channels per resolution (resolution, ..., 4).
  std::map<int, int> channels;
  // Minibatch standard deviation: groups of min(batch, stddev_group) images, one
  // feature (rosinality's stddev_group = 4, stddev_feat = 1).
  int stddev_group = 4;

  std::string ToJson() const;
};

// Infers the configuration from a `d` state dict and checks every tensor's presence
// and shape (InvalidArgument naming the offending keys).
absl::StatusOr<DiscriminatorConfig> InferDiscriminatorConfig(const std::map<std::string, TensorView>& tensors);

// The tensor names and shapes a discriminator of `config` needs, in a stable order.
std::vector<std::pair<std::string, std::vector<int64_t>>> ExpectedDiscriminatorTensors(
    const DiscriminatorConfig& config);

// Thread-safe after construction (Score is const).
class Discriminator {
 public:
  // Loads the `d` entry of a rosinality training checkpoint (.pt, zip or legacy), or a
  // .safetensors file holding a discriminator state dict. `device` as for the generator.
  // NotFound for a missing file; InvalidArgument when there is no complete `d`.
  static absl::StatusOr<std::unique_ptr<Discriminator>> Load(const std::string& path, const std::string& device);
  static absl::StatusOr<std::unique_ptr<Discriminator>> FromTensors(const std::map<std::string, TensorView>& tensors,
                                                                    const std::string& device);
  ~Discriminator();

  const DiscriminatorConfig& config() const;

  // images [N, 3, R, R] (generator range, nominally [-1, 1]) -> logits [N]. N must be
  // a multiple of min(N, stddev_group), as the minibatch statistics group images.
  absl::StatusOr<FloatTensor> Score(const FloatTensor& images) const;

  struct Impl;
  const Impl& impl() const { return *impl_; }

 private:
  explicit Discriminator(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace ganserve::core::stylegan2

#endif  // GANSERVE_CORE_MODELS_STYLEGAN2_DISCRIMINATOR_H_
