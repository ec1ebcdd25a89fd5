// Reads PyTorch files without running Python or LibTorch's unpickler: torch.save zip
// archives (PyTorch >= 1.6), the legacy pre-1.6 stream format, the data.pkl /
// constants.pkl of TorchScript archives, and plain pickles of torch objects (NVIDIA's
// network pickles; classes are recorded by name, never imported). Tensors come back as TensorViews into the
// mapped file (no copy for stored records).
#ifndef GANSERVE_CORE_CHECKPOINT_TORCH_FILE_H_
#define GANSERVE_CORE_CHECKPOINT_TORCH_FILE_H_

#include <map>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "core/checkpoint/pickle.h"
#include "core/util/mapped_file.h"

namespace ganserve::core {

// kPickle: a plain pickle.dump stream whose storages are inlined as legacy torch.save
// bytes (NVIDIA's network pickles).
enum class TorchFileFormat { kZip, kLegacy, kTorchScript, kPickle };
absl::string_view TorchFileFormatName(TorchFileFormat f);

struct TorchFile {
  TorchFileFormat format = TorchFileFormat::kZip;
  // The unpickled root object (for TorchScript: the module object tree).
  PyRef root;
  // TorchScript only: constants.pkl (a tuple of tensors), may be null.
  PyRef constants;
};

// Parses a PyTorch file held in memory. InvalidArgument naming the problem for
// corrupt, truncated or unsupported files (including the pre-0.4 tar format).
absl::StatusOr<TorchFile> ParseTorchFile(std::shared_ptr<const MappedFile> file);
// Maps and parses `path`.
absl::StatusOr<TorchFile> LoadTorchFile(const std::string& path);

// Flattens a state dict (a dict of name -> tensor), or a TorchScript module object
// tree ("visual.conv1.weight"), into a map. Nested plain dicts are ignored.
// InvalidArgument if `value` is neither a dict nor an object.
absl::StatusOr<std::map<std::string, TensorView>> StateDictTensors(const PyRef& value);

// A torch file holding a state dict (or {'state_dict': ...}) as named tensors; errors
// name the path.
absl::StatusOr<std::map<std::string, TensorView>> LoadStateDictFile(const std::string& path);

// A checkpoint of the pSp framework's codebases (StyleCLIP's mappers, e4e / pSp encoders):
// a dict {'state_dict': {...}, 'opts': {...}, ...}, or a bare state dict.
struct WrappedStateDict {
  PyRef root;                                 // the file's dict
  PyRef opts;                                 // root['opts'] when it is a dict, else null
  std::map<std::string, TensorView> tensors;  // root['state_dict'], or the root itself
  // The tensors named "prefix.*", without the prefix.
  std::map<std::string, TensorView> Under(const std::string& prefix) const;
};
// InvalidArgument naming `what` ("a mapper checkpoint") when the file holds no dict.
absl::StatusOr<WrappedStateDict> LoadWrappedStateDict(const std::string& path, const std::string& what);

}  // namespace ganserve::core

#endif  // GANSERVE_CORE_CHECKPOINT_TORCH_FILE_H_
