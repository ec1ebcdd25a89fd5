// StyleCLIP's latent mapper (Patashnik et al. 2021, section 5), as the official
// mapper/latent_mappers.py builds it: a residual network on w+ trained once per text
// prompt, applied as w_hat = w + 0.1 * strength * mapper(w).
//
//  * A sub-mapper is PixelNorm then 4 EqualLinear(dim, dim, lr_mul 0.01) each followed
//    by the fused leaky ReLU (slope 0.2, gain sqrt(2)), the last one included. The
//    PixelNorm receives the [B, rows, dim] slice, so it normalises over the ROWS (dim 1),
//    not over the features: the official quirk, kept.
//  * kLevels (LevelsMapper, the default): coarse rows [0, 4), medium [4, 8), fine
//    [8, n_latent) each have their own sub-mapper; a group switched off gives zeros.
//    kSingle (SingleMapper): one sub-mapper over every row.
//  * Tensor names are the official state dict's without the "mapper." prefix, including
//    the official spelling "course_mapping" for the coarse group
//    ("course_mapping.mapping.1.weight" ... "fine_mapping.mapping.4.bias").
//
// Official checkpoints ({'state_dict', 'opts'} .pt files, e.g. purple_hair.pt) are read
// by ReadOfficialMapperFile; their "decoder.*" generator is returned for the caller to
// check against the base model.
#ifndef GANSERVE_CORE_EDIT_LATENT_MAPPER_H_
#define GANSERVE_CORE_EDIT_LATENT_MAPPER_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/util/tensor_data.h"

namespace ganserve::core::edit {

// The official residual scale of coach.py and inference.py.
inline constexpr float kMapperResidualScale = 0.1f;
// The official row groups of LevelsMapper.
inline constexpr int kMapperCoarseEnd = 4, kMapperMediumEnd = 8;

enum class MapperType { kLevels, kSingle };

struct MapperConfig {
  MapperType type = MapperType::kLevels;
  // kLevels: which groups have a sub-mapper (the official --no_*_mapper flags negated).
  bool coarse = true, medium = true, fine = true;
  int64_t dim = 512;  // the generator's style_dim
  int64_t depth = 4;  // EqualLinear layers per sub-mapper (official: 4)
};

// "levels" / "single", and the groups as the manifest records them.
const char* MapperTypeName(MapperType t);
absl::StatusOr<MapperType> ParseMapperType(const std::string& s);

// The tensor names a configuration has, in the official state dict's order.
std::vector<std::string> MapperTensorNames(const MapperConfig& c);

class LatentMapper {
 public:
  struct Impl;
  // Weights initialised as the official EqualLinear does (weight ~ N(0,1) / lr_mul, bias
  // 0) from a seeded generator on `device` ("cpu", "cuda:0", ...).
  static absl::StatusOr<std::unique_ptr<LatentMapper>> Random(const MapperConfig& config, uint64_t seed,
                                                              const std::string& device);
  // From named tensors (MapperTensorNames; every one needed, no other). InvalidArgument
  // naming a missing, unexpected or misshapen tensor.
  static absl::StatusOr<std::unique_ptr<LatentMapper>> FromTensors(const std::map<std::string, TensorView>& tensors,
                                                                   const MapperConfig& config,
                                                                   const std::string& device);
  ~LatentMapper();

  const MapperConfig& config() const;
  std::string device() const;
  // mapper(w) for w+ [B, n_latent, dim] (n_latent >= 1): the residual before scaling.
  absl::StatusOr<FloatTensor> Residual(const FloatTensor& wplus) const;
  // w + kMapperResidualScale * strength * mapper(w).
  absl::StatusOr<FloatTensor> Apply(const FloatTensor& wplus, float strength) const;
  std::map<std::string, FloatTensor> StateDict() const;
  int64_t parameter_count() const;
  MemoryFootprint Footprint() const;

  const Impl& impl() const { return *impl_; }
  Impl& mutable_impl() { return *impl_; }

 private:
  explicit LatentMapper(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// The configuration named tensors form (type, groups, dim, depth); InvalidArgument for
// names of neither kind or both. FromTensors then checks every tensor.
absl::StatusOr<MapperConfig> MapperConfigFromNames(const std::map<std::string, TensorView>& tensors);

// An official mapper checkpoint, read.
struct OfficialMapperFile {
  MapperConfig config;                        // from the tensor names (opts may disagree with them; names win)
  std::map<std::string, TensorView> mapper;   // without the "mapper." prefix
  std::map<std::string, TensorView> decoder;  // without the "decoder." prefix (rosinality names)
  std::string description;                    // opts["description"], when present
  bool stylespace = false;                    // opts["work_in_stylespace"]
};

// Reads a {'state_dict': ..., 'opts': ...} file (or a bare state dict). InvalidArgument
// for files that hold no mapper, S-space mappers (work_in_stylespace: not supported), or
// mixed SingleMapper/LevelsMapper names.
absl::StatusOr<OfficialMapperFile> ReadOfficialMapperFile(const std::string& path);

}  // namespace ganserve::core::edit

#endif  // GANSERVE_CORE_EDIT_LATENT_MAPPER_H_
