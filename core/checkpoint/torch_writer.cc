#include "core/checkpoint/torch_writer.h"

#include <cstdint>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "core/io/zip.h"

namespace ganserve::core {
namespace {

// Pickle protocol 2 opcodes (the subset torch.load(weights_only=True) accepts).
constexpr char kProto = '\x80', kStop = '.', kMark = '(', kEmptyDict = '}', kEmptyTuple = ')', kTuple = 't',
               kSetItems = 'u', kReduce = 'R', kGlobal = 'c', kBinUnicode = 'X', kBinInt = 'J', kLong1 = '\x8a',
               kBinPersId = 'Q', kNewFalse = '\x89';

class PickleOut {
 public:
  PickleOut() { out_ = {kProto, '\x02'}; }

  void Op(char op) { out_.push_back(op); }
  void Global(const char* module, const char* name) {
    absl::StrAppend(&out_, std::string(1, kGlobal), module, "\n", name, "\n");
  }
  void Str(const std::string& s) {
    Op(kBinUnicode);
    Put32(static_cast<uint32_t>(s.size()));
    out_ += s;
  }
  void Int(int64_t v) {
    if (v >= INT32_MIN && v <= INT32_MAX) {
      Op(kBinInt);
      Put32(static_cast<uint32_t>(static_cast<int32_t>(v)));
      return;
    }
    // LONG1: little-endian two's complement, 8 bytes always suffice.
    Op(kLong1);
    out_.push_back('\x08');
    for (int i = 0; i < 8; ++i) out_.push_back(static_cast<char>((static_cast<uint64_t>(v) >> (8 * i)) & 0xff));
  }
  void IntTuple(const std::vector<int64_t>& values) {
    Op(kMark);
    for (int64_t v : values) Int(v);
    Op(kTuple);
  }
  std::string Finish() {
    Op(kStop);
    return std::move(out_);
  }

 private:
  void Put32(uint32_t v) {
    for (int i = 0; i < 4; ++i) out_.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  }
  std::string out_;
};

// _rebuild_tensor_v2(persistent_load(('storage', FloatStorage, key, 'cpu', numel)), 0,
// shape, stride, False, OrderedDict()): exactly six arguments (torch 1.7 has no defaults).
void Tensor(PickleOut& p, const FloatTensor& t, const std::string& key) {
  p.Global("torch._utils", "_rebuild_tensor_v2");
  p.Op(kMark);
  p.Op(kMark);
  p.Str("storage");
  p.Global("torch", "FloatStorage");
  p.Str(key);
  p.Str("cpu");
  p.Int(t.numel());
  p.Op(kTuple);
  p.Op(kBinPersId);
  p.Int(0);
  p.IntTuple(t.shape);
  std::vector<int64_t> stride(t.shape.size(), 1);
  for (size_t i = t.shape.size(); i-- > 1;) stride[i - 1] = stride[i] * t.shape[i];
  p.IntTuple(stride);
  p.Op(kNewFalse);
  p.Global("collections", "OrderedDict");
  p.Op(kEmptyTuple);
  p.Op(kReduce);
  p.Op(kTuple);
  p.Op(kReduce);
}

}  // namespace

std::string EncodeTorchSave(const std::vector<TorchSaveEntry>& entries) {
  PickleOut p;
  std::vector<const FloatTensor*> records;  // storage key i -> its tensor
  auto tensor = [&](const FloatTensor& t) {
    Tensor(p, t, std::to_string(records.size()));
    records.push_back(&t);
  };
  p.Op(kEmptyDict);
  p.Op(kMark);
  for (const auto& e : entries) {
    p.Str(e.name);
    if (const auto* sd = std::get_if<std::map<std::string, FloatTensor>>(&e.value)) {
      p.Global("collections", "OrderedDict");
      p.Op(kEmptyTuple);
      p.Op(kReduce);
      p.Op(kMark);
      for (const auto& [name, t] : *sd) {
        p.Str(name);
        tensor(t);
      }
      p.Op(kSetItems);
    } else {
      tensor(std::get<FloatTensor>(e.value));
    }
  }
  p.Op(kSetItems);

  ZipWriter zip;
  zip.Add("archive/data.pkl", p.Finish());
  for (size_t i = 0; i < records.size(); ++i) {
    const FloatTensor& t = *records[i];
    zip.Add(absl::StrCat("archive/data/", i),
            absl::string_view(reinterpret_cast<const char*>(t.data.data()), t.data.size() * sizeof(float)), 64);
  }
  zip.Add("archive/version", "3\n");
  return zip.Finish();
}

}  // namespace ganserve::core
