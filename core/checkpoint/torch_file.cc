#include "core/checkpoint/torch_file.h"

#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "core/io/zip.h"
#include "core/util/status_macros.h"

namespace ganserve::core {
namespace {

// The legacy format's magic number 0x1950a86a20f9469cfc6c as LONG1 little-endian bytes.
constexpr unsigned char kLegacyMagic[] = {0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19};

PyRef StorageValue(DType dtype, int64_t numel, const uint8_t* data, size_t nbytes, std::shared_ptr<const void> owner) {
  auto view = std::make_shared<TensorView>();
  view->dtype = dtype;
  view->shape = {numel};
  view->data = data;
  view->nbytes = nbytes;
  view->owner = std::move(owner);
  auto v = std::make_shared<PyValue>();
  v->kind = PyValue::Kind::kStorage;
  v->tensor = std::move(view);
  return v;
}

struct StorageId {
  DType dtype;
  std::string key;
  int64_t numel;
  // Legacy only: (view_key, element offset, size) when the pid names a view.
  PyRef view_metadata;
};

absl::StatusOr<StorageId> ParseStoragePid(const PyRef& pid, bool legacy) {
  if (pid->kind != PyValue::Kind::kTuple || pid->items.size() < 5 || !pid->items[0]->IsString() ||
      pid->items[0]->s != "storage") {
    return absl::InvalidArgumentError("unsupported persistent id (expected a torch storage)");
  }
  StorageId id;
  const PyRef& type = pid->items[1];
  if (type->kind != PyValue::Kind::kGlobal) return absl::InvalidArgumentError("storage type is not a class");
  auto dt = TorchStorageDType(type->s);
  if (!dt) return absl::InvalidArgumentError(absl::StrCat("unsupported storage type ", type->s));
  id.dtype = *dt;
  if (!pid->items[2]->IsString()) return absl::InvalidArgumentError("storage key is not a string");
  id.key = pid->items[2]->s;
  if (pid->items[4]->kind != PyValue::Kind::kInt || pid->items[4]->i < 0) {
    return absl::InvalidArgumentError("storage size is not a non-negative integer");
  }
  id.numel = pid->items[4]->i;
  if (legacy && pid->items.size() > 5) id.view_metadata = pid->items[5];
  return id;
}

absl::StatusOr<TorchFile> ParseZip(std::shared_ptr<const MappedFile> file) {
  ASSIGN_OR_RETURN(std::unique_ptr<ZipReader> zip, ZipReader::Open(std::move(file)));
  if (zip->entries().empty()) return absl::InvalidArgumentError("archive is empty");
  const std::string& first = zip->entries()[0].name;
  size_t slash = first.find('/');
  if (slash == std::string::npos) return absl::InvalidArgumentError("archive entries have no top-level folder");
  const std::string prefix = first.substr(0, slash + 1);
  const std::string pkl_name = prefix + "data.pkl";
  if (!zip->Has(pkl_name)) {
    return absl::InvalidArgumentError(absl::StrCat("archive has no ", pkl_name, "; not a PyTorch file"));
  }
  TorchFile out;
  out.format = zip->Has(prefix + "constants.pkl") ? TorchFileFormat::kTorchScript : TorchFileFormat::kZip;

  // Tensor records live in data/ (and, for TorchScript constants, in constants/).
  std::map<std::string, PyRef> storages;
  std::string record_dir = "data/";
  PersistentLoader loader = [&](const PyRef& pid) -> absl::StatusOr<PyRef> {
    ASSIGN_OR_RETURN(StorageId id, ParseStoragePid(pid, false));
    const std::string rec = absl::StrCat(prefix, record_dir, id.key);
    auto it = storages.find(rec);
    if (it != storages.end()) return it->second;
    auto bytes = zip->Read(rec);
    if (!bytes.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("tensor record ", rec, ": ", bytes.status().message()));
    }
    const uint64_t need = static_cast<uint64_t>(id.numel) * DTypeSize(id.dtype);
    if (id.dtype == DType::kUInt8 && bytes->size >= static_cast<uint64_t>(id.numel)) {
      // Untyped storages count bytes.
    } else if (bytes->size < need) {
      return absl::InvalidArgumentError(
          absl::StrCat("tensor record ", rec, " holds ", bytes->size, " bytes, expected ", need, " (file truncated?)"));
    }
    PyRef v = StorageValue(id.dtype, id.numel, bytes->data, bytes->size, bytes->owner);
    storages.emplace(rec, v);
    return v;
  };
  auto parse = [&](const std::string& name) -> absl::StatusOr<PyRef> {
    ASSIGN_OR_RETURN(ZipReader::Bytes b, zip->Read(name, uint64_t{1} << 31));
    size_t pos = 0;
    absl::string_view data(reinterpret_cast<const char*>(b.data), b.size);
    auto v = Unpickle(data, &pos, loader);
    if (!v.ok()) return absl::InvalidArgumentError(absl::StrCat(name, ": ", v.status().message()));
    return v;
  };
  ASSIGN_OR_RETURN(out.root, parse(pkl_name));
  if (out.format == TorchFileFormat::kTorchScript) {
    record_dir = "constants/";
    ASSIGN_OR_RETURN(out.constants, parse(prefix + "constants.pkl"));
  }
  return out;
}

// `data` stays valid while `owner` lives; the tensors point into it.
absl::StatusOr<TorchFile> ParseLegacy(absl::string_view data, const std::shared_ptr<const void>& owner) {
  size_t pos = 0;
  // Header: magic number, protocol version, sys info.
  ASSIGN_OR_RETURN(PyRef magic, Unpickle(data, &pos, nullptr));
  if (magic->kind != PyValue::Kind::kInt || magic->s.size() != sizeof(kLegacyMagic) ||
      std::memcmp(magic->s.data(), kLegacyMagic, sizeof(kLegacyMagic)) != 0) {
    return absl::InvalidArgumentError("not a PyTorch legacy file (bad magic number)");
  }
  ASSIGN_OR_RETURN(PyRef protocol, Unpickle(data, &pos, nullptr));
  if (protocol->kind != PyValue::Kind::kInt || protocol->i != 1001) {
    return absl::InvalidArgumentError("unsupported legacy protocol version");
  }
  ASSIGN_OR_RETURN(PyRef sys_info, Unpickle(data, &pos, nullptr));
  if (auto le = sys_info->Get("little_endian"); le != nullptr && le->kind == PyValue::Kind::kBool && !le->b) {
    return absl::InvalidArgumentError("big-endian legacy checkpoints are not supported");
  }
  const size_t object_pos = pos;

  // Pass 1: learn each root storage's type and size.
  std::map<std::string, StorageId> roots;
  PersistentLoader scan = [&](const PyRef& pid) -> absl::StatusOr<PyRef> {
    ASSIGN_OR_RETURN(StorageId id, ParseStoragePid(pid, true));
    roots.emplace(id.key, id);
    return StorageValue(id.dtype, id.numel, nullptr, 0, nullptr);
  };
  RETURN_IF_ERROR(Unpickle(data, &pos, scan).status());
  ASSIGN_OR_RETURN(PyRef keys, Unpickle(data, &pos, nullptr));
  if (keys->kind != PyValue::Kind::kList) return absl::InvalidArgumentError("legacy storage key list missing");

  // Storage payloads follow in key order, each as int64 element count + raw bytes.
  std::map<std::string, std::pair<size_t, uint64_t>> where;  // key -> (offset, bytes)
  for (const PyRef& k : keys->items) {
    if (!k->IsString()) return absl::InvalidArgumentError("legacy storage key is not a string");
    auto it = roots.find(k->s);
    if (it == roots.end()) {
      return absl::InvalidArgumentError(absl::StrCat("legacy storage ", k->s, " is not referenced"));
    }
    if (data.size() - pos < 8) return absl::InvalidArgumentError("legacy file truncated in the storage data");
    int64_t numel;
    std::memcpy(&numel, data.data() + pos, 8);
    pos += 8;
    const uint64_t nbytes = static_cast<uint64_t>(numel) * DTypeSize(it->second.dtype);
    if (numel < 0 || numel != it->second.numel || data.size() - pos < nbytes) {
      return absl::InvalidArgumentError(absl::StrCat("legacy storage ", k->s, " is truncated or inconsistent"));
    }
    where[k->s] = {pos, nbytes};
    pos += nbytes;
  }

  // Pass 2: the real object graph, with storages pointing into the file.
  std::map<std::string, PyRef> made;
  PersistentLoader load = [&](const PyRef& pid) -> absl::StatusOr<PyRef> {
    ASSIGN_OR_RETURN(StorageId id, ParseStoragePid(pid, true));
    auto w = where.find(id.key);
    if (w == where.end()) return absl::InvalidArgumentError(absl::StrCat("legacy storage ", id.key, " has no data"));
    const uint8_t* base = reinterpret_cast<const uint8_t*>(data.data()) + w->second.first;
    uint64_t nbytes = w->second.second;
    if (id.view_metadata != nullptr && id.view_metadata->kind == PyValue::Kind::kTuple) {
      const auto& vm = id.view_metadata->items;
      if (vm.size() != 3 || vm[1]->kind != PyValue::Kind::kInt || vm[2]->kind != PyValue::Kind::kInt) {
        return absl::InvalidArgumentError("malformed legacy storage view");
      }
      const uint64_t esz = DTypeSize(id.dtype);
      const uint64_t off = static_cast<uint64_t>(vm[1]->i) * esz, len = static_cast<uint64_t>(vm[2]->i) * esz;
      if (vm[1]->i < 0 || vm[2]->i < 0 || off + len > nbytes) {
        return absl::InvalidArgumentError("legacy storage view out of range");
      }
      return StorageValue(id.dtype, vm[2]->i, base + off, len, owner);
    }
    auto it = made.find(id.key);
    if (it != made.end()) return it->second;
    PyRef v = StorageValue(id.dtype, id.numel, base, nbytes, owner);
    made.emplace(id.key, v);
    return v;
  };
  size_t pos2 = object_pos;
  TorchFile out;
  out.format = TorchFileFormat::kLegacy;
  ASSIGN_OR_RETURN(out.root, Unpickle(data, &pos2, load));
  return out;
}

// Plain pickle.dump streams of torch objects (NVIDIA network pickles): with no persistent
// ids, every storage reduces to torch.storage._load_from_bytes(<a legacy torch.save of
// that one storage>). The storage's tensors point into the bytes value, which they keep.
absl::StatusOr<PyRef> ReduceStorageBytes(const std::string& callable, const std::vector<PyRef>& args) {
  if (callable != "torch.storage._load_from_bytes") return PyRef(nullptr);
  if (args.size() != 1 || args[0]->kind != PyValue::Kind::kBytes) {
    return absl::InvalidArgumentError("torch.storage._load_from_bytes without a bytes argument");
  }
  const PyRef& bytes = args[0];
  auto nested = ParseLegacy(bytes->s, bytes);
  if (!nested.ok()) return absl::InvalidArgumentError(absl::StrCat("inlined storage: ", nested.status().message()));
  if (nested->root == nullptr || nested->root->kind != PyValue::Kind::kStorage) {
    return absl::InvalidArgumentError("inlined storage does not hold a storage");
  }
  return nested->root;
}

// A stream starting with PROTO: the legacy torch.save format (its first pickle is the
// magic number) or a plain pickle (its only pickle is the object).
absl::StatusOr<TorchFile> ParsePickleStream(const std::shared_ptr<const MappedFile>& file) {
  absl::string_view data = file->view();
  size_t pos = 0;
  UnpickleOptions options;
  options.reduce_hook = ReduceStorageBytes;
  ASSIGN_OR_RETURN(PyRef first, Unpickle(data, &pos, nullptr, options));
  if (first->kind == PyValue::Kind::kInt && first->s.size() == sizeof(kLegacyMagic) &&
      std::memcmp(first->s.data(), kLegacyMagic, sizeof(kLegacyMagic)) == 0) {
    return ParseLegacy(data, file);
  }
  TorchFile out;
  out.format = TorchFileFormat::kPickle;
  out.root = std::move(first);
  return out;
}

// Tensors of a state dict, or of a TorchScript module tree (objects whose BUILD state
// is a dict of attributes, submodules nested as objects).
void Collect(const PyRef& value, const std::string& prefix, int depth, std::map<std::string, TensorView>* out) {
  if (depth > 64) return;
  const PyRef& dict = value->kind == PyValue::Kind::kObject ? value->state : value;
  if (dict == nullptr || dict->kind != PyValue::Kind::kDict) return;
  for (const auto& [k, v] : dict->dict) {
    if (!k->IsString()) continue;
    if (v->kind == PyValue::Kind::kTensor) {
      (*out)[prefix + k->s] = *v->tensor;
    } else if (v->kind == PyValue::Kind::kObject) {
      Collect(v, prefix + k->s + ".", depth + 1, out);
    }
  }
}

}  // namespace

absl::string_view TorchFileFormatName(TorchFileFormat f) {
  switch (f) {
    case TorchFileFormat::kZip: return "zip";
    case TorchFileFormat::kLegacy: return "legacy";
    case TorchFileFormat::kTorchScript: return "torchscript";
    case TorchFileFormat::kPickle: return "pickle";
  }
  return "?";
}

absl::StatusOr<TorchFile> ParseTorchFile(std::shared_ptr<const MappedFile> file) {
  absl::string_view d = file->view();
  if (d.size() >= 4 && d.substr(0, 4) == absl::string_view("PK\x03\x04", 4)) return ParseZip(std::move(file));
  if (d.size() >= 2 && static_cast<uint8_t>(d[0]) == 0x80) return ParsePickleStream(file);
  if (d.size() > 262 && d.substr(257, 5) == "ustar") {
    return absl::InvalidArgumentError(
        "this is a pre-0.4 PyTorch tar checkpoint; re-save it with torch.save in a current PyTorch");
  }
  return absl::InvalidArgumentError("not a PyTorch file (neither a zip archive nor a pickle stream)");
}

absl::StatusOr<TorchFile> LoadTorchFile(const std::string& path) {
  ASSIGN_OR_RETURN(std::shared_ptr<const MappedFile> file, MappedFile::Open(path));
  auto parsed = ParseTorchFile(std::move(file));
  if (!parsed.ok()) {
    return absl::Status(parsed.status().code(), absl::StrCat(path, ": ", parsed.status().message()));
  }
  return parsed;
}

absl::StatusOr<std::map<std::string, TensorView>> StateDictTensors(const PyRef& value) {
  if (value == nullptr || (value->kind != PyValue::Kind::kDict && value->kind != PyValue::Kind::kObject)) {
    return absl::InvalidArgumentError(
        absl::StrCat("expected a state dict, found ", value == nullptr ? "nothing" : value->Describe()));
  }
  std::map<std::string, TensorView> out;
  Collect(value, "", 0, &out);
  return out;
}

absl::StatusOr<std::map<std::string, TensorView>> LoadStateDictFile(const std::string& path) {
  absl::StatusOr<TorchFile> f = LoadTorchFile(path);
  if (!f.ok()) return absl::Status(f.status().code(), absl::StrCat(path, ": ", f.status().message()));
  PyRef sd = f->root;
  if (PyRef inner = sd->Get("state_dict"); inner != nullptr) sd = inner;
  auto tensors = StateDictTensors(sd);
  if (!tensors.ok()) return absl::Status(tensors.status().code(), absl::StrCat(path, ": ", tensors.status().message()));
  return tensors;
}

std::map<std::string, TensorView> WrappedStateDict::Under(const std::string& prefix) const {
  std::map<std::string, TensorView> out;
  const std::string p = prefix + ".";
  for (const auto& [k, v] : tensors) {
    if (k.compare(0, p.size(), p) == 0) out[k.substr(p.size())] = v;
  }
  return out;
}

absl::StatusOr<WrappedStateDict> LoadWrappedStateDict(const std::string& path, const std::string& what) {
  ASSIGN_OR_RETURN(TorchFile f, LoadTorchFile(path));
  if (f.root == nullptr || f.root->kind != PyValue::Kind::kDict) {
    return absl::InvalidArgumentError(absl::StrCat(what, " is a dict {'state_dict', 'opts', ...}"));
  }
  WrappedStateDict out;
  out.root = f.root;
  const PyRef sd = f.root->Get("state_dict") != nullptr ? f.root->Get("state_dict") : f.root;
  ASSIGN_OR_RETURN(out.tensors, StateDictTensors(sd));
  if (const PyRef opts = f.root->Get("opts"); opts != nullptr && opts->kind == PyValue::Kind::kDict) out.opts = opts;
  return out;
}

}  // namespace ganserve::core
