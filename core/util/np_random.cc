#include "core/util/np_random.h"

#include <cmath>

namespace ganserve::core {

double NumpyRandomState::RandomSample() {
  uint32_t a = mt_() >> 5, b = mt_() >> 6;
  return (a * 67108864.0 + b) / 9007199254740992.0;
}

double NumpyRandomState::Gauss() {
  if (has_gauss_) {
    has_gauss_ = false;
    return gauss_;
  }
  double x1, x2, r2;
  do {
    x1 = 2.0 * RandomSample() - 1.0;
    x2 = 2.0 * RandomSample() - 1.0;
    r2 = x1 * x1 + x2 * x2;
  } while (r2 >= 1.0 || r2 == 0.0);
  const double f = std::sqrt(-2.0 * std::log(r2) / r2);
  gauss_ = f * x1;
  has_gauss_ = true;
  return f * x2;
}

std::vector<float> NumpyRandomState::Randn(size_t n) {
  std::vector<float> out(n);
  for (auto& v : out) v = static_cast<float>(Gauss());
  return out;
}

}  // namespace ganserve::core
