// Process-wide LibTorch settings, applied once from main().
#ifndef GANSERVE_CORE_RUNTIME_TORCH_SETUP_H_
#define GANSERVE_CORE_RUNTIME_TORCH_SETUP_H_

#include <string>

namespace ganserve::core {

struct TorchSetupInfo {
  int threads = 0;              // intra-op threads in use
  int cpus_available = 0;       // cgroup- and affinity-aware
  std::string blas_library;     // resolved path of the loaded libblas, or "" if none found
  bool reference_blas = false;  // the slow netlib reference BLAS
  // OpenBLAS's kernel set (openblas_get_corename), or "" for another BLAS.
  std::string blas_core;
  std::string torch_version;
  bool cuda_available = false;
  bool cudnn_benchmark = false;     // cuDNN picks the fastest convolution per shape (CUDA only)
  bool retain_host_memory = false;  // glibc keeps freed memory (see ConfigureTorch)
};

// CPUs this process may use: the cgroup v2 cpu.max quota (rounded up), the affinity
// mask, and the hardware count, whichever is smallest.
int AvailableCpus();

// Sets LibTorch's intra-op thread count (`threads` <= 0: AvailableCpus()) and reports
// the BLAS the process loaded. Call once, before any model work. With CUDA present it
// turns on cuDNN's benchmark mode: a generator's convolution shapes repeat for every
// batch of the same size and every training step, so the one-time search per shape pays
// back. TF32 settings keep LibTorch's defaults.
//
// `retain_host_memory`: glibc malloc keeps freed memory for reuse instead of giving it
// back to the kernel (one arena for all threads, no mmap for large blocks, no heap
// trimming; without the single arena the executor thread's heaps are still trimmed and
// a GenerateSamples batch through the server measured 2.1x slower than in-process). CPU inference
// allocates and frees hundreds of MB per layer; returning them makes every render pay
// page faults on fresh pages. Measured on a 2-core machine (bench/, docs/benchmarks.md):
// 256 px batch 8 renders 1.9x faster, 1024 px batch 1 1.8x; the cost is that the
// resident size stays at its high-water mark. GPU memory is unaffected.
TorchSetupInfo ConfigureTorch(int threads, bool retain_host_memory = true);

// OpenBLAS picks its kernels from the CPU model it knows; on a model newer than its
// table it falls back to the SSE3 "Prescott" kernels even when the CPU has AVX-512
// (OpenBLAS 0.3.21 on Intel family 6 model 207: 2048^3 matmul 40 GFLOP/s against ~2x
// with SkylakeX kernels, docs/benchmarks.md). Returns the OPENBLAS_CORETYPE to set
// ("SkylakeX" with AVX-512, "Haswell" with AVX2) when OpenBLAS is loaded with a pre-AVX
// core on such a CPU and OPENBLAS_CORETYPE is unset; "" otherwise. OpenBLAS reads the
// variable once, when it loads: the process must be started again with it.
std::string OpenBlasCoreToSet();

}  // namespace ganserve::core

#endif  // GANSERVE_CORE_RUNTIME_TORCH_SETUP_H_
