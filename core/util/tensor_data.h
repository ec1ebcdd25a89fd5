// Torch-free tensor containers shared by the file readers (.npy, PyTorch checkpoints,
// safetensors) and the gRPC edge. Only core/models converts them to LibTorch tensors,
// which keeps <torch/...> out of most translation units.
#ifndef GANSERVE_CORE_UTIL_TENSOR_DATA_H_
#define GANSERVE_CORE_UTIL_TENSOR_DATA_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>
#include "absl/strings/string_view.h"

#include "absl/status/statusor.h"

namespace ganserve::core {

enum class DType { kFloat32, kFloat64, kFloat16, kBFloat16, kInt64, kInt32, kInt16, kInt8, kUInt8, kBool };

size_t DTypeSize(DType dtype);
// float32 to IEEE half and to bfloat16, rounding to nearest even (overflow: infinity).
uint16_t FloatToHalf(float f);
uint16_t FloatToBFloat16(float f);
// "F32", "F64", ... (safetensors spelling).
absl::string_view DTypeName(DType dtype);

// Number of elements of `shape`; -1 if a dimension is negative or the product
// overflows int64.
int64_t NumElements(const std::vector<int64_t>& shape);
std::string ShapeString(const std::vector<int64_t>& shape);

// A read-only strided view of typed elements that live in memory owned by `owner`
// (a mapped file, a decoded buffer). Copyable; thread-compatible.
struct TensorView {
  DType dtype = DType::kFloat32;
  std::vector<int64_t> shape;
  // Element strides; empty means C-contiguous.
  std::vector<int64_t> strides;
  // Offset of element [0,...,0] from `data`, in elements.
  int64_t offset = 0;
  const uint8_t* data = nullptr;
  // Bytes readable from `data`.
  size_t nbytes = 0;
  std::shared_ptr<const void> owner;

  int64_t numel() const { return NumElements(shape); }
};

// An owned, dense, C-order float32 tensor. The currency of core APIs that do not need
// LibTorch (latents, images, requests).
struct FloatTensor {
  std::vector<int64_t> shape;
  std::vector<float> data;

  int64_t numel() const { return NumElements(shape); }
  int64_t dim(size_t i) const { return shape[i]; }
};

// The memory a loaded model's tensors hold: host RAM and the compute device's memory
// (on a CPU device everything is host).
struct MemoryFootprint {
  int64_t host_bytes = 0;
  int64_t device_bytes = 0;
  MemoryFootprint& operator+=(const MemoryFootprint& o) {
    host_bytes += o.host_bytes;
    device_bytes += o.device_bytes;
    return *this;
  }
};

// Copies `view` into a dense float32 tensor, converting the dtype. InvalidArgument if
// the view's strides or offset reach outside its bytes.
absl::StatusOr<FloatTensor> ToFloatTensor(const TensorView& view);
// Same for integer data (floats are rejected).
absl::StatusOr<std::vector<int64_t>> ToInt64Vector(const TensorView& view);
// A view over `t` (kept alive by the view).
TensorView ViewOf(std::shared_ptr<const FloatTensor> t);
// Views over every tensor of a named set (the set is kept alive by the views).
std::map<std::string, TensorView> ViewsOf(const std::shared_ptr<const std::map<std::string, FloatTensor>>& tensors);

}  // namespace ganserve::core

#endif  // GANSERVE_CORE_UTIL_TENSOR_DATA_H_
