#include "core/runtime/torch_setup.h"

#include <ATen/Context.h>
#include <ATen/Parallel.h>
#include <dlfcn.h>
#include <link.h>
#include <malloc.h>
#include <sched.h>
#include <torch/version.h>

#include <climits>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"

namespace ganserve::core {
namespace {

int CgroupCpuLimit() {
  std::ifstream in("/sys/fs/cgroup/cpu.max");
  std::string quota, period;
  if (!(in >> quota >> period) || quota == "max") return INT_MAX;
  double q = std::atof(quota.c_str()), p = std::atof(period.c_str());
  if (q <= 0 || p <= 0) return INT_MAX;
  return std::max(1, static_cast<int>(std::ceil(q / p)));
}

int FindBlas(struct dl_phdr_info* info, size_t, void* data) {
  std::string name = info->dlpi_name != nullptr ? info->dlpi_name : "";
  if (absl::StrContains(name, "libblas.so") || absl::StrContains(name, "libopenblas") ||
      absl::StrContains(name, "libblis") || absl::StrContains(name, "libmkl_rt")) {
    auto* out = static_cast<std::string*>(data);
    if (out->empty()) {
      char resolved[PATH_MAX];
      *out = realpath(name.c_str(), resolved) != nullptr ? resolved : name;
    }
  }
  return 0;
}

std::string OpenBlasCore() {
  using CoreName = char* (*)();
  auto* fn = reinterpret_cast<CoreName>(dlsym(RTLD_DEFAULT, "openblas_get_corename"));
  const char* name = fn != nullptr ? fn() : nullptr;
  return name != nullptr ? name : "";
}

// The x86 feature flags of the first CPU in /proc/cpuinfo.
std::string CpuFlags() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (absl::StartsWith(line, "flags")) return " " + line.substr(line.find(':') + 1) + " ";
  }
  return "";
}

}  // namespace

std::string OpenBlasCoreToSet() {
  if (std::getenv("OPENBLAS_CORETYPE") != nullptr) return "";
  const std::string core = absl::AsciiStrToLower(OpenBlasCore());
  // OpenBLAS's names for its pre-AVX x86-64 kernel sets.
  if (core != "prescott" && core != "core2" && core != "penryn" && core != "dunnington" && core != "nehalem" &&
      core != "atom") {
    return "";
  }
  const std::string flags = CpuFlags();
  if (absl::StrContains(flags, " avx512f ") && absl::StrContains(flags, " avx512bw ")) return "SkylakeX";
  if (absl::StrContains(flags, " avx2 ") && absl::StrContains(flags, " fma ")) return "Haswell";
  return "";
}

int AvailableCpus() {
  int n = static_cast<int>(std::thread::hardware_concurrency());
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) n = std::min(n, CPU_COUNT(&set));
  n = std::min(n, CgroupCpuLimit());
  return std::max(1, n);
}

TorchSetupInfo ConfigureTorch(int threads, bool retain_host_memory) {
  TorchSetupInfo info;
  if (retain_host_memory) {
    // One arena: glibc gives other threads (the device executor) mmap'ed heaps that
    // are trimmed regardless of the settings below.
    info.retain_host_memory =
        mallopt(M_ARENA_MAX, 1) == 1 && mallopt(M_MMAP_MAX, 0) == 1 && mallopt(M_TRIM_THRESHOLD, INT_MAX) == 1;
  }
  info.cpus_available = AvailableCpus();
  info.threads = threads > 0 ? threads : info.cpus_available;
  at::set_num_threads(info.threads);
  info.threads = at::get_num_threads();
  dl_iterate_phdr(FindBlas, &info.blas_library);
  // Debian's reference BLAS lives in .../blas/libblas.so.3; OpenBLAS and BLIS in
  // openblas-*/ and blis-*/ folders.
  info.reference_blas = absl::StrContains(info.blas_library, "/blas/libblas.so");
  info.blas_core = OpenBlasCore();
  info.torch_version = TORCH_VERSION;
  info.cuda_available = at::hasCUDA();
  if (info.cuda_available) {
    at::globalContext().setBenchmarkCuDNN(true);
    info.cudnn_benchmark = at::globalContext().benchmarkCuDNN();
  }
  return info;
}

}  // namespace ganserve::core
