// safetensors files: read (any of our dtypes) and write (float32).
#ifndef GANSERVE_CORE_CHECKPOINT_SAFETENSORS_H_
#define GANSERVE_CORE_CHECKPOINT_SAFETENSORS_H_

#include <map>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/util/mapped_file.h"
#include "core/util/tensor_data.h"

namespace ganserve::core {

struct SafetensorsFile {
  std::map<std::string, TensorView> tensors;
  std::map<std::string, std::string> metadata;
};

// Parses safetensors bytes. InvalidArgument on a malformed header, overlapping or
// out-of-range offsets, or an unsupported dtype.
absl::StatusOr<SafetensorsFile> ParseSafetensors(const std::shared_ptr<const MappedFile>& file);
absl::StatusOr<SafetensorsFile> LoadSafetensors(const std::string& path);

// Serialises tensors (sorted by name) with string metadata, stored as `dtype`: kFloat32,
// or kFloat16 / kBFloat16 (rounded to nearest even).
std::string EncodeSafetensors(const std::map<std::string, FloatTensor>& tensors,
                              const std::map<std::string, std::string>& metadata, DType dtype = DType::kFloat32);
// Encodes and writes atomically.
absl::Status SaveSafetensors(const std::string& path, const std::map<std::string, FloatTensor>& tensors,
                             const std::map<std::string, std::string>& metadata, DType dtype = DType::kFloat32);

}  // namespace ganserve::core

#endif  // GANSERVE_CORE_CHECKPOINT_SAFETENSORS_H_
