#include "server/device_memory.h"

#include <dlfcn.h>

#include <mutex>

namespace ganserve::server {
namespace {

// The few NVML entry points used, with the C ABI of nvml.h.
struct Nvml {
  using Init = int (*)();
  using Count = int (*)(unsigned int*);
  using Handle = int (*)(unsigned int, void**);
  struct Memory {
    unsigned long long total, free, used;  // NOLINT(runtime/int): nvmlMemory_t
  };
  using MemoryInfo = int (*)(void*, Memory*);
  Count count = nullptr;
  Handle handle = nullptr;
  MemoryInfo memory = nullptr;
  bool ok = false;
};

const Nvml& LoadNvml() {
  static Nvml nvml;
  static std::once_flag once;
  std::call_once(once, [] {
    void* lib = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
    if (lib == nullptr) return;
    auto init = reinterpret_cast<Nvml::Init>(dlsym(lib, "nvmlInit_v2"));
    nvml.count = reinterpret_cast<Nvml::Count>(dlsym(lib, "nvmlDeviceGetCount_v2"));
    nvml.handle = reinterpret_cast<Nvml::Handle>(dlsym(lib, "nvmlDeviceGetHandleByIndex_v2"));
    nvml.memory = reinterpret_cast<Nvml::MemoryInfo>(dlsym(lib, "nvmlDeviceGetMemoryInfo"));
    nvml.ok = init != nullptr && nvml.count != nullptr && nvml.handle != nullptr && nvml.memory != nullptr &&
              init() == 0;  // NVML_SUCCESS
  });
  return nvml;
}

}  // namespace

std::vector<DeviceMemory> ReadDeviceMemory() {
  std::vector<DeviceMemory> out;
  const Nvml& nvml = LoadNvml();
  unsigned int n = 0;
  if (!nvml.ok || nvml.count(&n) != 0) return out;
  for (unsigned int i = 0; i < n && i < 64; ++i) {
    void* dev = nullptr;
    Nvml::Memory m{};
    if (nvml.handle(i, &dev) != 0 || nvml.memory(dev, &m) != 0) continue;
    out.push_back({static_cast<int>(i), m.used, m.total});
  }
  return out;
}

}  // namespace ganserve::server
