#include "core/checkpoint/safetensors.h"

#include <cstring>
#include <nlohmann/json.hpp>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/util/file_util.h"
#include "core/util/status_macros.h"

namespace ganserve::core {
namespace {

constexpr uint64_t kMaxHeader = 100u << 20;

absl::Status Bad(absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("invalid safetensors file: ", what));
}

}  // namespace

absl::StatusOr<SafetensorsFile> ParseSafetensors(const std::shared_ptr<const MappedFile>& file) {
  const uint64_t size = file->size();
  if (size < 8) return Bad("shorter than its 8-byte header length");
  uint64_t header_len;
  std::memcpy(&header_len, file->data(), 8);
  if (header_len > kMaxHeader || header_len > size - 8) return Bad("header length exceeds the file");
  nlohmann::json header = nlohmann::json::parse(file->data() + 8, file->data() + 8 + header_len, nullptr, false);
  if (header.is_discarded() || !header.is_object()) return Bad("header is not a JSON object");
  const uint64_t data_start = 8 + header_len;
  const uint64_t data_len = size - data_start;
  SafetensorsFile out;
  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  for (auto it = header.begin(); it != header.end(); ++it) {
    if (it.key() == "__metadata__") {
      if (!it->is_object()) return Bad("__metadata__ is not an object");
      for (auto m = it->begin(); m != it->end(); ++m) {
        if (!m->is_string()) return Bad("__metadata__ values must be strings");
        out.metadata[m.key()] = m->get<std::string>();
      }
      continue;
    }
    const auto& e = *it;
    if (!e.is_object() || !e.contains("dtype") || !e.contains("shape") || !e.contains("data_offsets") ||
        !e["dtype"].is_string() || !e["shape"].is_array() || !e["data_offsets"].is_array() ||
        e["data_offsets"].size() != 2) {
      return Bad(absl::StrCat("entry '", it.key(), "' is malformed"));
    }
    TensorView v;
    const std::string dt = e["dtype"].get<std::string>();
    static const std::pair<const char*, DType> kTypes[] = {
        {"F32", DType::kFloat32}, {"F64", DType::kFloat64}, {"F16", DType::kFloat16}, {"BF16", DType::kBFloat16},
        {"I64", DType::kInt64},   {"I32", DType::kInt32},   {"I16", DType::kInt16},   {"I8", DType::kInt8},
        {"U8", DType::kUInt8},    {"BOOL", DType::kBool}};
    bool found = false;
    for (const auto& [name, d] : kTypes) {
      if (dt == name) {
        v.dtype = d;
        found = true;
      }
    }
    if (!found) return Bad(absl::StrCat("entry '", it.key(), "' has unsupported dtype ", dt));
    for (const auto& d : e["shape"]) {
      if (!d.is_number_unsigned()) return Bad(absl::StrCat("entry '", it.key(), "' has a bad shape"));
      v.shape.push_back(d.get<int64_t>());
    }
    const auto& offs = e["data_offsets"];
    if (!offs[0].is_number_unsigned() || !offs[1].is_number_unsigned()) return Bad("bad data_offsets");
    uint64_t b = offs[0].get<uint64_t>(), en = offs[1].get<uint64_t>();
    const int64_t n = v.numel();
    if (n < 0) return Bad(absl::StrCat("entry '", it.key(), "' has an overflowing shape"));
    if (b > en || en > data_len || en - b != static_cast<uint64_t>(n) * DTypeSize(v.dtype)) {
      return Bad(absl::StrCat("entry '", it.key(), "' has offsets that do not match its shape or the file"));
    }
    ranges.emplace_back(b, en);
    v.data = file->data() + data_start + b;
    v.nbytes = en - b;
    v.owner = file;
    out.tensors.emplace(it.key(), std::move(v));
  }
  std::sort(ranges.begin(), ranges.end());
  for (size_t i = 1; i < ranges.size(); ++i) {
    if (ranges[i].first < ranges[i - 1].second) return Bad("tensor data ranges overlap");
  }
  return out;
}

absl::StatusOr<SafetensorsFile> LoadSafetensors(const std::string& path) {
  ASSIGN_OR_RETURN(std::shared_ptr<const MappedFile> file, MappedFile::Open(path));
  auto parsed = ParseSafetensors(file);
  if (!parsed.ok()) return absl::Status(parsed.status().code(), absl::StrCat(path, ": ", parsed.status().message()));
  return parsed;
}

std::string EncodeSafetensors(const std::map<std::string, FloatTensor>& tensors,
                              const std::map<std::string, std::string>& metadata, DType dtype) {
  const bool half = dtype == DType::kFloat16 || dtype == DType::kBFloat16;
  if (!half) dtype = DType::kFloat32;
  const size_t elem = half ? 2 : sizeof(float);
  nlohmann::json header = nlohmann::json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  uint64_t off = 0;
  for (const auto& [name, t] : tensors) {
    uint64_t n = t.data.size() * elem;
    header[name] = {{"dtype", std::string(DTypeName(dtype))}, {"shape", t.shape}, {"data_offsets", {off, off + n}}};
    off += n;
  }
  std::string h = header.dump();
  h.append((8 - h.size() % 8) % 8, ' ');
  std::string out(8, '\0');
  uint64_t hl = h.size();
  std::memcpy(out.data(), &hl, 8);
  out += h;
  out.reserve(out.size() + off);
  for (const auto& [name, t] : tensors) {
    if (!half) {
      out.append(reinterpret_cast<const char*>(t.data.data()), t.data.size() * sizeof(float));
      continue;
    }
    std::vector<uint16_t> h(t.data.size());
    for (size_t i = 0; i < h.size(); ++i) {
      h[i] = dtype == DType::kFloat16 ? FloatToHalf(t.data[i]) : FloatToBFloat16(t.data[i]);
    }
    out.append(reinterpret_cast<const char*>(h.data()), h.size() * 2);
  }
  return out;
}

absl::Status SaveSafetensors(const std::string& path, const std::map<std::string, FloatTensor>& tensors,
                             const std::map<std::string, std::string>& metadata, DType dtype) {
  return WriteFileAtomic(path, EncodeSafetensors(tensors, metadata, dtype));
}

}  // namespace ganserve::core
