#include "core/models/common/torch_convert.h"

#include <ATen/ATen.h>
#include <ATen/Context.h>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/util/oom_counter.h"
#include "core/util/status_macros.h"

namespace ganserve::core {

absl::StatusOr<at::Tensor> ToTorchFloat(const TensorView& view, const c10::Device& device) {
  ASSIGN_OR_RETURN(FloatTensor f, ToFloatTensor(view));
  return ToTorch(f, device);
}

void FootprintCounter::Add(const at::Tensor& t) {
  if (!t.defined() || !t.has_storage()) return;
  const void* key = t.storage().data();
  if (key == nullptr || !seen_.insert(key).second) return;
  const auto bytes = static_cast<int64_t>(t.storage().nbytes());
  if (t.device().is_cpu()) {
    total_.host_bytes += bytes;
  } else {
    total_.device_bytes += bytes;
  }
}

absl::Status TorchErrorStatus(const c10::Error& e, const std::string& what) {
  if (dynamic_cast<const c10::OutOfMemoryError*>(&e) != nullptr) {
    OutOfMemoryEvents().fetch_add(1);
    return absl::ResourceExhaustedError(absl::StrCat(what, ": the device ran out of memory (",
                                                     e.what_without_backtrace(),
                                                     "); retry with a smaller batch_size or fewer images"));
  }
  return absl::InternalError(absl::StrCat(what, ": ", e.what_without_backtrace()));
}

at::Tensor ToTorch(const FloatTensor& t, const c10::Device& device) {
  at::Tensor host = at::empty(t.shape, at::TensorOptions().dtype(at::kFloat));
  if (!t.data.empty()) std::memcpy(host.data_ptr<float>(), t.data.data(), t.data.size() * sizeof(float));
  return device.is_cpu() ? host : host.to(device);
}

FloatTensor FromTorch(const at::Tensor& t) {
  at::Tensor c = t.detach().to(at::kCPU, at::kFloat).contiguous();
  FloatTensor out;
  out.shape.assign(c.sizes().begin(), c.sizes().end());
  out.data.assign(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
  return out;
}

absl::StatusOr<c10::Device> ParseDevice(const std::string& spec) {
  if (spec.empty() || spec == "auto") {
    return at::hasCUDA() ? c10::Device(c10::kCUDA, 0) : c10::Device(c10::kCPU);
  }
  if (spec == "cpu") return c10::Device(c10::kCPU);
  if (absl::StartsWith(spec, "cuda")) {
    if (!at::hasCUDA()) {
      return absl::InvalidArgumentError(absl::StrCat("device '", spec,
                                                     "' requested but this build or machine has no CUDA; "
                                                     "use --device=cpu or auto"));
    }
    try {
      return c10::Device(spec);
    } catch (const c10::Error&) {
    }
  }
  return absl::InvalidArgumentError(absl::StrCat("unknown device '", spec, "' (use auto, cpu, cuda or cuda:N)"));
}

}  // namespace ganserve::core
