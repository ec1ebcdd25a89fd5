// Process-wide LibTorch settings, applied once from main().
#ifndef GANSERVE_CORE_RUNTIME_TORCH_SETUP_H_
#define GANSERVE_CORE_RUNTIME_TORCH_SETUP_H_

#include <string>

namespace ganserve::core {

struct TorchSetupInfo {
  int threads = 0;            // intra-op threads in use
  int cpus_available = 0;     // cgroup- and affinity-aware
  std::string blas_library;   // resolved path of the loaded libblas, or "" if none found
  bool reference_blas = false;  // the slow netlib reference BLAS
  std::string torch_version;
  bool cuda_available = false;
};

// CPUs this process may use: the cgroup v2 cpu.max quota (rounded up), the affinity
// mask, and the hardware count, whichever is smallest.
int AvailableCpus();

// Sets LibTorch's intra-op thread count (`threads` <= 0: AvailableCpus()) and reports
// the BLAS the process loaded. Call once, before any model work.
TorchSetupInfo ConfigureTorch(int threads);

}  // namespace ganserve::core

#endif  // GANSERVE_CORE_RUNTIME_TORCH_SETUP_H_
