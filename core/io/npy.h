// NumPy .npy files (format versions 1.0, 2.0 and 3.0), little-endian, read and write.
#ifndef GANSERVE_CORE_IO_NPY_H_
#define GANSERVE_CORE_IO_NPY_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/util/tensor_data.h"

namespace ganserve::core {

// Parses .npy bytes. Supports dtypes <f4 <f8 <f2 <i8 <i4 <i2 |i1 |u1 |b1 in C or
// Fortran order. InvalidArgument with the reason on anything else (object arrays,
// big-endian data, a header that lies about the data size).
absl::StatusOr<TensorView> ParseNpy(std::shared_ptr<const std::string> bytes);
// Reads and parses a file.
absl::StatusOr<TensorView> ReadNpy(const std::string& path);
// Convenience: reads a float tensor of any floating or integer dtype.
absl::StatusOr<FloatTensor> ReadNpyFloat(const std::string& path);

// Serialises a float32 array as .npy version 1.0.
std::string EncodeNpy(const FloatTensor& t);
std::string EncodeNpyInt64(const std::vector<int64_t>& shape, const std::vector<int64_t>& data);
// Writes atomically (temp file + rename).
absl::Status WriteNpy(const std::string& path, const FloatTensor& t);

// Writes a .npz (an uncompressed zip of .npy members) with the given arrays.
absl::Status WriteNpz(const std::string& path, const std::vector<std::pair<std::string, FloatTensor>>& arrays);

}  // namespace ganserve::core

#endif  // GANSERVE_CORE_IO_NPY_H_
