#include "core/edit/latent_mapper.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>

#include <algorithm>
#include <cmath>
#include <set>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/checkpoint/torch_file.h"
#include "core/edit/latent_mapper_impl.h"
#include "core/models/common/torch_convert.h"
#include "core/util/np_random.h"
#include "core/util/status_macros.h"

namespace ganserve::core::edit {
namespace {

constexpr double kLrMul = 0.01;  // EqualLinear(lr_mul=0.01) in the official Mapper
constexpr double kSlope = 0.2;
const double kGain = std::sqrt(2.0);

// The sub-mappers of a configuration: (name prefix, first row, end row; end -1 = all).
struct Group {
  const char* prefix;
  int64_t begin, end;
};

std::vector<Group> GroupsOf(const MapperConfig& c) {
  if (c.type == MapperType::kSingle) return {{"mapping", 0, -1}};
  std::vector<Group> g;
  if (c.coarse) g.push_back({"course_mapping", 0, kMapperCoarseEnd});
  if (c.medium) g.push_back({"medium_mapping", kMapperCoarseEnd, kMapperMediumEnd});
  if (c.fine) g.push_back({"fine_mapping", kMapperMediumEnd, -1});
  return g;
}

// PixelNorm over dim 1 (the rows of the slice), then the EqualLinear + fused leaky ReLU
// layers; params holds weight, bias per layer.
at::Tensor SubMapper(at::Tensor x, const at::Tensor* params, int64_t depth) {
  x = x * at::rsqrt(x.pow(2).mean(1, true) + 1e-8);
  const double scale = (1.0 / std::sqrt(static_cast<double>(x.size(2)))) * kLrMul;
  for (int64_t l = 0; l < depth; ++l) {
    x = at::linear(x, params[2 * l] * scale);
    x = at::leaky_relu(x + (params[2 * l + 1] * kLrMul).view({1, 1, -1}), kSlope) * kGain;
  }
  return x;
}

absl::Status CheckConfig(const MapperConfig& c) {
  if (c.dim < 1 || c.dim > 4096) return absl::InvalidArgumentError("mapper dimension out of range [1, 4096]");
  if (c.depth < 1 || c.depth > 16) return absl::InvalidArgumentError("mapper depth out of range [1, 16]");
  if (c.type == MapperType::kLevels && !c.coarse && !c.medium && !c.fine) {
    return absl::InvalidArgumentError("a levels mapper needs at least one of coarse, medium and fine");
  }
  return absl::OkStatus();
}

}  // namespace

const char* MapperTypeName(MapperType t) { return t == MapperType::kSingle ? "single" : "levels"; }

absl::StatusOr<MapperType> ParseMapperType(const std::string& s) {
  if (s == "levels") return MapperType::kLevels;
  if (s == "single") return MapperType::kSingle;
  return absl::InvalidArgumentError(absl::StrCat("mapper type '", s, "' is not levels or single"));
}

std::vector<std::string> MapperTensorNames(const MapperConfig& c) {
  std::vector<std::string> names;
  for (const Group& g : GroupsOf(c)) {
    for (int64_t l = 1; l <= c.depth; ++l) {
      names.push_back(absl::StrCat(g.prefix, ".mapping.", l, ".weight"));
      names.push_back(absl::StrCat(g.prefix, ".mapping.", l, ".bias"));
    }
  }
  return names;
}

at::Tensor LatentMapper::Impl::Forward(const at::Tensor& wplus) const {
  const int64_t rows = wplus.size(1);
  const int64_t per_group = 2 * config.depth;
  if (config.type == MapperType::kSingle) return SubMapper(wplus, params.data(), config.depth);
  std::vector<at::Tensor> parts;
  size_t next = 0;
  const Group all[] = {{"course_mapping", 0, kMapperCoarseEnd},
                       {"medium_mapping", kMapperCoarseEnd, kMapperMediumEnd},
                       {"fine_mapping", kMapperMediumEnd, -1}};
  const bool on[] = {config.coarse, config.medium, config.fine};
  for (int i = 0; i < 3; ++i) {
    const int64_t b = std::min(all[i].begin, rows);
    const int64_t e = all[i].end < 0 ? rows : std::min(all[i].end, rows);
    const at::Tensor slice = wplus.narrow(1, b, e - b);
    if (!on[i]) {
      parts.push_back(at::zeros_like(slice));
      continue;
    }
    parts.push_back(e > b ? SubMapper(slice, params.data() + next, config.depth) : slice.clone());
    next += static_cast<size_t>(per_group);
  }
  return at::cat(parts, 1);
}

LatentMapper::LatentMapper(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
LatentMapper::~LatentMapper() = default;

absl::StatusOr<std::unique_ptr<LatentMapper>> LatentMapper::Random(const MapperConfig& config, uint64_t seed,
                                                                   const std::string& device) {
  RETURN_IF_ERROR(CheckConfig(config));
  NumpyRandomState rs(static_cast<uint32_t>(seed ^ (seed >> 32)));
  std::map<std::string, FloatTensor> t;
  for (const std::string& name : MapperTensorNames(config)) {
    if (absl::EndsWith(name, ".weight")) {
      std::vector<float> w = rs.Randn(static_cast<size_t>(config.dim * config.dim));
      for (float& v : w) v = static_cast<float>(v / kLrMul);
      t[name] = FloatTensor{{config.dim, config.dim}, std::move(w)};
    } else {
      t[name] = FloatTensor{{config.dim}, std::vector<float>(static_cast<size_t>(config.dim), 0.0f)};
    }
  }
  std::map<std::string, TensorView> views;
  for (const auto& [k, v] : t) views[k] = ViewOf(std::make_shared<const FloatTensor>(v));
  return FromTensors(views, config, device);
}

absl::StatusOr<std::unique_ptr<LatentMapper>> LatentMapper::FromTensors(
    const std::map<std::string, TensorView>& tensors, const MapperConfig& config, const std::string& device) {
  RETURN_IF_ERROR(CheckConfig(config));
  ASSIGN_OR_RETURN(c10::Device dev, ParseDevice(device));
  auto impl = std::make_unique<Impl>();
  impl->config = config;
  impl->device = dev;
  impl->names = MapperTensorNames(config);
  const std::set<std::string> wanted(impl->names.begin(), impl->names.end());
  for (const auto& [k, v] : tensors) {
    if (wanted.count(k) == 0) return absl::InvalidArgumentError(absl::StrCat("unexpected mapper tensor '", k, "'"));
  }
  try {
    for (const std::string& name : impl->names) {
      auto it = tensors.find(name);
      if (it == tensors.end()) return absl::InvalidArgumentError(absl::StrCat("mapper tensor '", name, "' is missing"));
      const bool weight = absl::EndsWith(name, ".weight");
      const std::vector<int64_t> shape =
          weight ? std::vector<int64_t>{config.dim, config.dim} : std::vector<int64_t>{config.dim};
      if (it->second.shape != shape) {
        return absl::InvalidArgumentError(absl::StrCat(
            "mapper tensor '", name, "' has shape ", ShapeString(it->second.shape), ", expected ", ShapeString(shape)));
      }
      ASSIGN_OR_RETURN(at::Tensor p, ToTorchFloat(it->second, dev));
      impl->params.push_back(std::move(p));
    }
  } catch (const c10::Error& e) {
    return TorchErrorStatus(e, "loading the mapper failed");
  }
  return std::unique_ptr<LatentMapper>(new LatentMapper(std::move(impl)));
}

const MapperConfig& LatentMapper::config() const { return impl_->config; }
std::string LatentMapper::device() const { return impl_->device.str(); }

absl::StatusOr<FloatTensor> LatentMapper::Residual(const FloatTensor& wplus) const {
  if (wplus.shape.size() != 3 || wplus.shape[0] < 1 || wplus.shape[1] < 1 || wplus.shape[2] != impl_->config.dim) {
    return absl::InvalidArgumentError(
        absl::StrCat("the mapper takes w+ [batch, rows, ", impl_->config.dim, "], got ", ShapeString(wplus.shape)));
  }
  try {
    c10::NoGradGuard ng;
    return FromTorch(impl_->Forward(ToTorch(wplus, impl_->device)));
  } catch (const c10::Error& e) {
    return TorchErrorStatus(e, "the mapper forward failed");
  }
}

absl::StatusOr<FloatTensor> LatentMapper::Apply(const FloatTensor& wplus, float strength) const {
  ASSIGN_OR_RETURN(FloatTensor r, Residual(wplus));
  const float k = kMapperResidualScale * strength;
  for (size_t i = 0; i < r.data.size(); ++i) r.data[i] = wplus.data[i] + k * r.data[i];
  return r;
}

std::map<std::string, FloatTensor> LatentMapper::StateDict() const {
  std::map<std::string, FloatTensor> out;
  for (size_t i = 0; i < impl_->names.size(); ++i) out[impl_->names[i]] = FromTorch(impl_->params[i].detach());
  return out;
}

int64_t LatentMapper::parameter_count() const {
  int64_t n = 0;
  for (const auto& p : impl_->params) n += p.numel();
  return n;
}

MemoryFootprint LatentMapper::Footprint() const {
  FootprintCounter c;
  c.Add(impl_->params);
  return c.total();
}

absl::StatusOr<MapperConfig> MapperConfigFromNames(const std::map<std::string, TensorView>& tensors) {
  if (tensors.empty()) return absl::InvalidArgumentError("no mapper tensors");
  bool single = false, levels = false;
  for (const auto& [k, v] : tensors) {
    single |= absl::StartsWith(k, "mapping.");
    levels |= absl::StartsWith(k, "course_mapping.") || absl::StartsWith(k, "medium_mapping.") ||
              absl::StartsWith(k, "fine_mapping.");
  }
  if (single == levels) {
    return absl::InvalidArgumentError(
        "the mapper tensors are neither a LevelsMapper's (course_/medium_/fine_mapping) nor a SingleMapper's "
        "(mapping)");
  }
  MapperConfig c;
  c.type = single ? MapperType::kSingle : MapperType::kLevels;
  if (levels) {
    auto has = [&](const char* p) {
      return std::any_of(tensors.begin(), tensors.end(), [&](const auto& e) { return absl::StartsWith(e.first, p); });
    };
    c.coarse = has("course_mapping.");
    c.medium = has("medium_mapping.");
    c.fine = has("fine_mapping.");
  }
  const std::string prefix = GroupsOf(c).front().prefix;
  const auto first = tensors.find(prefix + ".mapping.1.weight");
  if (first == tensors.end() || first->second.shape.size() != 2) {
    return absl::InvalidArgumentError("the mapper's first layer weight is missing or not a matrix");
  }
  c.dim = first->second.shape[1];
  c.depth = 0;
  while (tensors.count(absl::StrCat(prefix, ".mapping.", c.depth + 1, ".weight")) != 0) ++c.depth;
  return c;
}

absl::StatusOr<OfficialMapperFile> ReadOfficialMapperFile(const std::string& path) {
  ASSIGN_OR_RETURN(WrappedStateDict f, LoadWrappedStateDict(path, "a mapper checkpoint"));
  OfficialMapperFile out;
  if (const PyRef& opts = f.opts; opts != nullptr) {
    if (const PyRef d = opts->Get("description"); d != nullptr && d->IsString()) out.description = d->s;
    if (const PyRef s = opts->Get("work_in_stylespace"); s != nullptr && s->kind == PyValue::Kind::kBool) {
      out.stylespace = s->b;
    }
  }
  if (out.stylespace) {
    return absl::InvalidArgumentError(
        "this mapper works in StyleSpace (work_in_stylespace); only w+ mappers (LevelsMapper, SingleMapper) are "
        "supported");
  }
  out.mapper = f.Under("mapper");
  out.decoder = f.Under("decoder");
  if (out.mapper.empty()) return absl::InvalidArgumentError("the file holds no 'mapper.*' tensors");
  ASSIGN_OR_RETURN(out.config, MapperConfigFromNames(out.mapper));
  return out;
}

}  // namespace ganserve::core::edit
