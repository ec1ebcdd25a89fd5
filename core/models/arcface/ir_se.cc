#include "core/models/arcface/ir_se.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/models/common/torch_convert.h"
#include "core/util/status_macros.h"

namespace ganserve::core::arcface {
namespace {
constexpr int64_t kSeReduction = 16;
}  // namespace

std::vector<UnitShape> IrSe50Units() {
  std::vector<UnitShape> out;
  const int64_t depths[] = {64, 128, 256, 512};
  const int units[] = {3, 4, 14, 3};
  int64_t in = 64;
  for (int s = 0; s < 4; ++s) {
    for (int u = 0; u < units[s]; ++u) {
      out.push_back({u == 0 ? in : depths[s], depths[s], u == 0 ? 2 : 1});
    }
    in = depths[s];
  }
  return out;
}

at::Tensor Unit::operator()(const at::Tensor& h) const {
  const at::Tensor shortcut = shortcut_conv.defined()
                                  ? shortcut_bn(at::conv2d(h, shortcut_conv, {}, shape.stride))
                                  : (shape.stride == 1 ? h : at::max_pool2d(h, {1, 1}, {shape.stride, shape.stride}));
  at::Tensor r = at::conv2d(bn_in(h), conv1, {}, 1, 1);
  r = at::prelu(r, prelu);
  r = bn_out(at::conv2d(r, conv2, {}, shape.stride, 1));
  at::Tensor se = at::adaptive_avg_pool2d(r, {1, 1});
  se = at::sigmoid(at::conv2d(at::relu(at::conv2d(se, se_fc1)), se_fc2));
  return r * se + shortcut;
}

at::Tensor IrSeTrunk::Input(const at::Tensor& x) const {
  return at::prelu(input_bn(at::conv2d(x, input_conv, {}, 1, 1)), input_prelu);
}

absl::StatusOr<at::Tensor> StateReader::Get(const std::string& name, const std::vector<int64_t>& shape) {
  auto it = t_.find(name);
  if (it == t_.end()) return absl::InvalidArgumentError(absl::StrCat(what_, " tensor '", name, "' is missing"));
  if (it->second.shape != shape) {
    return absl::InvalidArgumentError(absl::StrCat(what_, " tensor '", name, "' has shape ",
                                                   ShapeString(it->second.shape), ", expected ", ShapeString(shape)));
  }
  ASSIGN_OR_RETURN(at::Tensor v, ToTorchFloat(it->second, d_));
  all_->push_back(v);
  return v;
}

absl::StatusOr<BatchNorm> StateReader::Bn(const std::string& prefix, int64_t c) {
  BatchNorm bn;
  ASSIGN_OR_RETURN(bn.weight, Get(prefix + ".weight", {c}));
  ASSIGN_OR_RETURN(bn.bias, Get(prefix + ".bias", {c}));
  ASSIGN_OR_RETURN(bn.mean, Get(prefix + ".running_mean", {c}));
  ASSIGN_OR_RETURN(bn.var, Get(prefix + ".running_var", {c}));
  return bn;
}

absl::StatusOr<IrSeTrunk> StateReader::Trunk() {
  IrSeTrunk t;
  ASSIGN_OR_RETURN(t.input_conv, Get("input_layer.0.weight", {64, 3, 3, 3}));
  ASSIGN_OR_RETURN(t.input_bn, Bn("input_layer.1", 64));
  ASSIGN_OR_RETURN(t.input_prelu, Get("input_layer.2.weight", {64}));
  const auto shapes = IrSe50Units();
  for (size_t i = 0; i < shapes.size(); ++i) {
    const UnitShape& s = shapes[i];
    const std::string p = absl::StrCat("body.", i, ".");
    Unit u;
    u.shape = s;
    if (s.in != s.depth) {
      ASSIGN_OR_RETURN(u.shortcut_conv, Get(p + "shortcut_layer.0.weight", {s.depth, s.in, 1, 1}));
      ASSIGN_OR_RETURN(u.shortcut_bn, Bn(p + "shortcut_layer.1", s.depth));
    }
    ASSIGN_OR_RETURN(u.bn_in, Bn(p + "res_layer.0", s.in));
    ASSIGN_OR_RETURN(u.conv1, Get(p + "res_layer.1.weight", {s.depth, s.in, 3, 3}));
    ASSIGN_OR_RETURN(u.prelu, Get(p + "res_layer.2.weight", {s.depth}));
    ASSIGN_OR_RETURN(u.conv2, Get(p + "res_layer.3.weight", {s.depth, s.depth, 3, 3}));
    ASSIGN_OR_RETURN(u.bn_out, Bn(p + "res_layer.4", s.depth));
    ASSIGN_OR_RETURN(u.se_fc1, Get(p + "res_layer.5.fc1.weight", {s.depth / kSeReduction, s.depth, 1, 1}));
    ASSIGN_OR_RETURN(u.se_fc2, Get(p + "res_layer.5.fc2.weight", {s.depth, s.depth / kSeReduction, 1, 1}));
    t.units.push_back(std::move(u));
  }
  return t;
}

}  // namespace ganserve::core::arcface
