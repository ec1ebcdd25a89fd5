#include "core/models/arcface/random_init.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "core/models/arcface/arcface.h"

namespace ganserve::core::arcface {

void RandomWeightDraw::Add(const std::string& name, std::vector<int64_t> shape, InitRule rule) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  std::vector<float> v = rs_->Randn(static_cast<size_t>(n));
  const int64_t fan_in = n / shape[0];
  const auto he = static_cast<float>(std::sqrt(2.0 / static_cast<double>(fan_in)));
  for (float& x : v) {
    switch (rule) {
      case InitRule::kHe: x = x * he; break;
      case InitRule::kBnWeight: x = 1.0f + 0.1f * x; break;
      case InitRule::kResidualBnWeight: x = 0.1f + 0.01f * x; break;
      case InitRule::kBias:
      case InitRule::kMean: x = 0.1f * x; break;
      case InitRule::kVar: x = 1.0f + 0.1f * std::fabs(x); break;
      case InitRule::kPrelu: x = 0.25f + 0.05f * x; break;
      case InitRule::kUnit: break;
    }
  }
  out_.emplace_back(name, FloatTensor{std::move(shape), std::move(v)});
}

void RandomWeightDraw::Bn(const std::string& p, int64_t c, InitRule weight) {
  Add(p + ".weight", {c}, weight);
  Add(p + ".bias", {c}, InitRule::kBias);
  Add(p + ".running_mean", {c}, InitRule::kMean);
  Add(p + ".running_var", {c}, InitRule::kVar);
}

void RandomWeightDraw::InputLayer() {
  Add("input_layer.0.weight", {64, 3, 3, 3}, InitRule::kHe);
  Bn("input_layer.1", 64);
  Add("input_layer.2.weight", {64}, InitRule::kPrelu);
}

void RandomWeightDraw::Body() {
  const auto units = IrSe50Units();
  for (size_t i = 0; i < units.size(); ++i) {
    const UnitShape& u = units[i];
    const std::string p = absl::StrCat("body.", i, ".");
    if (u.in != u.depth) {
      Add(p + "shortcut_layer.0.weight", {u.depth, u.in, 1, 1}, InitRule::kHe);
      Bn(p + "shortcut_layer.1", u.depth);
    }
    Bn(p + "res_layer.0", u.in);
    Add(p + "res_layer.1.weight", {u.depth, u.in, 3, 3}, InitRule::kHe);
    Add(p + "res_layer.2.weight", {u.depth}, InitRule::kPrelu);
    Add(p + "res_layer.3.weight", {u.depth, u.depth, 3, 3}, InitRule::kHe);
    Bn(p + "res_layer.4", u.depth, InitRule::kResidualBnWeight);
    Add(p + "res_layer.5.fc1.weight", {u.depth / 16, u.depth, 1, 1}, InitRule::kHe);
    Add(p + "res_layer.5.fc2.weight", {u.depth, u.depth / 16, 1, 1}, InitRule::kHe);
  }
}

std::vector<std::pair<std::string, FloatTensor>> RandomArcFaceWeights(NumpyRandomState* rs) {
  RandomWeightDraw d(rs);
  d.InputLayer();
  d.Bn("output_layer.0", 512);
  d.Add("output_layer.3.weight", {512, int64_t{512} * 7 * 7}, InitRule::kHe);
  d.Add("output_layer.3.bias", {512}, InitRule::kBias);
  d.Bn("output_layer.4", 512);
  d.Body();
  return d.Take();
}

std::map<std::string, FloatTensor> RandomArcFaceWeights(uint32_t seed) {
  NumpyRandomState rs(seed);
  std::map<std::string, FloatTensor> out;
  for (auto& [k, v] : RandomArcFaceWeights(&rs)) out[k] = std::move(v);
  return out;
}

}  // namespace ganserve::core::arcface
