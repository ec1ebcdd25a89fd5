// GPU memory for the metrics, read through NVML (libnvidia-ml.so.1, which the NVIDIA
// driver and container toolkit provide) loaded at run time, so CPU builds and machines
// without a GPU simply report nothing.
#ifndef GANSERVE_SERVER_DEVICE_MEMORY_H_
#define GANSERVE_SERVER_DEVICE_MEMORY_H_

#include <cstdint>
#include <vector>

namespace ganserve::server {

struct DeviceMemory {
  int index = 0;
  uint64_t used_bytes = 0;  // by every process on the device
  uint64_t total_bytes = 0;
};

// One entry per visible GPU; empty without NVML or GPUs. Thread-safe.
std::vector<DeviceMemory> ReadDeviceMemory();

}  // namespace ganserve::server

#endif  // GANSERVE_SERVER_DEVICE_MEMORY_H_
