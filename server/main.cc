// ganserve: the gRPC server binary.
#include <signal.h>
#include <spdlog/spdlog.h>

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "core/runtime/torch_setup.h"
#include "server/logging.h"
#include "server/options.h"
#include "server/server.h"

int main(int argc, char** argv) {
  using ganserve::server::GanServer;
  auto parsed = ganserve::server::ParseServerOptions(argc, argv);
  if (parsed.exit) {
    std::fputs(parsed.message.c_str(), parsed.exit_code == 0 ? stdout : stderr);
    return parsed.exit_code;
  }
  const auto& opt = parsed.options;
  ganserve::server::ConfigureLogging(opt.log_level, opt.log_format);
  if (const std::string core = ganserve::core::OpenBlasCoreToSet(); !core.empty()) {
    // OpenBLAS read the CPU at load time and chose its generic kernels: start again
    // with the kernels this CPU can run (OpenBLAS has no switch after loading).
    spdlog::info("OpenBLAS chose its pre-AVX kernels on this CPU; starting again with OPENBLAS_CORETYPE={}", core);
    setenv("OPENBLAS_CORETYPE", core.c_str(), 1);
    execv("/proc/self/exe", argv);
    spdlog::warn("could not start again ({}); matrix products run on OpenBLAS's generic kernels", std::strerror(errno));
  }

  // Block the signals in every thread; one thread waits for them below.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  const auto torch = ganserve::core::ConfigureTorch(opt.threads, opt.retain_host_memory);
  spdlog::info("LibTorch {}: {} intra-op threads ({} CPUs available), CUDA {}, BLAS {}{}, freed host memory {}",
               torch.torch_version, torch.threads, torch.cpus_available,
               torch.cuda_available ? (torch.cudnn_benchmark ? "available (cuDNN benchmark mode)" : "available")
                                    : "not available",
               torch.blas_library.empty() ? "not loaded" : torch.blas_library,
               torch.blas_core.empty() ? "" : " (" + torch.blas_core + " kernels)",
               torch.retain_host_memory ? "retained" : "returned to the OS");
  if (torch.reference_blas) {
    spdlog::warn(
        "the reference BLAS is in use and is ~20x slower; install libopenblas0-openmp "
        "(scripts/install-deps.sh does)");
  }

  auto server = GanServer::Start(opt);
  if (!server.ok()) {
    spdlog::critical("cannot start: {}", server.status().ToString());
    return 1;
  }
  int sig = 0;
  sigwait(&signals, &sig);
  spdlog::info("received {}", sig == SIGTERM ? "SIGTERM" : "SIGINT");
  (*server)->Shutdown(absl::Seconds(opt.shutdown_grace_seconds));
  return 0;
}
