#include "core/models/arcface/random_init.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "core/models/arcface/arcface.h"

namespace ganserve::core::arcface {
namespace {

enum class Rule { kHe, kBnWeight, kResidualBnWeight, kBias, kMean, kVar, kPrelu };

struct Builder {
  NumpyRandomState* rs;
  std::vector<std::pair<std::string, FloatTensor>> out;

  void Add(const std::string& name, std::vector<int64_t> shape, Rule rule) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    std::vector<float> v = rs->Randn(static_cast<size_t>(n));
    const int64_t fan_in = n / shape[0];
    const auto he = static_cast<float>(std::sqrt(2.0 / static_cast<double>(fan_in)));
    for (float& x : v) {
      switch (rule) {
        case Rule::kHe: x = x * he; break;
        case Rule::kBnWeight: x = 1.0f + 0.1f * x; break;
        case Rule::kResidualBnWeight: x = 0.1f + 0.01f * x; break;
        case Rule::kBias:
        case Rule::kMean: x = 0.1f * x; break;
        case Rule::kVar: x = 1.0f + 0.1f * std::fabs(x); break;
        case Rule::kPrelu: x = 0.25f + 0.05f * x; break;
      }
    }
    out.emplace_back(name, FloatTensor{std::move(shape), std::move(v)});
  }
  void Bn(const std::string& p, int64_t c, Rule weight = Rule::kBnWeight) {
    Add(p + ".weight", {c}, weight);
    Add(p + ".bias", {c}, Rule::kBias);
    Add(p + ".running_mean", {c}, Rule::kMean);
    Add(p + ".running_var", {c}, Rule::kVar);
  }
};

}  // namespace

std::vector<std::pair<std::string, FloatTensor>> RandomArcFaceWeights(NumpyRandomState* rs) {
  Builder b{rs, {}};
  b.Add("input_layer.0.weight", {64, 3, 3, 3}, Rule::kHe);
  b.Bn("input_layer.1", 64);
  b.Add("input_layer.2.weight", {64}, Rule::kPrelu);
  b.Bn("output_layer.0", 512);
  b.Add("output_layer.3.weight", {512, int64_t{512} * 7 * 7}, Rule::kHe);
  b.Add("output_layer.3.bias", {512}, Rule::kBias);
  b.Bn("output_layer.4", 512);
  const auto units = IrSe50Units();
  for (size_t i = 0; i < units.size(); ++i) {
    const UnitShape& u = units[i];
    const std::string p = absl::StrCat("body.", i, ".");
    if (u.in != u.depth) {
      b.Add(p + "shortcut_layer.0.weight", {u.depth, u.in, 1, 1}, Rule::kHe);
      b.Bn(p + "shortcut_layer.1", u.depth);
    }
    b.Bn(p + "res_layer.0", u.in);
    b.Add(p + "res_layer.1.weight", {u.depth, u.in, 3, 3}, Rule::kHe);
    b.Add(p + "res_layer.2.weight", {u.depth}, Rule::kPrelu);
    b.Add(p + "res_layer.3.weight", {u.depth, u.depth, 3, 3}, Rule::kHe);
    b.Bn(p + "res_layer.4", u.depth, Rule::kResidualBnWeight);
    b.Add(p + "res_layer.5.fc1.weight", {u.depth / 16, u.depth, 1, 1}, Rule::kHe);
    b.Add(p + "res_layer.5.fc2.weight", {u.depth, u.depth / 16, 1, 1}, Rule::kHe);
  }
  return std::move(b.out);
}

std::map<std::string, FloatTensor> RandomArcFaceWeights(uint32_t seed) {
  NumpyRandomState rs(seed);
  std::map<std::string, FloatTensor> out;
  for (auto& [k, v] : RandomArcFaceWeights(&rs)) out[k] = std::move(v);
  return out;
}

}  // namespace ganserve::core::arcface
