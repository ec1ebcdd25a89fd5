// LibTorch errors become statuses: device out-of-memory is RESOURCE_EXHAUSTED (and
// counted for the metrics), anything else INTERNAL.
#include "core/models/common/torch_convert.h"

#include <gtest/gtest.h>

#include "core/util/oom_counter.h"

namespace ganserve::core {
namespace {

TEST(TorchErrorStatusTest, OutOfMemoryIsResourceExhaustedAndCounted) {
  const int64_t before = OutOfMemoryEvents().load();
  c10::OutOfMemoryError oom({"f", "file.cc", 1}, "CUDA out of memory. Tried to allocate 2.00 GiB");
  absl::Status s = TorchErrorStatus(oom, "generation failed");
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(s.message().find("generation failed: the device ran out of memory"), std::string::npos) << s;
  EXPECT_NE(s.message().find("smaller batch_size"), std::string::npos) << s;
  EXPECT_EQ(OutOfMemoryEvents().load(), before + 1);

  c10::Error other({"f", "file.cc", 2}, "shape mismatch");
  absl::Status t = TorchErrorStatus(other, "mapping failed");
  EXPECT_EQ(t.code(), absl::StatusCode::kInternal);
  EXPECT_NE(t.message().find("mapping failed: shape mismatch"), std::string::npos) << t;
  EXPECT_EQ(OutOfMemoryEvents().load(), before + 1);
}

}  // namespace
}  // namespace ganserve::core
