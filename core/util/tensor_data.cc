#include "core/util/tensor_data.h"

#include <cstring>
#include <limits>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace ganserve::core {
namespace {

float HalfToFloat(uint16_t h) {
  uint32_t sign = (h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1f;
  uint32_t mant = h & 0x3ff;
  uint32_t bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {  // subnormal: renormalise
      exp = 127 - 15 + 1;
      while ((mant & 0x400) == 0) {
        mant <<= 1;
        --exp;
      }
      mant &= 0x3ff;
      bits = sign | (exp << 23) | (mant << 13);
    }
  } else if (exp == 0x1f) {
    bits = sign | 0x7f800000u | (mant << 13);
  } else {
    bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

template <typename T>
T Load(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

double ElementAsDouble(DType dtype, const uint8_t* p) {
  switch (dtype) {
    case DType::kFloat32: return Load<float>(p);
    case DType::kFloat64: return Load<double>(p);
    case DType::kFloat16: return HalfToFloat(Load<uint16_t>(p));
    case DType::kBFloat16: {
      uint32_t bits = static_cast<uint32_t>(Load<uint16_t>(p)) << 16;
      float f;
      std::memcpy(&f, &bits, 4);
      return f;
    }
    case DType::kInt64: return static_cast<double>(Load<int64_t>(p));
    case DType::kInt32: return Load<int32_t>(p);
    case DType::kInt16: return Load<int16_t>(p);
    case DType::kInt8: return Load<int8_t>(p);
    case DType::kUInt8: return *p;
    case DType::kBool: return *p != 0;
  }
  return 0;
}

int64_t ElementAsInt(DType dtype, const uint8_t* p) {
  switch (dtype) {
    case DType::kInt64: return Load<int64_t>(p);
    case DType::kInt32: return Load<int32_t>(p);
    case DType::kInt16: return Load<int16_t>(p);
    case DType::kInt8: return Load<int8_t>(p);
    case DType::kUInt8: return *p;
    case DType::kBool: return *p != 0;
    default: return 0;
  }
}

bool IsFloating(DType d) {
  return d == DType::kFloat32 || d == DType::kFloat64 || d == DType::kFloat16 || d == DType::kBFloat16;
}

// Calls fn(byte_offset) for every element in C order after checking bounds.
template <typename Fn>
absl::Status ForEachElement(const TensorView& view, Fn fn) {
  const int64_t n = view.numel();
  if (n < 0) return absl::InvalidArgumentError("tensor has an invalid shape " + ShapeString(view.shape));
  if (n == 0) return absl::OkStatus();  // before any stride arithmetic: other dims may be huge
  const size_t rank = view.shape.size();
  std::vector<int64_t> strides = view.strides;
  if (strides.empty()) {
    // Contiguous strides are partial products of a shape whose product (n) fits.
    strides.assign(rank, 1);
    for (size_t i = rank; i-- > 1;) strides[i - 1] = strides[i] * view.shape[i];
  }
  if (strides.size() != rank) return absl::InvalidArgumentError("tensor strides do not match its rank");
  const int64_t esize = static_cast<int64_t>(DTypeSize(view.dtype));
  // Extent check: the lowest and highest element offsets must lie inside the bytes.
  // Strides come from files: every product and sum is overflow-checked.
  absl::Status out_of_range =
      absl::InvalidArgumentError(absl::StrCat("tensor of shape ", ShapeString(view.shape),
                                              " has strides reaching outside its storage of ", view.nbytes, " bytes"));
  int64_t lo = view.offset, hi = view.offset;
  for (size_t i = 0; i < rank; ++i) {
    int64_t span;
    if (__builtin_mul_overflow(view.shape[i] - 1, strides[i], &span)) return out_of_range;
    if (__builtin_add_overflow(span < 0 ? lo : hi, span, span < 0 ? &lo : &hi)) return out_of_range;
  }
  int64_t end_bytes;
  if (__builtin_add_overflow(hi, int64_t{1}, &end_bytes) || __builtin_mul_overflow(end_bytes, esize, &end_bytes)) {
    return out_of_range;
  }
  if (lo < 0 || end_bytes > static_cast<int64_t>(view.nbytes)) {
    return absl::InvalidArgumentError(absl::StrCat("tensor of shape ", ShapeString(view.shape),
                                                   " reaches outside its storage of ", view.nbytes, " bytes"));
  }
  std::vector<int64_t> idx(rank, 0);
  int64_t off = view.offset;
  for (int64_t e = 0; e < n; ++e) {
    fn(view.data + off * esize);
    for (size_t d = rank; d-- > 0;) {
      if (++idx[d] < view.shape[d]) {
        off += strides[d];
        break;
      }
      off -= (view.shape[d] - 1) * strides[d];
      idx[d] = 0;
    }
  }
  return absl::OkStatus();
}

}  // namespace

uint16_t FloatToHalf(float f) {
  uint32_t x = 0;
  std::memcpy(&x, &f, sizeof(x));
  const auto sign = static_cast<uint16_t>((x >> 16) & 0x8000u);
  uint32_t mant = x & 0x7fffffu;
  const auto exp = static_cast<int32_t>((x >> 23) & 0xffu);
  if (exp == 0xff) return static_cast<uint16_t>(sign | 0x7c00u | (mant != 0 ? 0x200u : 0u));  // inf, NaN
  const int32_t e = exp - 127 + 15;
  if (e >= 0x1f) return static_cast<uint16_t>(sign | 0x7c00u);  // too large: infinity
  if (e <= 0) {                                                 // a half subnormal, or zero
    if (e < -10) return sign;
    mant |= 0x800000u;
    const auto shift = static_cast<uint32_t>(14 - e);
    uint32_t h = mant >> shift;
    const uint32_t rem = mant & ((1u << shift) - 1);
    const uint32_t halfway = 1u << (shift - 1);
    if (rem > halfway || (rem == halfway && (h & 1u) != 0)) ++h;
    return static_cast<uint16_t>(sign | h);
  }
  uint32_t h = (static_cast<uint32_t>(e) << 10) | (mant >> 13);
  const uint32_t rem = mant & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (h & 1u) != 0)) ++h;  // a carry into the exponent is right
  return static_cast<uint16_t>(sign | h);
}

uint16_t FloatToBFloat16(float f) {
  uint32_t x = 0;
  std::memcpy(&x, &f, sizeof(x));
  if ((x & 0x7f800000u) == 0x7f800000u && (x & 0x7fffffu) != 0) {
    return static_cast<uint16_t>(((x >> 16) & 0x8000u) | 0x7fc0u);  // NaN stays NaN
  }
  x += 0x7fffu + ((x >> 16) & 1u);
  return static_cast<uint16_t>(x >> 16);
}

size_t DTypeSize(DType dtype) {
  switch (dtype) {
    case DType::kFloat64:
    case DType::kInt64: return 8;
    case DType::kFloat32:
    case DType::kInt32: return 4;
    case DType::kFloat16:
    case DType::kBFloat16:
    case DType::kInt16: return 2;
    case DType::kInt8:
    case DType::kUInt8:
    case DType::kBool: return 1;
  }
  return 1;
}

absl::string_view DTypeName(DType dtype) {
  switch (dtype) {
    case DType::kFloat32: return "F32";
    case DType::kFloat64: return "F64";
    case DType::kFloat16: return "F16";
    case DType::kBFloat16: return "BF16";
    case DType::kInt64: return "I64";
    case DType::kInt32: return "I32";
    case DType::kInt16: return "I16";
    case DType::kInt8: return "I8";
    case DType::kUInt8: return "U8";
    case DType::kBool: return "BOOL";
  }
  return "?";
}

int64_t NumElements(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0) return -1;
    if (d != 0 && n > std::numeric_limits<int64_t>::max() / d) return -1;
    n *= d;
  }
  return n;
}

std::string ShapeString(const std::vector<int64_t>& shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ", "), "]");
}

absl::StatusOr<FloatTensor> ToFloatTensor(const TensorView& view) {
  FloatTensor out;
  out.shape = view.shape;
  const int64_t n = view.numel();
  if (n < 0) return absl::InvalidArgumentError("tensor has an invalid shape " + ShapeString(view.shape));
  out.data.reserve(static_cast<size_t>(n));
  absl::Status s = ForEachElement(
      view, [&](const uint8_t* p) { out.data.push_back(static_cast<float>(ElementAsDouble(view.dtype, p))); });
  if (!s.ok()) return s;
  return out;
}

absl::StatusOr<std::vector<int64_t>> ToInt64Vector(const TensorView& view) {
  if (IsFloating(view.dtype)) {
    return absl::InvalidArgumentError(absl::StrCat("expected an integer tensor, got ", DTypeName(view.dtype)));
  }
  std::vector<int64_t> out;
  absl::Status s = ForEachElement(view, [&](const uint8_t* p) { out.push_back(ElementAsInt(view.dtype, p)); });
  if (!s.ok()) return s;
  return out;
}

TensorView ViewOf(std::shared_ptr<const FloatTensor> t) {
  TensorView v;
  v.dtype = DType::kFloat32;
  v.shape = t->shape;
  v.data = reinterpret_cast<const uint8_t*>(t->data.data());
  v.nbytes = t->data.size() * sizeof(float);
  v.owner = std::move(t);
  return v;
}

std::map<std::string, TensorView> ViewsOf(const std::shared_ptr<const std::map<std::string, FloatTensor>>& tensors) {
  std::map<std::string, TensorView> out;
  for (const auto& [name, t] : *tensors) {
    TensorView v;
    v.shape = t.shape;
    v.data = reinterpret_cast<const uint8_t*>(t.data.data());
    v.nbytes = t.data.size() * sizeof(float);
    v.owner = tensors;
    out.emplace(name, std::move(v));
  }
  return out;
}

}  // namespace ganserve::core
