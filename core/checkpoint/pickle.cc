#include "core/checkpoint/pickle.h"

#include <cstring>
#include <map>
#include <optional>
#include <set>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "core/util/status_macros.h"

namespace ganserve::core {
namespace {

PyRef Make(PyValue::Kind kind) {
  auto v = std::make_shared<PyValue>();
  v->kind = kind;
  return v;
}

PyRef MakeInt(int64_t i) {
  auto v = Make(PyValue::Kind::kInt);
  v->i = i;
  return v;
}

PyRef MakeStr(PyValue::Kind kind, std::string s) {
  auto v = Make(kind);
  v->s = std::move(s);
  return v;
}

class Unpickler {
 public:
  Unpickler(absl::string_view data, size_t pos, const PersistentLoader& pl, const UnpickleOptions& opt)
      : d_(data), p_(pos), persistent_load_(pl), opt_(opt) {}

  absl::StatusOr<PyRef> Run();
  size_t pos() const { return p_; }

 private:
  absl::Status Err(absl::string_view what) const {
    return absl::InvalidArgumentError(
        absl::StrCat("corrupt pickle at byte ", op_pos_, " (opcode 0x", absl::Hex(op_), "): ", what));
  }
  bool Need(size_t n) const { return d_.size() - p_ >= n; }
  template <typename T>
  T ReadLE() {
    T v;
    std::memcpy(&v, d_.data() + p_, sizeof(T));
    p_ += sizeof(T);
    return v;
  }
  absl::StatusOr<absl::string_view> ReadLine() {
    size_t nl = d_.find('\n', p_);
    if (nl == absl::string_view::npos) return Err("unterminated line");
    absl::string_view s = d_.substr(p_, nl - p_);
    p_ = nl + 1;
    return s;
  }
  absl::StatusOr<absl::string_view> ReadBytes(uint64_t n) {
    if (!Need(n)) return Err(absl::StrCat("wants ", n, " bytes, ", d_.size() - p_, " left"));
    absl::string_view s = d_.substr(p_, n);
    p_ += n;
    return s;
  }
  absl::Status Push(PyRef v) {
    if (stack_.size() >= opt_.max_stack) return Err("stack limit exceeded");
    if (v->kind == PyValue::Kind::kList || v->kind == PyValue::Kind::kDict || v->kind == PyValue::Kind::kTuple ||
        v->kind == PyValue::Kind::kObject) {
      containers_.push_back(v);
    }
    stack_.push_back(std::move(v));
    return absl::OkStatus();
  }

 public:
  // Every container seen while unpickling. A hostile pickle can build reference cycles
  // (a list that contains itself), which shared_ptr would leak: callers break them.
  std::vector<PyRef>& containers() { return containers_; }

 private:
  absl::StatusOr<PyRef> Pop() {
    if (stack_.size() <= Floor()) return Err("stack underflow");
    PyRef v = std::move(stack_.back());
    stack_.pop_back();
    return v;
  }
  size_t Floor() const { return marks_.empty() ? 0 : marks_.back(); }
  absl::StatusOr<std::vector<PyRef>> PopMark() {
    if (marks_.empty()) return Err("no MARK on the stack");
    size_t m = marks_.back();
    marks_.pop_back();
    std::vector<PyRef> items(std::make_move_iterator(stack_.begin() + static_cast<ptrdiff_t>(m)),
                             std::make_move_iterator(stack_.end()));
    stack_.resize(m);
    return items;
  }
  absl::Status Memo(uint64_t idx) {
    if (stack_.empty()) return Err("PUT on an empty stack");
    if (idx >= opt_.max_memo) return Err("memo index too large");
    if (memo_.size() <= idx) memo_.resize(idx + 1);
    memo_[idx] = stack_.back();
    return absl::OkStatus();
  }
  absl::Status Get(uint64_t idx) {
    if (idx >= memo_.size() || memo_[idx] == nullptr) return Err(absl::StrCat("memo ", idx, " not defined"));
    return Push(memo_[idx]);
  }
  absl::Status PushLong(absl::string_view bytes) {
    if (bytes.size() > 8) {
      // Only the legacy-format magic number is this large; keep its raw bytes.
      auto v = Make(PyValue::Kind::kInt);
      v->s = std::string(bytes);
      return Push(v);
    }
    uint64_t u = 0;
    for (size_t k = 0; k < bytes.size(); ++k) u |= static_cast<uint64_t>(static_cast<uint8_t>(bytes[k])) << (8 * k);
    if (!bytes.empty() && bytes.size() < 8 && (static_cast<uint8_t>(bytes.back()) & 0x80)) {
      u |= ~uint64_t{0} << (8 * bytes.size());  // sign-extend
    }
    return Push(MakeInt(static_cast<int64_t>(u)));
  }
  absl::Status Reduce(const PyRef& callable, const PyRef& args);
  absl::Status SetItems(std::vector<PyRef> kv);

  absl::string_view d_;
  size_t p_;
  size_t op_pos_ = 0;
  uint8_t op_ = 0;
  const PersistentLoader& persistent_load_;
  const UnpickleOptions& opt_;
  std::vector<PyRef> stack_;
  std::vector<size_t> marks_;
  std::vector<PyRef> memo_;
  std::vector<PyRef> containers_;
};

// Walks the graph under `root` (iterative DFS). Returns true if it reaches one of its
// containers again; `seen` receives every value reached.
bool HasCycle(const PyRef& root, std::set<const PyValue*>* seen) {
  std::map<const PyValue*, int> color;  // 1 on the path, 2 done
  struct Frame {
    const PyValue* v;
    std::vector<const PyValue*> kids;
    size_t next = 0;
  };
  auto kids_of = [](const PyValue* v) {
    std::vector<const PyValue*> k;
    for (const auto& i : v->items) k.push_back(i.get());
    for (const auto& [a, b] : v->dict) {
      k.push_back(a.get());
      k.push_back(b.get());
    }
    if (v->state) k.push_back(v->state.get());
    return k;
  };
  std::vector<Frame> stack;
  stack.push_back({root.get(), kids_of(root.get())});
  color[root.get()] = 1;
  bool cyclic = false;
  while (!stack.empty()) {
    Frame& f = stack.back();
    if (f.next == f.kids.size()) {
      color[f.v] = 2;
      stack.pop_back();
      continue;
    }
    const PyValue* k = f.kids[f.next++];
    auto it = color.find(k);
    if (it != color.end()) {
      if (it->second == 1) cyclic = true;
      continue;
    }
    color[k] = 1;
    stack.push_back({k, kids_of(k)});
  }
  for (const auto& [v, c] : color) seen->insert(v);
  return cyclic;
}

absl::Status Unpickler::SetItems(std::vector<PyRef> kv) {
  if (kv.size() % 2 != 0) return Err("odd number of items for SETITEMS");
  if (stack_.size() <= Floor()) return Err("SETITEMS without a dict");
  PyRef target = stack_.back();
  if (target->kind == PyValue::Kind::kObject) {
    // OrderedDict subclasses and similar: keep items on the object's state dict.
    if (target->state == nullptr) {
      target->state = Make(PyValue::Kind::kDict);
      containers_.push_back(target->state);
    }
    target = target->state;
  }
  if (target->kind != PyValue::Kind::kDict) return Err("SETITEMS on a non-dict");
  for (size_t k = 0; k < kv.size(); k += 2) target->dict.emplace_back(kv[k], kv[k + 1]);
  return absl::OkStatus();
}

absl::Status Unpickler::Reduce(const PyRef& callable, const PyRef& args) {
  if (callable->kind != PyValue::Kind::kGlobal) return Err("REDUCE of a non-class");
  if (args->kind != PyValue::Kind::kTuple) return Err("REDUCE arguments are not a tuple");
  const std::string& cls = callable->s;
  if (opt_.reduce_hook) {
    auto hooked = opt_.reduce_hook(cls, args->items);
    if (!hooked.ok()) return Err(hooked.status().message());
    if (*hooked != nullptr) return Push(*hooked);
  }
  if (cls == "collections.OrderedDict" || cls == "builtins.dict") {
    auto d = Make(PyValue::Kind::kDict);
    return Push(d);
  }
  if (cls == "_codecs.encode" && !args->items.empty() && args->items[0]->IsString()) {
    // Python 2-compatible bytes: encode(str, 'latin1') -> the code points as bytes.
    std::string out;
    const std::string& s = args->items[0]->s;
    for (size_t k = 0; k < s.size();) {
      uint8_t c = static_cast<uint8_t>(s[k]);
      if (c < 0x80) {
        out.push_back(static_cast<char>(c));
        ++k;
      } else if ((c & 0xe0) == 0xc0 && k + 1 < s.size()) {
        out.push_back(static_cast<char>(((c & 0x1f) << 6) | (static_cast<uint8_t>(s[k + 1]) & 0x3f)));
        k += 2;
      } else {
        return Err("_codecs.encode of a non-latin1 string");
      }
    }
    return Push(MakeStr(PyValue::Kind::kBytes, std::move(out)));
  }
  auto rebuilt = RebuildTorchObject(cls, args->items);
  if (!rebuilt.ok()) return Err(rebuilt.status().message());
  if (*rebuilt != nullptr) return Push(*rebuilt);
  auto obj = Make(PyValue::Kind::kObject);
  obj->s = cls;
  obj->items = args->items;
  return Push(obj);
}

absl::StatusOr<PyRef> Unpickler::Run() {
  size_t depth = 0;
  while (true) {
    if (!Need(1)) return Err("ran out of data before STOP");
    op_pos_ = p_;
    op_ = static_cast<uint8_t>(d_[p_++]);
    if (++depth > opt_.max_depth * 64) return Err("too many opcodes");
    switch (op_) {
      case 0x80: {  // PROTO
        if (!Need(1)) return Err("truncated");
        uint8_t proto = static_cast<uint8_t>(d_[p_++]);
        if (proto > 5) return Err(absl::StrCat("unsupported pickle protocol ", proto));
        break;
      }
      case 0x95:  // FRAME: just a length hint
        if (!Need(8)) return Err("truncated");
        p_ += 8;
        break;
      case '.': {  // STOP
        if (stack_.size() != 1 || !marks_.empty()) {
          if (stack_.empty()) return Err("STOP with an empty stack");
        }
        return stack_.back();
      }
      case '(':  // MARK
        if (marks_.size() >= opt_.max_depth) return Err("MARK nesting too deep");
        marks_.push_back(stack_.size());
        break;
      case '0': {  // POP
        auto v = Pop();
        if (!v.ok()) return v.status();
        break;
      }
      case '1': {  // POP_MARK
        auto v = PopMark();
        if (!v.ok()) return v.status();
        break;
      }
      case '2':  // DUP
        if (stack_.size() <= Floor()) return Err("DUP on an empty stack");
        RETURN_IF_ERROR(Push(stack_.back()));
        break;
      case 'N': RETURN_IF_ERROR(Push(Make(PyValue::Kind::kNone))); break;
      case 0x88:
      case 0x89: {
        auto v = Make(PyValue::Kind::kBool);
        v->b = op_ == 0x88;
        RETURN_IF_ERROR(Push(v));
        break;
      }
      case 'J':
        if (!Need(4)) return Err("truncated");
        RETURN_IF_ERROR(Push(MakeInt(ReadLE<int32_t>())));
        break;
      case 'K':
        if (!Need(1)) return Err("truncated");
        RETURN_IF_ERROR(Push(MakeInt(ReadLE<uint8_t>())));
        break;
      case 'M':
        if (!Need(2)) return Err("truncated");
        RETURN_IF_ERROR(Push(MakeInt(ReadLE<uint16_t>())));
        break;
      case 0x8a: {  // LONG1
        if (!Need(1)) return Err("truncated");
        uint8_t n = ReadLE<uint8_t>();
        auto b = ReadBytes(n);
        if (!b.ok()) return b.status();
        RETURN_IF_ERROR(PushLong(*b));
        break;
      }
      case 0x8b: {  // LONG4
        if (!Need(4)) return Err("truncated");
        int32_t n = ReadLE<int32_t>();
        if (n < 0) return Err("negative length");
        auto b = ReadBytes(static_cast<uint64_t>(n));
        if (!b.ok()) return b.status();
        RETURN_IF_ERROR(PushLong(*b));
        break;
      }
      case 'I':
      case 'L': {  // INT / LONG (text)
        auto line = ReadLine();
        if (!line.ok()) return line.status();
        absl::string_view t = *line;
        if (!t.empty() && t.back() == 'L') t.remove_suffix(1);
        if (t == "01" || t == "00") {
          auto v = Make(PyValue::Kind::kBool);
          v->b = t == "01";
          RETURN_IF_ERROR(Push(v));
          break;
        }
        int64_t i;
        if (!absl::SimpleAtoi(t, &i)) return Err("bad integer literal");
        RETURN_IF_ERROR(Push(MakeInt(i)));
        break;
      }
      case 'G': {  // BINFLOAT, big-endian double
        if (!Need(8)) return Err("truncated");
        uint64_t u = 0;
        for (int k = 0; k < 8; ++k) u = (u << 8) | static_cast<uint8_t>(d_[p_ + k]);
        p_ += 8;
        auto v = Make(PyValue::Kind::kFloat);
        std::memcpy(&v->f, &u, 8);
        RETURN_IF_ERROR(Push(v));
        break;
      }
      case 'F': {
        auto line = ReadLine();
        if (!line.ok()) return line.status();
        auto v = Make(PyValue::Kind::kFloat);
        if (!absl::SimpleAtod(*line, &v->f)) return Err("bad float literal");
        RETURN_IF_ERROR(Push(v));
        break;
      }
      case 'X':
      case 0x8c:
      case 0x8d:
      case 'T':
      case 'U':
      case 'B':
      case 'C':
      case 0x8e:
      case 0x96: {
        uint64_t n;
        size_t width = (op_ == 0x8c || op_ == 'U' || op_ == 'C')     ? 1
                       : (op_ == 0x8d || op_ == 0x8e || op_ == 0x96) ? 8
                                                                     : 4;
        if (!Need(width)) return Err("truncated");
        n = width == 1 ? ReadLE<uint8_t>() : width == 4 ? ReadLE<uint32_t>() : ReadLE<uint64_t>();
        auto b = ReadBytes(n);
        if (!b.ok()) return b.status();
        const bool text = op_ == 'X' || op_ == 0x8c || op_ == 0x8d || op_ == 'T' || op_ == 'U';
        RETURN_IF_ERROR(Push(MakeStr(text ? PyValue::Kind::kString : PyValue::Kind::kBytes, std::string(*b))));
        break;
      }
      case 'V':
      case 'S': {  // UNICODE / STRING (text protocol 0)
        auto line = ReadLine();
        if (!line.ok()) return line.status();
        absl::string_view t = *line;
        if (op_ == 'S' && t.size() >= 2 && (t.front() == '\'' || t.front() == '"')) t = t.substr(1, t.size() - 2);
        RETURN_IF_ERROR(Push(MakeStr(PyValue::Kind::kString, std::string(t))));
        break;
      }
      case '}': RETURN_IF_ERROR(Push(Make(PyValue::Kind::kDict))); break;
      case ']': RETURN_IF_ERROR(Push(Make(PyValue::Kind::kList))); break;
      case ')': RETURN_IF_ERROR(Push(Make(PyValue::Kind::kTuple))); break;
      case 0x8f: RETURN_IF_ERROR(Push(Make(PyValue::Kind::kList))); break;  // EMPTY_SET as a list
      case 'd':
      case 'l':
      case 't':
      case 0x91: {  // DICT / LIST / TUPLE / FROZENSET from MARK
        auto items = PopMark();
        if (!items.ok()) return items.status();
        PyRef v;
        if (op_ == 'd') {
          v = Make(PyValue::Kind::kDict);
          if (items->size() % 2) return Err("odd number of items for DICT");
          for (size_t k = 0; k < items->size(); k += 2) v->dict.emplace_back((*items)[k], (*items)[k + 1]);
        } else {
          v = Make(op_ == 't' ? PyValue::Kind::kTuple : PyValue::Kind::kList);
          v->items = std::move(*items);
        }
        RETURN_IF_ERROR(Push(v));
        break;
      }
      case 0x85:
      case 0x86:
      case 0x87: {  // TUPLE1..3
        size_t n = op_ - 0x84u;
        if (stack_.size() < Floor() + n) return Err("stack underflow");
        auto v = Make(PyValue::Kind::kTuple);
        v->items.assign(stack_.end() - static_cast<ptrdiff_t>(n), stack_.end());
        stack_.resize(stack_.size() - n);
        RETURN_IF_ERROR(Push(v));
        break;
      }
      case 'a': {  // APPEND
        auto v = Pop();
        if (!v.ok()) return v.status();
        if (stack_.size() <= Floor() || stack_.back()->kind != PyValue::Kind::kList) return Err("APPEND to a non-list");
        stack_.back()->items.push_back(*v);
        break;
      }
      case 'e':
      case 0x90: {  // APPENDS / ADDITEMS
        auto items = PopMark();
        if (!items.ok()) return items.status();
        if (stack_.empty() || stack_.back()->kind != PyValue::Kind::kList) return Err("APPENDS to a non-list");
        for (auto& it : *items) stack_.back()->items.push_back(it);
        break;
      }
      case 's': {  // SETITEM
        if (stack_.size() < Floor() + 3) return Err("stack underflow");
        std::vector<PyRef> kv{stack_[stack_.size() - 2], stack_.back()};
        stack_.resize(stack_.size() - 2);
        RETURN_IF_ERROR(SetItems(std::move(kv)));
        break;
      }
      case 'u': {  // SETITEMS
        auto items = PopMark();
        if (!items.ok()) return items.status();
        RETURN_IF_ERROR(SetItems(std::move(*items)));
        break;
      }
      case 'q':
        if (!Need(1)) return Err("truncated");
        RETURN_IF_ERROR(Memo(ReadLE<uint8_t>()));
        break;
      case 'r':
        if (!Need(4)) return Err("truncated");
        RETURN_IF_ERROR(Memo(ReadLE<uint32_t>()));
        break;
      case 0x94: RETURN_IF_ERROR(Memo(memo_.size())); break;  // MEMOIZE
      case 'p': {
        auto line = ReadLine();
        if (!line.ok()) return line.status();
        uint64_t idx;
        if (!absl::SimpleAtoi(*line, &idx)) return Err("bad PUT index");
        RETURN_IF_ERROR(Memo(idx));
        break;
      }
      case 'h':
        if (!Need(1)) return Err("truncated");
        RETURN_IF_ERROR(Get(ReadLE<uint8_t>()));
        break;
      case 'j':
        if (!Need(4)) return Err("truncated");
        RETURN_IF_ERROR(Get(ReadLE<uint32_t>()));
        break;
      case 'g': {
        auto line = ReadLine();
        if (!line.ok()) return line.status();
        uint64_t idx;
        if (!absl::SimpleAtoi(*line, &idx)) return Err("bad GET index");
        RETURN_IF_ERROR(Get(idx));
        break;
      }
      case 'c': {  // GLOBAL "module\nname\n"
        auto mod = ReadLine();
        if (!mod.ok()) return mod.status();
        auto name = ReadLine();
        if (!name.ok()) return name.status();
        RETURN_IF_ERROR(Push(MakeStr(PyValue::Kind::kGlobal, absl::StrCat(*mod, ".", *name))));
        break;
      }
      case 0x93: {  // STACK_GLOBAL
        auto name = Pop();
        if (!name.ok()) return name.status();
        auto mod = Pop();
        if (!mod.ok()) return mod.status();
        if (!(*name)->IsString() || !(*mod)->IsString()) return Err("STACK_GLOBAL of non-strings");
        RETURN_IF_ERROR(Push(MakeStr(PyValue::Kind::kGlobal, absl::StrCat((*mod)->s, ".", (*name)->s))));
        break;
      }
      case 'R': {  // REDUCE
        auto args = Pop();
        if (!args.ok()) return args.status();
        auto fn = Pop();
        if (!fn.ok()) return fn.status();
        RETURN_IF_ERROR(Reduce(*fn, *args));
        break;
      }
      case 0x81: {  // NEWOBJ cls args
        auto args = Pop();
        if (!args.ok()) return args.status();
        auto cls = Pop();
        if (!cls.ok()) return cls.status();
        if ((*cls)->kind != PyValue::Kind::kGlobal || (*args)->kind != PyValue::Kind::kTuple) return Err("bad NEWOBJ");
        RETURN_IF_ERROR(Reduce(*cls, *args));
        break;
      }
      case 0x92: {  // NEWOBJ_EX cls args kwargs
        auto kwargs = Pop();
        if (!kwargs.ok()) return kwargs.status();
        auto args = Pop();
        if (!args.ok()) return args.status();
        auto cls = Pop();
        if (!cls.ok()) return cls.status();
        if ((*cls)->kind != PyValue::Kind::kGlobal || (*args)->kind != PyValue::Kind::kTuple) {
          return Err("bad NEWOBJ_EX");
        }
        RETURN_IF_ERROR(Reduce(*cls, *args));
        break;
      }
      case 'b': {  // BUILD
        auto state = Pop();
        if (!state.ok()) return state.status();
        if (stack_.size() <= Floor()) return Err("BUILD on an empty stack");
        PyRef target = stack_.back();
        if (target->kind == PyValue::Kind::kObject) {
          target->state = *state;
        }
        // BUILD on dicts (OrderedDict metadata) and tensors (hooks) is ignored.
        break;
      }
      case 'Q': {  // BINPERSID
        auto pid = Pop();
        if (!pid.ok()) return pid.status();
        if (!persistent_load_) return Err("persistent id without a loader");
        auto v = persistent_load_(*pid);
        if (!v.ok()) return v.status();
        RETURN_IF_ERROR(Push(*v));
        break;
      }
      case 'P': {
        auto line = ReadLine();
        if (!line.ok()) return line.status();
        if (!persistent_load_) return Err("persistent id without a loader");
        auto v = persistent_load_(MakeStr(PyValue::Kind::kString, std::string(*line)));
        if (!v.ok()) return v.status();
        RETURN_IF_ERROR(Push(*v));
        break;
      }
      default: return Err("unsupported opcode (torch.save never writes it; the file is corrupt or not a checkpoint)");
    }
  }
}

}  // namespace

std::optional<DType> TorchStorageDType(absl::string_view cls) {
  // "torch.FloatStorage" etc.; newer writers may use "torch.storage.UntypedStorage".
  static const std::pair<absl::string_view, DType> kTable[] = {
      {"torch.FloatStorage", DType::kFloat32},
      {"torch.DoubleStorage", DType::kFloat64},
      {"torch.HalfStorage", DType::kFloat16},
      {"torch.BFloat16Storage", DType::kBFloat16},
      {"torch.LongStorage", DType::kInt64},
      {"torch.IntStorage", DType::kInt32},
      {"torch.ShortStorage", DType::kInt16},
      {"torch.CharStorage", DType::kInt8},
      {"torch.ByteStorage", DType::kUInt8},
      {"torch.BoolStorage", DType::kBool},
      {"torch.storage.UntypedStorage", DType::kUInt8},
      {"torch.UntypedStorage", DType::kUInt8},
  };
  for (const auto& [name, dt] : kTable) {
    if (cls == name) return dt;
  }
  return std::nullopt;
}

PyRef PyValue::Get(absl::string_view key) const {
  if (kind != Kind::kDict) return nullptr;
  for (const auto& [k, v] : dict) {
    if (k->kind == Kind::kString && k->s == key) return v;
  }
  return nullptr;
}

std::string PyValue::Describe() const {
  switch (kind) {
    case Kind::kNone: return "None";
    case Kind::kBool: return "bool";
    case Kind::kInt: return "int";
    case Kind::kFloat: return "float";
    case Kind::kString: return "str";
    case Kind::kBytes: return "bytes";
    case Kind::kTuple: return absl::StrCat("tuple of ", items.size());
    case Kind::kList: return absl::StrCat("list of ", items.size());
    case Kind::kDict: return absl::StrCat("dict of ", dict.size());
    case Kind::kGlobal: return absl::StrCat("class ", s);
    case Kind::kObject: return absl::StrCat("object ", s);
    case Kind::kTensor: return absl::StrCat("tensor ", DTypeName(tensor->dtype), " ", ShapeString(tensor->shape));
    case Kind::kStorage: return "storage";
  }
  return "?";
}

absl::StatusOr<PyRef> RebuildTorchObject(const std::string& cls, const std::vector<PyRef>& args) {
  if (cls == "torch._utils._rebuild_tensor_v2" || cls == "torch._utils._rebuild_tensor") {
    if (args.size() < 4) return absl::InvalidArgumentError("tensor rebuild with too few arguments");
    const PyRef& storage = args[0];
    if (storage->kind != PyValue::Kind::kStorage) return absl::InvalidArgumentError("tensor rebuild without a storage");
    if (args[1]->kind != PyValue::Kind::kInt || args[2]->kind != PyValue::Kind::kTuple ||
        args[3]->kind != PyValue::Kind::kTuple || args[2]->items.size() != args[3]->items.size()) {
      return absl::InvalidArgumentError("tensor rebuild with malformed size/stride");
    }
    auto view = std::make_shared<TensorView>(*storage->tensor);
    view->offset = args[1]->i;
    view->shape.clear();
    view->strides.clear();
    for (size_t k = 0; k < args[2]->items.size(); ++k) {
      if (args[2]->items[k]->kind != PyValue::Kind::kInt || args[3]->items[k]->kind != PyValue::Kind::kInt) {
        return absl::InvalidArgumentError("tensor size/stride entries must be integers");
      }
      view->shape.push_back(args[2]->items[k]->i);
      view->strides.push_back(args[3]->items[k]->i);
    }
    if (view->offset < 0 || view->numel() < 0) {
      return absl::InvalidArgumentError("tensor with a negative size or offset");
    }
    auto v = Make(PyValue::Kind::kTensor);
    v->tensor = std::move(view);
    return v;
  }
  if (cls == "torch._utils._rebuild_parameter" || cls == "torch._utils._rebuild_parameter_with_state") {
    if (args.empty() || args[0]->kind != PyValue::Kind::kTensor) {
      return absl::InvalidArgumentError("parameter rebuild without a tensor");
    }
    return args[0];
  }
  if (cls == "torch._tensor._rebuild_from_type_v2") {
    // (func, new_type, args, state): the tensor is func(*args).
    if (args.size() < 3 || args[0]->kind != PyValue::Kind::kGlobal || args[2]->kind != PyValue::Kind::kTuple) {
      return absl::InvalidArgumentError("malformed _rebuild_from_type_v2");
    }
    return RebuildTorchObject(args[0]->s, args[2]->items);
  }
  if (cls == "torch._utils._rebuild_qtensor" || cls == "torch._utils._rebuild_sparse_tensor") {
    return absl::InvalidArgumentError(absl::StrCat("unsupported tensor kind (", cls, ")"));
  }
  return PyRef(nullptr);
}

absl::StatusOr<PyRef> Unpickle(absl::string_view data, size_t* pos, const PersistentLoader& persistent_load,
                               const UnpickleOptions& options) {
  Unpickler u(data, *pos, persistent_load, options);
  auto v = u.Run();
  std::set<const PyValue*> reachable;
  const bool cyclic = v.ok() && HasCycle(*v, &reachable);
  // Only the result escapes. Containers built but left unreachable (popped, or kept only
  // in the memo) may hold cycles of their own that shared_ptr would leak: empty them, and
  // on failure or a cycle in the result, empty everything.
  for (auto& c : u.containers()) {
    if (v.ok() && !cyclic && reachable.count(c.get()) != 0) continue;
    c->items.clear();
    c->dict.clear();
    c->state.reset();
  }
  if (cyclic) return absl::InvalidArgumentError("pickle contains a reference cycle; checkpoints never do");
  if (!v.ok()) return v;
  *pos = u.pos();
  return v;
}

}  // namespace ganserve::core
