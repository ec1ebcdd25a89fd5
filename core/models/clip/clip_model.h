// OpenAI CLIP (ViT image tower + text transformer), built natively in LibTorch from the
// parameters of OpenAI's release files. Torch-free interface.
#ifndef GANSERVE_CORE_MODELS_CLIP_CLIP_MODEL_H_
#define GANSERVE_CORE_MODELS_CLIP_CLIP_MODEL_H_

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/util/tensor_data.h"

namespace ganserve::core::clip {

// Inferred from tensor shapes as OpenAI's build_model does (heads = width / 64).
struct ClipConfig {
  int embed_dim = 0;
  int image_resolution = 0;
  int vision_layers = 0, vision_width = 0, vision_patch_size = 0, vision_heads = 0;
  int context_length = 0, vocab_size = 0;
  int transformer_width = 0, transformer_heads = 0, transformer_layers = 0;
  std::string ToJson() const;
};

// InvalidArgument naming missing or mis-shaped tensors; Unimplemented for ResNet
// (modified-ResNet image tower) checkpoints.
absl::StatusOr<ClipConfig> InferClipConfig(const std::map<std::string, TensorView>& tensors);

// Arithmetic of the encoders. OpenAI runs CLIP in fp16 on CUDA (its convert_weights):
// convolution, linear, attention and projection weights in half precision; token,
// class and positional embeddings, LayerNorm parameters and logit_scale stay float32,
// and LayerNorm itself computes in float32. kFloat16 and kBFloat16 follow that split
// (bf16 also runs on CPUs). kAuto: fp16 on CUDA, fp32 elsewhere. Encodings are returned
// as float32 whatever the precision (the reference keeps them in fp16 for its losses).
enum class ClipPrecision { kAuto, kFloat32, kFloat16, kBFloat16 };

// "auto" | "fp32" | "fp16" | "bf16"; InvalidArgument otherwise.
absl::StatusOr<ClipPrecision> ParseClipPrecision(absl::string_view name);
const char* ClipPrecisionName(ClipPrecision p);

struct ClipLoadReport {
  std::string format;  // torchscript | zip | legacy | safetensors
  std::vector<std::string> ignored_tensors;
};

// Immutable after Load; EncodeImage/EncodeText are const and thread-safe.
class ClipModel {
 public:
  // Loads OpenAI's TorchScript archive (ViT-B-32.pt etc.: only the parameters are read;
  // the traced code, which hard-codes CUDA and fp16, never runs), a torch.save state
  // dict, or a safetensors file. fp16 on a device other than CUDA is InvalidArgument.
  static absl::StatusOr<std::unique_ptr<ClipModel>> Load(const std::string& path, const std::string& device,
                                                         ClipLoadReport* report = nullptr,
                                                         ClipPrecision precision = ClipPrecision::kAuto);
  static absl::StatusOr<std::unique_ptr<ClipModel>> FromTensors(const std::map<std::string, TensorView>& tensors,
                                                                const std::string& device,
                                                                ClipPrecision precision = ClipPrecision::kAuto);
  ~ClipModel();

  const ClipConfig& config() const;
  float logit_scale() const;        // the raw parameter; logits use exp()
  ClipPrecision precision() const;  // resolved: never kAuto
  // The memory its weights hold.
  MemoryFootprint Footprint() const;

  // images: [N, 3, R, R] already preprocessed (normalised). Returns [N, embed_dim],
  // not normalised.
  absl::StatusOr<FloatTensor> EncodeImage(const FloatTensor& images) const;
  // tokens: N rows of context_length ids. Returns [N, embed_dim], not normalised.
  absl::StatusOr<FloatTensor> EncodeText(const std::vector<std::vector<int>>& tokens) const;
  // logits_per_image [N_img, N_txt] = exp(logit_scale) * cos similarity.
  absl::StatusOr<FloatTensor> Logits(const FloatTensor& images, const std::vector<std::vector<int>>& tokens) const;

  struct Impl;
  const Impl& impl() const { return *impl_; }

 private:
  explicit ClipModel(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace ganserve::core::clip

#endif  // GANSERVE_CORE_MODELS_CLIP_CLIP_MODEL_H_
