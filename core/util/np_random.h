// NumPy's legacy RandomState normal sampler (MT19937 + polar Box-Muller), so that
// "seed 42" gives the same z as NVIDIA's and rosinality's scripts
// (np.random.RandomState(seed).randn(n)) on any device.
#ifndef GANSERVE_CORE_UTIL_NP_RANDOM_H_
#define GANSERVE_CORE_UTIL_NP_RANDOM_H_

#include <cstdint>
#include <random>
#include <vector>

namespace ganserve::core {

// Not thread-safe; one instance per stream.
class NumpyRandomState {
 public:
  // Seeds as RandomState(seed) does for 0 <= seed < 2^32.
  explicit NumpyRandomState(uint32_t seed) : mt_(seed) {}
  // random_sample(): a double in [0, 1) with 53 random bits.
  double RandomSample();
  // standard_normal().
  double Gauss();
  // randn(n) as float32 (numpy draws doubles; the cast happens after).
  std::vector<float> Randn(size_t n);

 private:
  std::mt19937 mt_;
  bool has_gauss_ = false;
  double gauss_ = 0;
};

}  // namespace ganserve::core

#endif  // GANSERVE_CORE_UTIL_NP_RANDOM_H_
