// Conversions between the torch-free tensor containers and ATen tensors. Only
// LibTorch-using model code includes this.
#ifndef GANSERVE_CORE_MODELS_COMMON_TORCH_CONVERT_H_
#define GANSERVE_CORE_MODELS_COMMON_TORCH_CONVERT_H_

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>
#include <c10/util/Exception.h>

#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/util/tensor_data.h"

namespace ganserve::core {

// Copies a view into a new contiguous float32 tensor on `device`.
absl::StatusOr<at::Tensor> ToTorchFloat(const TensorView& view, const c10::Device& device);
at::Tensor ToTorch(const FloatTensor& t, const c10::Device& device);
// Copies any float tensor to a host FloatTensor (float32, contiguous).
FloatTensor FromTorch(const at::Tensor& t);

// Adds the bytes of tensors' storages to a footprint, each storage once (views of one
// storage share it), by the device it lives on.
class FootprintCounter {
 public:
  void Add(const at::Tensor& t);
  void Add(const std::vector<at::Tensor>& ts) {
    for (const auto& t : ts) Add(t);
  }
  void AddHost(const FloatTensor& t) { total_.host_bytes += static_cast<int64_t>(t.data.size() * sizeof(float)); }
  const MemoryFootprint& total() const { return total_; }

 private:
  std::set<const void*> seen_;
  MemoryFootprint total_;
};

// The status for a LibTorch exception: RESOURCE_EXHAUSTED (counted in
// OutOfMemoryEvents()) when the device ran out of memory, so callers can retry smaller;
// INTERNAL otherwise. `what` says which operation failed.
absl::Status TorchErrorStatus(const c10::Error& e, const std::string& what);

// Parses "cpu", "cuda", "cuda:N" or "auto". InvalidArgument for other strings or a
// CUDA device that this build or machine does not have.
absl::StatusOr<c10::Device> ParseDevice(const std::string& spec);

}  // namespace ganserve::core

#endif  // GANSERVE_CORE_MODELS_COMMON_TORCH_CONVERT_H_
