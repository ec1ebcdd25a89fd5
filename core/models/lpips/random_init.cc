#include "core/models/lpips/random_init.h"

#include <cmath>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/util/np_random.h"

namespace ganserve::core::lpips {
namespace {

struct AlexConv {
  int index, out, in, k;
};
constexpr AlexConv kConvs[] = {{0, 64, 3, 11}, {3, 192, 64, 5}, {6, 384, 192, 3}, {8, 256, 384, 3}, {10, 256, 256, 3}};

}  // namespace

std::map<std::string, FloatTensor> RandomAlexNetFeatures(uint32_t seed) {
  NumpyRandomState rs(seed);
  std::map<std::string, FloatTensor> out;
  for (const AlexConv& c : kConvs) {
    const auto scale = static_cast<float>(std::sqrt(2.0 / (c.in * c.k * c.k)));
    std::vector<float> w = rs.Randn(static_cast<size_t>(c.out) * c.in * c.k * c.k);
    for (float& v : w) v *= scale;
    out[absl::StrCat("features.", c.index, ".weight")] = {{c.out, c.in, c.k, c.k}, std::move(w)};
    out[absl::StrCat("features.", c.index, ".bias")] = {{c.out}, std::vector<float>(static_cast<size_t>(c.out), 0.01f)};
  }
  return out;
}

std::map<std::string, FloatTensor> RandomAlexLpipsLayers(uint32_t seed) {
  NumpyRandomState rs(seed);
  std::map<std::string, FloatTensor> out;
  for (int i = 0; i < 5; ++i) {
    std::vector<float> w = rs.Randn(static_cast<size_t>(kConvs[i].out));
    for (float& v : w) v = std::fabs(v) * 0.1f;
    out[absl::StrCat("lpips_weights.", i, ".main.1.weight")] = {{1, kConvs[i].out, 1, 1}, std::move(w)};
  }
  return out;
}

}  // namespace ganserve::core::lpips
