#include "core/models/psp/random_init.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "core/models/arcface/random_init.h"

namespace ganserve::core::psp {

std::vector<std::pair<std::string, FloatTensor>> RandomEncoderWeights(NumpyRandomState* rs, int64_t styles) {
  using arcface::InitRule;
  arcface::RandomWeightDraw d(rs);
  d.InputLayer();
  d.Body();
  for (int64_t i = 0; i < styles; ++i) {
    const int64_t spatial = i < 3 ? 16 : (i < 7 ? 32 : 64);
    const auto pools = static_cast<int64_t>(std::lround(std::log2(static_cast<double>(spatial))));
    for (int64_t k = 0; k < pools; ++k) {
      const std::string p = absl::StrCat("styles.", i, ".convs.", 2 * k);
      d.Add(p + ".weight", {512, 512, 3, 3}, InitRule::kHe);
      d.Add(p + ".bias", {512}, InitRule::kBias);
    }
    d.Add(absl::StrCat("styles.", i, ".linear.weight"), {512, 512}, InitRule::kUnit);
    d.Add(absl::StrCat("styles.", i, ".linear.bias"), {512}, InitRule::kBias);
  }
  d.Add("latlayer1.weight", {512, 256, 1, 1}, InitRule::kHe);
  d.Add("latlayer1.bias", {512}, InitRule::kBias);
  d.Add("latlayer2.weight", {512, 128, 1, 1}, InitRule::kHe);
  d.Add("latlayer2.bias", {512}, InitRule::kBias);
  d.Add("latent_avg", {styles, 512}, InitRule::kUnit);
  return d.Take();
}

}  // namespace ganserve::core::psp
