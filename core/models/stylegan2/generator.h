// The StyleGAN2 generator of rosinality's stylegan2-pytorch (the one StyleGAN-NADA,
// StyleCLIP and e4e use), loaded from real checkpoints and run with LibTorch.
// This header is torch-free: inputs and outputs are host FloatTensors.
#ifndef GANSERVE_CORE_MODELS_STYLEGAN2_GENERATOR_H_
#define GANSERVE_CORE_MODELS_STYLEGAN2_GENERATOR_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/models/stylegan2/config.h"
#include "core/util/tensor_data.h"

namespace ganserve::core::stylegan2 {

enum class LatentSpace { kZ, kW, kWPlus, kS };
enum class NoiseMode { kConst, kRandom, kNone };

// The z that a seed stands for: np.random.RandomState(seed).randn(style_dim), as
// NVIDIA's and rosinality's generate scripts draw it, so seeds match theirs.
std::vector<float> SeedToZ(uint32_t seed, int style_dim);

// Lightweight domains (HyperDomainNet, StyleDomain; reference lightweight-adaptation.md):
// a few trained parameters that change what a base generator renders, applied at render
// time on the base's resident weights, so many domains of one base share its memory and
// may be mixed in one batch.
enum class DomainKind {
  // HyperDomainNet's domain modulation: each conv's (conv1, convs) modulated kernel is
  // multiplied per input channel by (1 + d) AFTER demodulation. ToRGB untouched.
  kDomainModulation,
  // StyleDomain's StyleSpace direction: each conv's style s becomes s + d before
  // modulation and demodulation. ToRGB untouched.
  kStyleSpaceDirection,
  // StyleDomain's AffineLight+: every style affine (ToRGB included) gains a rank-r
  // offset U V (A' = A + U V, in checkpoint units), and the kernels of one block (the
  // 64 px one; the last block of a smaller generator) an additive per-channel-pair
  // offset broadcast over the kernel window (W' = W + D).
  kAffineLight,
};
inline constexpr int kAffineLightRank = 5;

// "domain_modulation", "stylespace_direction", "affine_light".
std::string DomainKindName(DomainKind kind);
std::optional<DomainKind> ParseDomainKind(const std::string& name);

// A domain's trained tensors by name, float32 on the host (the storage form):
// kDomainModulation: "<conv>.domain" [in]; kStyleSpaceDirection: "<conv>.style_offset"
// [in] (for conv1 and every convs.i); kAffineLight: "<layer>.affine_u" [in, r] and
// "<layer>.affine_v" [r, style_dim] for every style layer, "<layer>.weight_offset"
// [out, in, 1, 1] for the layers of the kernel block (checkpoint units, like
// "<layer>.conv.weight").
struct DomainTensors {
  DomainKind kind = DomainKind::kDomainModulation;
  std::map<std::string, FloatTensor> tensors;
};

// The names and shapes a domain of `kind` has on a generator of `config`.
std::map<std::string, std::vector<int64_t>> DomainTensorShapes(const GeneratorConfig& config, DomainKind kind,
                                                               int rank = kAffineLightRank);
// The block (index j of convs[2j], convs[2j+1], to_rgbs[j]) whose kernels AffineLight+
// offsets: the 64 px block, or the last one of a generator below 64 px.
int AffineLightKernelBlock(const GeneratorConfig& config);

// A domain on one generator's device (Generator::MakeDomain). Immutable, thread-safe.
class Domain {
 public:
  ~Domain();
  DomainKind kind() const;
  // Trained numbers it holds.
  int64_t parameter_count() const;
  MemoryFootprint Footprint() const;
  struct Impl;
  const Impl& impl() const { return *impl_; }

 private:
  friend class Generator;
  explicit Domain(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

struct GenerateParams {
  LatentSpace space = LatentSpace::kZ;
  // kZ, kW: [N, style_dim]; kWPlus: [N, n_latent, style_dim]; kS: [N, s_dim].
  FloatTensor latents;
  // Truncation psi toward the mean latent: w' = avg + psi * (w - avg). 1 = off.
  // Applied for any psi != 1 (rosinality only for psi < 1; the same for psi < 1 and
  // NVIDIA's extrapolation for psi > 1). Ignored for S input.
  float truncation = 1.0f;
  // Style mixing (z or w input only): rows [inject_index, n_latent) of w+ come from
  // these latents (same space as `latents`, same count); rows before from `latents`.
  std::optional<FloatTensor> mix_latents;
  int inject_index = 0;
  // z or w input: w+ rows [mean_rows_from, n_latent) take the mean latent (OneshotCLIP's
  // sampling keeps the 256 px and finer layers at w_mean). 0 (or >= n_latent) = off.
  int mean_rows_from = 0;
  NoiseMode noise = NoiseMode::kConst;
  // kRandom: one seed per image; noise maps are drawn on the host from it, so the
  // same seed gives the same noise on every device.
  std::vector<uint32_t> noise_seeds;
  // When set (num_layers maps of [1 or N, 1, r, r]), used instead of `noise`: e.g. the
  // optimised noise maps of an inversion.
  std::vector<FloatTensor> noise_maps;
  bool return_wplus = false;
  bool return_s = false;
  // False: only the requested latents are computed (no synthesis); images stay empty.
  bool render_images = true;
  // Stop the synthesis at this size (0 = the model's resolution): the image is the skip
  // architecture's partial output there, the sum of the ToRGB outputs up to that size,
  // on which every later block only adds detail to a 2x upsampling. What a generator
  // of that resolution with the same lower layers renders. A power of two in
  // [4, resolution].
  int max_resolution = 0;
  // Rows that share the start of the synthesis: each run of `prefix_group` consecutive
  // rows has the same styles in S layers [0, prefix_layers) (and the same noise maps),
  // so those layers run once per group and their output is repeated (e.g. the -/+
  // renders of one image that differ in a single channel). Checked: rows that differ
  // there are InvalidArgument. The batch must be a multiple of the group.
  int prefix_group = 1;
  int prefix_layers = 0;
  // Per image, the lightweight domain it renders in (null: none), made by MakeDomain on
  // this generator's weights (this generator or a WithDomain view of them); empty: the
  // generator's own domain() for every image. AffineLight+ domains need z, w or w+ input.
  std::vector<std::shared_ptr<const Domain>> domains;
};

struct GenerateResult {
  // [N, 3, H, W] float32, the raw generator output (nominally [-1, 1], unclamped);
  // empty when render_images was false.
  FloatTensor images;
  // [N, n_latent, style_dim] when requested (empty for S input).
  FloatTensor wplus;
  // [N, s_dim] when requested.
  FloatTensor s;
};

// How modulated convolutions run. Both are the reference's formulations and agree
// within ~1e-5; speed differs by device and batch size.
enum class ModConvMode {
  kAuto,     // currently kGrouped on every device
  kGrouped,  // per-sample modulated weights, one grouped convolution (fused=True)
  kScaled,   // scale activations, shared weights, demodulate outputs (fused=False)
};

// How the stride-2 upsampling convolutions run (the same products either way; agree
// within float rounding).
enum class UpsampleMode {
  kAuto,        // kTransposed (kPhases measured within noise on CPU, with a higher peak RSS)
  kPhases,      // four stride-1 convolutions, one per output row/column parity
  kTransposed,  // LibTorch's transposed convolution
};

struct LoadOptions {
  // "cpu", "cuda", "cuda:N" or "auto" (CUDA when available).
  std::string device = "cpu";
  // Which entry of a checkpoint dict to load: empty = "g_ema", else "g".
  std::string key;
  ModConvMode modconv = ModConvMode::kAuto;
  UpsampleMode upsample = UpsampleMode::kAuto;
  // GeneratorConfig::conv_clamp of the loaded generator (an NVIDIA pickle sets its own).
  float conv_clamp = 0;
};

// What a load found, for `ganctl local inspect` and the model repository.
struct LoadReport {
  std::string format;      // zip | legacy | safetensors | nvidia-pickle
  std::string source_key;  // "g_ema", "g", or "" for a bare state dict
  // Top-level checkpoint entries and a description of each.
  std::map<std::string, std::string> entries;
  // "checkpoint" (latent_avg entry) or "computed (4096 samples, seed 0)".
  std::string mean_latent_source;
  std::vector<std::string> ignored_tensors;  // state-dict tensors the generator does not use
  // What a person should know about the conversion (NVIDIA pickles: settings with no
  // rosinality equivalent).
  std::vector<std::string> notes;
};

// Thread-safe: Generate and Map are const and may run concurrently; the weights are
// immutable after Load.
class Generator {
 public:
  // Loads a rosinality checkpoint (.pt, zip or legacy; `g_ema` preferred, else `g`,
  // else a bare state dict) or a .safetensors state dict. InvalidArgument naming the
  // problem for incomplete or mis-shaped generators; NotFound for a missing file.
  static absl::StatusOr<std::unique_ptr<Generator>> Load(const std::string& path, const LoadOptions& options,
                                                         LoadReport* report = nullptr);
  // Builds from named tensors (state-dict keys). `latent_avg` may be null, in which
  // case the mean latent is computed (4096 z from seeds drawn by a seed-0 stream).
  static absl::StatusOr<std::unique_ptr<Generator>> FromTensors(const std::map<std::string, TensorView>& tensors,
                                                                const TensorView* latent_avg,
                                                                const LoadOptions& options);
  ~Generator();

  const GeneratorConfig& config() const;
  // [style_dim].
  const FloatTensor& mean_latent() const;
  bool mean_latent_from_checkpoint() const;
  std::string device() const;

  // z [N, style_dim] -> w [N, style_dim].
  absl::StatusOr<FloatTensor> Map(const FloatTensor& z) const;
  // Renders images. InvalidArgument for shapes that do not fit the model.
  absl::StatusOr<GenerateResult> Generate(const GenerateParams& params) const;

  // All parameters and buffers by state-dict name, as float32 host tensors (delta
  // computation); for a WithDomain view, the base's.
  std::map<std::string, FloatTensor> StateDict() const;
  // The state dict of a plain rosinality generator that renders what this one renders:
  // StateDict(), with a view's domain folded in where a checkpoint can express it
  // exactly (a StyleSpace direction into the style biases; AffineLight+ into the style
  // affines and kernels). FailedPrecondition for domain modulation (it acts after
  // demodulation, which no rosinality weight can hold).
  absl::StatusOr<std::map<std::string, FloatTensor>> ExportStateDict() const;
  // The memory its weights hold (device tensors and the host state dict); for a
  // WithDomain view, only its domain's (the weights belong to the base).
  MemoryFootprint Footprint() const;

  // Checks `tensors` against this generator's shapes and puts them on its device.
  // InvalidArgument naming missing, unexpected or mis-shaped tensors and non-finite values.
  absl::StatusOr<std::shared_ptr<const Domain>> MakeDomain(const DomainTensors& tensors) const;
  // A generator that renders `domain` (made on `base`'s weights) on `base`'s weights,
  // shared, not copied: config, mapping, mean latent and state dict are the base's.
  static absl::StatusOr<std::shared_ptr<const Generator>> WithDomain(const std::shared_ptr<const Generator>& base,
                                                                     std::shared_ptr<const Domain> domain);
  // The domain every image renders in unless GenerateParams::domains says otherwise;
  // null for a plain generator.
  const std::shared_ptr<const Domain>& domain() const { return domain_; }
  // Identifies the weights: a base and its WithDomain views share them (one render call
  // may mix their images).
  const void* weights_id() const { return impl_.get(); }

  // LibTorch-level internals (generator_impl.h), for training and inversion code.
  struct Impl;
  const Impl& impl() const { return *impl_; }

 private:
  explicit Generator(std::shared_ptr<const Impl> impl, std::shared_ptr<const Domain> domain = nullptr);
  std::shared_ptr<const Impl> impl_;
  std::shared_ptr<const Domain> domain_;
};

}  // namespace ganserve::core::stylegan2

#endif  // GANSERVE_CORE_MODELS_STYLEGAN2_GENERATOR_H_
