#include "core/io/npy.h"

#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "core/io/zip.h"
#include "core/util/file_util.h"

namespace ganserve::core {
namespace {

absl::Status Bad(absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("invalid .npy data: ", what));
}

// Finds the value text of 'key' in the header dict literal.
absl::StatusOr<absl::string_view> HeaderValue(absl::string_view header, absl::string_view key) {
  std::string quoted = absl::StrCat("'", key, "'");
  size_t k = header.find(quoted);
  if (k == absl::string_view::npos) return Bad(absl::StrCat("header has no ", quoted));
  size_t colon = header.find(':', k + quoted.size());
  if (colon == absl::string_view::npos) return Bad("malformed header");
  absl::string_view rest = header.substr(colon + 1);
  rest = absl::StripLeadingAsciiWhitespace(rest);
  if (rest.empty()) return Bad("malformed header");
  if (rest[0] == '(') {
    size_t close = rest.find(')');
    if (close == absl::string_view::npos) return Bad("malformed shape");
    return rest.substr(0, close + 1);
  }
  size_t end = rest.find_first_of(",}");
  return absl::StripTrailingAsciiWhitespace(rest.substr(0, end));
}

std::string HeaderFor(absl::string_view descr, const std::vector<int64_t>& shape) {
  std::string shape_s = "(";
  for (size_t i = 0; i < shape.size(); ++i) {
    absl::StrAppend(&shape_s, shape[i], shape.size() == 1 ? "," : (i + 1 < shape.size() ? ", " : ""));
  }
  shape_s += ")";
  std::string dict = absl::StrCat("{'descr': '", descr, "', 'fortran_order': False, 'shape': ", shape_s, ", }");
  // Total header (magic 6 + version 2 + len 2 + dict + '\n') padded to 64 bytes.
  size_t total = 10 + dict.size() + 1;
  dict.append((64 - total % 64) % 64, ' ');
  dict += '\n';
  std::string out("\x93NUMPY\x01\x00", 8);
  out.push_back(static_cast<char>(dict.size() & 0xff));
  out.push_back(static_cast<char>(dict.size() >> 8));
  out += dict;
  return out;
}

}  // namespace

absl::StatusOr<TensorView> ParseNpy(std::shared_ptr<const std::string> bytes) {
  const std::string& s = *bytes;
  if (s.size() < 10 || std::memcmp(s.data(), "\x93NUMPY", 6) != 0) return Bad("missing magic string");
  const uint8_t major = static_cast<uint8_t>(s[6]);
  size_t header_len, header_start;
  if (major == 1) {
    header_len = static_cast<uint8_t>(s[8]) | (static_cast<uint8_t>(s[9]) << 8);
    header_start = 10;
  } else if (major == 2 || major == 3) {
    if (s.size() < 12) return Bad("truncated header");
    header_len = static_cast<uint32_t>(static_cast<uint8_t>(s[8]) | (static_cast<uint8_t>(s[9]) << 8) |
                                       (static_cast<uint8_t>(s[10]) << 16) |
                                       (static_cast<uint32_t>(static_cast<uint8_t>(s[11])) << 24));
    header_start = 12;
  } else {
    return Bad(absl::StrCat("unsupported format version ", major));
  }
  if (header_len > s.size() - header_start) return Bad("truncated header");
  absl::string_view header(s.data() + header_start, header_len);

  auto descr_or = HeaderValue(header, "descr");
  if (!descr_or.ok()) return descr_or.status();
  absl::string_view descr = absl::StripSuffix(absl::StripPrefix(*descr_or, "'"), "'");
  TensorView v;
  if (descr == "<f4")
    v.dtype = DType::kFloat32;
  else if (descr == "<f8")
    v.dtype = DType::kFloat64;
  else if (descr == "<f2")
    v.dtype = DType::kFloat16;
  else if (descr == "<i8")
    v.dtype = DType::kInt64;
  else if (descr == "<i4")
    v.dtype = DType::kInt32;
  else if (descr == "<i2")
    v.dtype = DType::kInt16;
  else if (descr == "|i1")
    v.dtype = DType::kInt8;
  else if (descr == "|u1")
    v.dtype = DType::kUInt8;
  else if (descr == "|b1")
    v.dtype = DType::kBool;
  else
    return Bad(absl::StrCat("unsupported dtype '", descr, "' (use little-endian float or int)"));

  auto fortran_or = HeaderValue(header, "fortran_order");
  if (!fortran_or.ok()) return fortran_or.status();
  const bool fortran = *fortran_or == "True";

  auto shape_or = HeaderValue(header, "shape");
  if (!shape_or.ok()) return shape_or.status();
  absl::string_view shape_s = absl::StripSuffix(absl::StripPrefix(*shape_or, "("), ")");
  for (absl::string_view part : absl::StrSplit(shape_s, ',', absl::SkipWhitespace())) {
    int64_t d;
    if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(part), &d) || d < 0) {
      return Bad(absl::StrCat("bad shape entry '", part, "'"));
    }
    v.shape.push_back(d);
  }
  const int64_t n = v.numel();
  if (n < 0) return Bad("shape overflows");
  const size_t data_start = header_start + header_len;
  const uint64_t need = static_cast<uint64_t>(n) * DTypeSize(v.dtype);
  if (n > 0 && need / static_cast<uint64_t>(n) != DTypeSize(v.dtype)) return Bad("shape overflows");
  if (s.size() - data_start < need) {
    return Bad(absl::StrCat("data is ", s.size() - data_start, " bytes, the header says ", need));
  }
  if (fortran && v.shape.size() > 1 && n > 0) {
    v.strides.assign(v.shape.size(), 1);
    for (size_t i = 1; i < v.shape.size(); ++i) v.strides[i] = v.strides[i - 1] * v.shape[i - 1];
  }
  v.data = reinterpret_cast<const uint8_t*>(s.data() + data_start);
  v.nbytes = need;
  v.owner = std::move(bytes);
  return v;
}

absl::StatusOr<TensorView> ReadNpy(const std::string& path) {
  auto data = ReadFile(path);
  if (!data.ok()) return data.status();
  auto view = ParseNpy(std::make_shared<const std::string>(std::move(*data)));
  if (!view.ok()) return absl::InvalidArgumentError(absl::StrCat(path, ": ", view.status().message()));
  return view;
}

absl::StatusOr<FloatTensor> ReadNpyFloat(const std::string& path) {
  auto view = ReadNpy(path);
  if (!view.ok()) return view.status();
  return ToFloatTensor(*view);
}

std::string EncodeNpy(const FloatTensor& t) {
  std::string out = HeaderFor("<f4", t.shape);
  out.append(reinterpret_cast<const char*>(t.data.data()), t.data.size() * sizeof(float));
  return out;
}

std::string EncodeNpyInt64(const std::vector<int64_t>& shape, const std::vector<int64_t>& data) {
  std::string out = HeaderFor("<i8", shape);
  out.append(reinterpret_cast<const char*>(data.data()), data.size() * sizeof(int64_t));
  return out;
}

absl::Status WriteNpy(const std::string& path, const FloatTensor& t) { return WriteFileAtomic(path, EncodeNpy(t)); }

absl::Status WriteNpz(const std::string& path, const std::vector<std::pair<std::string, FloatTensor>>& arrays) {
  ZipWriter zip;
  for (const auto& [name, t] : arrays) zip.Add(name + ".npy", EncodeNpy(t));
  return WriteFileAtomic(path, zip.Finish());
}

}  // namespace ganserve::core
