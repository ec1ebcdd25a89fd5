// A data-only interpreter for the pickle protocols torch.save emits (0-5 opcodes that
// build plain data). Classes are never imported or called: a GLOBAL becomes a named
// value, REDUCE/NEWOBJ/BUILD build a PyValue of kind kObject that records the class
// name, its arguments and its state. A few well-known constructors are understood
// (OrderedDict, _codecs.encode, torch tensor rebuilds via a hook).
#ifndef GANSERVE_CORE_CHECKPOINT_PICKLE_H_
#define GANSERVE_CORE_CHECKPOINT_PICKLE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>
#include "absl/strings/string_view.h"

#include "absl/status/statusor.h"
#include "core/util/tensor_data.h"

namespace ganserve::core {

struct PyValue;
using PyRef = std::shared_ptr<PyValue>;

// One unpickled value. Lists and dicts are shared (memo references alias them), so
// they are held by shared_ptr and mutated in place while unpickling; immutable after.
struct PyValue {
  enum class Kind {
    kNone,
    kBool,
    kInt,
    kFloat,
    kString,
    kBytes,
    kTuple,
    kList,
    kDict,
    kGlobal,
    kObject,
    kTensor,
    kStorage
  };
  Kind kind = Kind::kNone;
  bool b = false;
  int64_t i = 0;
  double f = 0;
  // kString / kBytes: the text; kGlobal / kObject: "module.qualname".
  std::string s;
  // kTuple / kList items; kObject constructor arguments.
  std::vector<PyRef> items;
  // kDict items in insertion order.
  std::vector<std::pair<PyRef, PyRef>> dict;
  // kObject: the BUILD state (often a dict), may be null.
  PyRef state;
  // kTensor / kStorage.
  std::shared_ptr<const TensorView> tensor;

  // Dict lookup by string key; null if absent or not a dict.
  PyRef Get(absl::string_view key) const;
  bool IsString() const { return kind == Kind::kString; }
  // A short description for error messages ("dict", "tensor [512]", "object argparse.Namespace").
  std::string Describe() const;
};

// Resolves a persistent id (torch storages) to a value. Called with the pid object.
using PersistentLoader = std::function<absl::StatusOr<PyRef>(const PyRef& pid)>;

// Builds the value of REDUCE(callable, args) for callables the caller understands;
// returns null to leave the call to the built-in rules (a generic object).
using ReduceHook = std::function<absl::StatusOr<PyRef>(const std::string& callable, const std::vector<PyRef>& args)>;

struct UnpickleOptions {
  // Consulted first for every REDUCE / NEWOBJ (may be empty).
  ReduceHook reduce_hook;
  // Hard limits so that hostile files fail cleanly instead of exhausting memory.
  size_t max_stack = 1 << 20;
  size_t max_memo = 1 << 22;
  size_t max_depth = 1 << 16;
};

// Unpickles one object from `data` starting at `*pos`; on success `*pos` is one past
// the STOP opcode. InvalidArgument naming the opcode and offset on malformed input,
// Unimplemented on opcodes that would execute code (INST/OBJ with unknown semantics,
// EXT*) are not produced by torch.save and are rejected.
absl::StatusOr<PyRef> Unpickle(absl::string_view data, size_t* pos, const PersistentLoader& persistent_load,
                               const UnpickleOptions& options = {});

// Interprets torch's tensor rebuild calls (torch._utils._rebuild_tensor_v2 and
// friends): returns the tensor value, or null if `cls` is not a tensor rebuild.
// The element type of a torch storage class ("torch.FloatStorage" -> kFloat32).
std::optional<DType> TorchStorageDType(absl::string_view cls);

absl::StatusOr<PyRef> RebuildTorchObject(const std::string& cls, const std::vector<PyRef>& args);

}  // namespace ganserve::core

#endif  // GANSERVE_CORE_CHECKPOINT_PICKLE_H_
