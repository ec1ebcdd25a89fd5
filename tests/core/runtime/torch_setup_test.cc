// Process-wide LibTorch settings: the BLAS report, and the OpenBLAS kernel advice.
#include "core/runtime/torch_setup.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <string>

namespace ganserve::core {
namespace {

TEST(TorchSetupTest, ReportsTheLoadedBlasAndOpenBlasKernels) {
  const TorchSetupInfo info = ConfigureTorch(1, false);
  EXPECT_EQ(info.threads, 1);
  EXPECT_GE(info.cpus_available, 1);
  if (info.blas_library.find("openblas") != std::string::npos) {
    EXPECT_FALSE(info.blas_core.empty()) << info.blas_library;
  } else {
    std::printf("BLAS is not OpenBLAS (%s): no kernel name to report\n", info.blas_library.c_str());
  }
}

TEST(TorchSetupTest, NoAdviceWhenTheKernelsAreChosenAlready) {
  // OpenBLAS has loaded already; a variable set now only says that the operator chose.
  setenv("OPENBLAS_CORETYPE", "Haswell", 1);
  EXPECT_EQ(OpenBlasCoreToSet(), "");
  unsetenv("OPENBLAS_CORETYPE");
  const std::string advice = OpenBlasCoreToSet();
  EXPECT_TRUE(advice.empty() || advice == "SkylakeX" || advice == "Haswell") << advice;
}

}  // namespace
}  // namespace ganserve::core
