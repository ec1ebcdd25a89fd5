// Training checkpoints of the adversarial trainers (GanTrainer, OneshotTrainer): tensors by
// key in one safetensors file, an Adam state as "<prefix>_m/<name>" and "<prefix>_v/<name>"
// with its step count in the metadata key "<prefix>_steps". LibTorch; internal to core/adapt.
#ifndef GANSERVE_CORE_ADAPT_TRAINING_STATE_IMPL_H_
#define GANSERVE_CORE_ADAPT_TRAINING_STATE_IMPL_H_

#include <ATen/ATen.h>

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "core/checkpoint/safetensors.h"
#include "core/models/common/adam.h"
#include "core/models/common/torch_convert.h"
#include "core/util/status_macros.h"

namespace ganserve::core::adapt {

// What SaveSafetensors writes: the tensors and the metadata.
struct TrainingState {
  std::map<std::string, FloatTensor> tensors;
  std::map<std::string, std::string> metadata;

  void Put(const std::string& key, const at::Tensor& t) { tensors[key] = FromTorch(t.detach()); }
  void PutAdam(const std::string& prefix, const std::vector<std::string>& names, const Adam& a) {
    for (size_t i = 0; i < names.size(); ++i) {
      Put(absl::StrCat(prefix, "_m/", names[i]), a.m()[i]);
      Put(absl::StrCat(prefix, "_v/", names[i]), a.v()[i]);
    }
    metadata[prefix + "_steps"] = std::to_string(a.steps());
  }
};

// Reads a saved TrainingState back onto a device; every tensor is checked against the
// shape of the one it replaces (InvalidArgument naming the file and the key).
class TrainingStateReader {
 public:
  TrainingStateReader(SafetensorsFile file, std::string path, c10::Device device)
      : file_(std::move(file)), path_(std::move(path)), device_(device) {}

  std::map<std::string, std::string>& metadata() { return file_.metadata; }

  absl::StatusOr<at::Tensor> Read(const std::string& key, const at::Tensor& like) const {
    auto it = file_.tensors.find(key);
    if (it == file_.tensors.end()) return absl::InvalidArgumentError(absl::StrCat(path_, ": missing ", key));
    ASSIGN_OR_RETURN(at::Tensor v, ToTorchFloat(it->second, device_));
    if (!v.sizes().equals(like.sizes())) {
      return absl::InvalidArgumentError(absl::StrCat(path_, ": ", key, " does not fit this model"));
    }
    return v;
  }

  absl::Status ReadAdam(const std::string& prefix, const std::vector<std::string>& names, Adam* a) {
    std::vector<at::Tensor> m, v;
    for (size_t i = 0; i < names.size(); ++i) {
      ASSIGN_OR_RETURN(at::Tensor mi, Read(absl::StrCat(prefix, "_m/", names[i]), a->m()[i]));
      ASSIGN_OR_RETURN(at::Tensor vi, Read(absl::StrCat(prefix, "_v/", names[i]), a->v()[i]));
      m.push_back(mi);
      v.push_back(vi);
    }
    int64_t steps = 0;
    if (!absl::SimpleAtoi(file_.metadata[prefix + "_steps"], &steps)) {
      return absl::InvalidArgumentError(absl::StrCat(path_, ": missing ", prefix, "_steps"));
    }
    a->SetState(std::move(m), std::move(v), steps);
    return absl::OkStatus();
  }

 private:
  SafetensorsFile file_;
  std::string path_;
  c10::Device device_;
};

}  // namespace ganserve::core::adapt

#endif  // GANSERVE_CORE_ADAPT_TRAINING_STATE_IMPL_H_
