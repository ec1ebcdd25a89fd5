// Process-wide count of device out-of-memory errors that model code turned into
// RESOURCE_EXHAUSTED statuses (read by the server's metrics).
#ifndef GANSERVE_CORE_UTIL_OOM_COUNTER_H_
#define GANSERVE_CORE_UTIL_OOM_COUNTER_H_

#include <atomic>
#include <cstdint>

namespace ganserve::core {

inline std::atomic<int64_t>& OutOfMemoryEvents() {
  static std::atomic<int64_t> count{0};
  return count;
}

}  // namespace ganserve::core

#endif  // GANSERVE_CORE_UTIL_OOM_COUNTER_H_
