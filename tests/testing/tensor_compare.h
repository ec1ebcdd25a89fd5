// Tensor comparisons for parity tests.
#ifndef GANSERVE_TESTS_TESTING_TENSOR_COMPARE_H_
#define GANSERVE_TESTS_TESTING_TENSOR_COMPARE_H_

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "core/util/tensor_data.h"

namespace ganserve::testing {

// max |a - b| over all elements; infinity (and a test failure) when the shapes differ.
inline float MaxAbsDiff(const core::FloatTensor& a, const core::FloatTensor& b) {
  EXPECT_EQ(a.shape, b.shape);
  if (a.shape != b.shape || a.data.size() != b.data.size()) return INFINITY;
  float m = 0;
  for (size_t i = 0; i < a.data.size(); ++i) m = std::max(m, std::fabs(a.data[i] - b.data[i]));
  return m;
}

}  // namespace ganserve::testing

#endif  // GANSERVE_TESTS_TESTING_TENSOR_COMPARE_H_
