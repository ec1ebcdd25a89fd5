// The pSp-framework image encoders that put a face into a StyleGAN2 generator's w+ in
// one forward pass (reference/styleclip.md section 4; omertov/encoder4editing
// models/encoders/psp_encoders.py, models/psp.py), eval mode:
//
//   trunk     IR-SE-50 (core/models/arcface/ir_se.h) on a [N, 3, 256, 256] image in
//             [-1, 1]; taps after body units 6 (c1: 128 x 64 x 64), 20 (c2: 256 x 32 x 32)
//             and 23 (c3: 512 x 16 x 16)
//   FPN       p2 = bilinear(c3 -> 32 x 32, align_corners) + latlayer1(c2) (conv1x1 256 -> 512),
//             p1 = bilinear(p2 -> 64 x 64, align_corners) + latlayer2(c1) (conv1x1 128 -> 512)
//   styles    one GradualStyleBlock per w+ row i: log2(s) conv3x3 stride 2 (512 -> 512,
//             bias) each followed by LeakyReLU(0.01), down to 1 x 1, then an EqualLinear
//             (512 -> 512, weight x 1/sqrt(512)); rows 0-2 read c3 (s = 16), rows 3-6 p2
//             (s = 32), rows 7- p1 (s = 64)
//   output    Encoder4Editing (e4e): w0 = style 0, every row w0 plus its own delta
//             (rows >= 1); GradualStyleEncoder (pSp): each row its own style. Then
//             latent_avg is added when the checkpoint's opts say start_from_latent_avg.
//
// Row count = 2 log2(stylegan_size) - 2 (18 at 1024 px), style width 512: the generator
// decoding the codes must have that many w+ rows of 512 (its `decoder` in the official
// checkpoints). Thread-safe for concurrent const use.
#ifndef GANSERVE_CORE_MODELS_PSP_STYLE_ENCODER_H_
#define GANSERVE_CORE_MODELS_PSP_STYLE_ENCODER_H_

#include <map>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/util/tensor_data.h"

namespace ganserve::core::psp {

enum class EncoderArchitecture { kEncoder4Editing, kGradualStyle };
// The official encoder_type names: "Encoder4Editing", "GradualStyleEncoder".
absl::string_view EncoderArchitectureName(EncoderArchitecture a);
std::optional<EncoderArchitecture> EncoderArchitectureFromName(absl::string_view name);

inline constexpr int64_t kEncoderInputSize = 256;
inline constexpr int64_t kEncoderStyleDim = 512;

struct EncoderConfig {
  EncoderArchitecture architecture = EncoderArchitecture::kEncoder4Editing;
  int64_t styles = 18;                // w+ rows
  bool start_from_latent_avg = true;  // add latent_avg to the codes
};

// The w+ rows of a generator of `resolution` px (2 log2(resolution) - 2).
int64_t StyleCountFor(int64_t resolution);

class StyleEncoder {
 public:
  // `tensors`: the encoder's state dict without the "encoder." prefix (input_layer.*,
  // body.*, styles.N.*, latlayer1/2.*); the row count comes from the styles.N present.
  // `latent_avg`: [styles, 512], [1, 512] or [512] (repeated over the rows); required when
  // config.start_from_latent_avg. InvalidArgument naming a missing or misshapen tensor.
  static absl::StatusOr<std::unique_ptr<StyleEncoder>> FromTensors(const std::map<std::string, TensorView>& tensors,
                                                                   const std::optional<TensorView>& latent_avg,
                                                                   EncoderConfig config, const std::string& device);
  // A file written by SaveEncoder (or one of the official layout: see ReadOfficialEncoderFile).
  static absl::StatusOr<std::unique_ptr<StyleEncoder>> Load(const std::string& path, const std::string& device);
  ~StyleEncoder();

  // images: [N, 3, 256, 256] in [-1, 1] -> w+ [N, styles, 512] (latent_avg included).
  absl::StatusOr<FloatTensor> Encode(const FloatTensor& images) const;
  const EncoderConfig& config() const;
  // The encoder's tensors (official names) and "latent_avg" [styles, 512] when used.
  std::map<std::string, FloatTensor> StateDict() const;
  MemoryFootprint Footprint() const;

  struct Impl;  // style_encoder_impl.h
  const Impl& impl() const { return *impl_; }

 private:
  explicit StyleEncoder(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Saves an encoder as safetensors: its StateDict plus metadata (format
// "ganserve-psp-encoder-v1", architecture, start_from_latent_avg) and `extra` metadata.
absl::Status SaveEncoder(const std::string& path, const StyleEncoder& encoder,
                         const std::map<std::string, std::string>& extra = {});

// An official pSp / e4e checkpoint (e4e_ffhq_encode.pt, psp_ffhq_encode.pt):
// {'state_dict': {encoder.*, decoder.*}, 'opts': {encoder_type, stylegan_size,
// start_from_latent_avg, ...}, 'latent_avg'}, read. The views keep the file mapped.
struct OfficialEncoderFile {
  EncoderConfig config;
  std::map<std::string, TensorView> encoder;  // without the "encoder." prefix
  std::map<std::string, TensorView> decoder;  // without the "decoder." prefix (rosinality names)
  std::optional<TensorView> latent_avg;
  int64_t stylegan_size = 0;  // opts["stylegan_size"], 0 when absent
};
// InvalidArgument for files without encoder.* tensors, an unsupported encoder_type
// (SingleStyleCodeEncoder), opts that contradict the tensors, or a missing latent_avg
// the opts ask for.
absl::StatusOr<OfficialEncoderFile> ReadOfficialEncoderFile(const std::string& path);

}  // namespace ganserve::core::psp

#endif  // GANSERVE_CORE_MODELS_PSP_STYLE_ENCODER_H_
