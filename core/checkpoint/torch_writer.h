// Writes files that PyTorch's torch.load reads (1.6 through 2.x, also with
// weights_only=True): the zip format of torch.save, holding a dict of state dicts
// (OrderedDicts of float32 tensors) and plain tensors. The pickle inside uses protocol 2
// and only the opcodes and globals torch's restricted unpickler accepts.
#ifndef GANSERVE_CORE_CHECKPOINT_TORCH_WRITER_H_
#define GANSERVE_CORE_CHECKPOINT_TORCH_WRITER_H_

#include <map>
#include <string>
#include <variant>
#include <vector>

#include "core/util/tensor_data.h"

namespace ganserve::core {

// One top-level entry of the saved dict: a state dict (written as an OrderedDict in
// name order) or a single tensor.
struct TorchSaveEntry {
  std::string name;
  std::variant<std::map<std::string, FloatTensor>, FloatTensor> value;
};

// The bytes of `torch.save({entry.name: entry.value, ...})` in the zip format. Records
// sit under `archive/`, tensor data aligned to 64 bytes as torch writes it.
std::string EncodeTorchSave(const std::vector<TorchSaveEntry>& entries);

}  // namespace ganserve::core

#endif  // GANSERVE_CORE_CHECKPOINT_TORCH_WRITER_H_
