// GenerateSamples streaming and its request contract against the real server.
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <thread>

#include <grpcpp/generic/generic_stub.h>
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "core/io/image_codec.h"
#include "core/jobs/sqlite_job_store.h"
#include "core/models/stylegan2/generator.h"
#include "core/service/application.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "server/retry_info.h"
#include "tests/server/service_fixture.h"
#include "tests/server/test_server.h"
#include "tests/testing/shared.h"

namespace ganserve::testing {
namespace {

TEST_F(GanServiceTest, GenerateStreamsBatchesOfRealImages) {
  auto stub = server_->Stub();
  v1::GenerateSamplesRequest req;
  req.set_model("tiny");
  for (int s : {1, 2, 3, 4, 5}) req.add_seeds(s);
  req.set_batch_size(2);
  req.set_return_latents(true);
  grpc::Status st;
  auto batches = Generate(stub.get(), req, &st);
  ASSERT_TRUE(st.ok()) << st.error_message();
  ASSERT_EQ(batches.size(), 3u);
  EXPECT_EQ(batches[0].done(), 2);
  EXPECT_EQ(batches[2].done(), 5);
  EXPECT_EQ(batches[2].total(), 5);
  int index = 0;
  for (const auto& b : batches) {
    for (const auto& im : b.images()) {
      EXPECT_EQ(im.index(), index++);
      EXPECT_EQ(im.seed(), index);
      auto png = core::DecodeImage(im.data());
      ASSERT_TRUE(png.ok()) << png.status();
      EXPECT_EQ(png->width, 32);
      EXPECT_EQ(im.latent().values().shape_size(), 3);
      EXPECT_EQ(im.latent().values().data_size(), 8 * 64);
    }
  }
  // Same seed, same image. Rendered alone instead of in a batch of two, kernels chosen
  // per batch shape may round differently by a float epsilon: at most one level.
  v1::GenerateSamplesRequest again;
  again.set_model("tiny");
  again.add_seeds(3);
  auto one = Generate(stub.get(), again, &st);
  ASSERT_TRUE(st.ok());
  auto alone = core::DecodeImage(one[0].images(0).data());
  auto batched = core::DecodeImage(batches[1].images(0).data());
  ASSERT_TRUE(alone.ok() && batched.ok());
  ASSERT_EQ(alone->pixels.size(), batched->pixels.size());
  int max_diff = 0;
  for (size_t i = 0; i < alone->pixels.size(); ++i) {
    max_diff = std::max(max_diff, std::abs(int{alone->pixels[i]} - int{batched->pixels[i]}));
  }
  EXPECT_LE(max_diff, 1);
}

TEST_F(GanServiceTest, RawFloatMatchesTheInProcessGenerator) {
  auto stub = server_->Stub();
  v1::GenerateSamplesRequest req;
  req.set_model("tiny");
  req.add_seeds(7);
  req.set_format(v1::IMAGE_FORMAT_RAW_FLOAT);
  req.set_truncation(0.5f);
  req.set_has_truncation(true);
  grpc::Status st;
  auto b = Generate(stub.get(), req, &st);
  ASSERT_TRUE(st.ok()) << st.error_message();
  auto gen = core::stylegan2::Generator::Load(server_->repo() + "/tiny/g.safetensors", {});
  ASSERT_TRUE(gen.ok());
  core::stylegan2::GenerateParams p;
  p.latents.shape = {1, 64};
  p.latents.data = core::stylegan2::SeedToZ(7, 64);
  p.truncation = 0.5f;
  auto r = (*gen)->Generate(p);
  ASSERT_TRUE(r.ok());
  const auto& raw = b[0].images(0).raw();
  ASSERT_EQ(raw.data_size(), static_cast<int>(r->images.data.size()));
  for (int i = 0; i < raw.data_size(); ++i) ASSERT_EQ(raw.data(i), r->images.data[i]) << i;
}

// What the proto promises of seeds: the same request gives the same bytes; the same seed
// rendered beside other seeds (another batch shape) agrees within float rounding in raw
// values and within one level in PNG pixels.
TEST_F(GanServiceTest, SameSeedSameBytesAndWithinRoundingInAnotherBatch) {
  auto stub = server_->Stub();
  auto render = [&](std::vector<int64_t> seeds, v1::ImageFormat format) {
    v1::GenerateSamplesRequest req;
    req.set_model("tiny");
    for (int64_t s : seeds) req.add_seeds(s);
    req.set_format(format);
    req.set_batch_size(8);
    grpc::Status st;
    auto batches = Generate(stub.get(), req, &st);
    EXPECT_TRUE(st.ok()) << st.error_message();
    std::vector<v1::Image> out;
    for (const auto& b : batches) out.insert(out.end(), b.images().begin(), b.images().end());
    return out;
  };
  for (auto format : {v1::IMAGE_FORMAT_RAW_FLOAT, v1::IMAGE_FORMAT_PNG}) {
    auto alone = render({2}, format);
    auto again = render({2}, format);
    auto beside = render({1, 2, 3, 4, 5}, format);
    ASSERT_EQ(alone.size(), 1u);
    ASSERT_EQ(beside.size(), 5u);
    EXPECT_EQ(alone[0].SerializeAsString(), again[0].SerializeAsString()) << "the same request, other bytes";
    if (format == v1::IMAGE_FORMAT_RAW_FLOAT) {
      const auto& a = alone[0].raw().data();
      const auto& b = beside[1].raw().data();
      ASSERT_EQ(a.size(), b.size());
      float worst = 0;
      for (int i = 0; i < a.size(); ++i) worst = std::max(worst, std::fabs(a[i] - b[i]));
      EXPECT_LT(worst, 1e-4f) << "raw values of seed 2 alone and in a batch of 5";
    } else {
      auto a = core::DecodeImage(alone[0].data());
      auto b = core::DecodeImage(beside[1].data());
      ASSERT_TRUE(a.ok() && b.ok());
      ASSERT_EQ(a->pixels.size(), b->pixels.size());
      for (size_t i = 0; i < a->pixels.size(); ++i) {
        ASSERT_LE(std::abs(int{a->pixels[i]} - int{b->pixels[i]}), 1) << i;
      }
    }
  }
}

struct BadCase {
  const char* name;
  std::function<void(v1::GenerateSamplesRequest*)> edit;
  grpc::StatusCode code;
  const char* message_part;
};

// The request contract of GenerateSamples: each bad field gets its code and a message
// naming it, and the server keeps serving.
// Back-pressure: with the device busy and its interactive queue full, GenerateSamples
// answers RESOURCE_EXHAUSTED with a google.rpc.RetryInfo (and the delay in words); a
// caller that waits that long and retries is served.
TEST(BusyServerTest, FullQueueAnswersRetryInfoAndTheRetryIsServed) {
  TestServerOptions opt;
  opt.max_interactive_queue = 1;
  TestServer server(::testing::TempDir() + "/busy_server_test_" + std::to_string(::getpid()), opt);
  core::DeviceExecutor& exec = server.server().application().executor();
  // One 200 ms task teaches the executor how long interactive work takes.
  absl::Notification ran, entered, release;
  ASSERT_TRUE(exec.Submit(core::WorkClass::kInteractive,
                          [&](bool) {
                            absl::SleepFor(absl::Milliseconds(200));
                            ran.Notify();
                          })
                  .ok());
  ran.WaitForNotification();
  absl::SleepFor(absl::Milliseconds(20));
  // Then the device is held and the one queue slot taken.
  ASSERT_TRUE(exec.Submit(core::WorkClass::kInteractive,
                          [&](bool) {
                            entered.Notify();
                            release.WaitForNotification();
                          })
                  .ok());
  entered.WaitForNotification();
  ASSERT_TRUE(exec.Submit(core::WorkClass::kInteractive, [](bool) {}).ok());

  auto stub = server.Stub();
  v1::GenerateSamplesRequest req;
  req.set_model("tiny");
  req.add_seeds(1);
  grpc::Status st;
  Generate(stub.get(), req, &st);
  ASSERT_EQ(st.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << st.error_message();
  EXPECT_NE(st.error_message().find("retry in about"), std::string::npos) << st.error_message();
  std::optional<absl::Duration> delay = server::RetryDelayOf(st);
  ASSERT_TRUE(delay.has_value()) << "no google.rpc.RetryInfo in the status details";
  EXPECT_GE(*delay, absl::Milliseconds(50));
  EXPECT_LE(*delay, absl::Seconds(2));

  release.Notify();
  absl::SleepFor(*delay);
  auto batches = Generate(stub.get(), req, &st);
  EXPECT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(batches.size(), 1u);
}

TEST_F(GanServiceTest, GenerateRejectsBadRequests) {
  const BadCase cases[] = {
      {"no model", [](auto* r) { r->clear_model(); }, grpc::StatusCode::INVALID_ARGUMENT, "model is required"},
      {"bad model name", [](auto* r) { r->set_model("../etc"); }, grpc::StatusCode::INVALID_ARGUMENT,
       "valid model name"},
      {"unknown model", [](auto* r) { r->set_model("nope"); }, grpc::StatusCode::NOT_FOUND, "no model named 'nope'"},
      {"broken model", [](auto* r) { r->set_model("broken"); }, grpc::StatusCode::FAILED_PRECONDITION,
       "failed to load"},
      {"two sources", [](auto* r) { r->set_count(3); }, grpc::StatusCode::INVALID_ARGUMENT, "exactly one of"},
      {"no source", [](auto* r) { r->clear_seeds(); }, grpc::StatusCode::INVALID_ARGUMENT, "exactly one of"},
      {"negative seed", [](auto* r) { r->set_seeds(0, -1); }, grpc::StatusCode::INVALID_ARGUMENT, "seeds[0]"},
      {"huge seed", [](auto* r) { r->set_seeds(0, int64_t{1} << 33); }, grpc::StatusCode::INVALID_ARGUMENT, "seeds[0]"},
      {"too many images",
       [](auto* r) {
         r->clear_seeds();
         r->set_count(65);
       },
       grpc::StatusCode::INVALID_ARGUMENT, "count must be in [1, 64]"},
      {"batch too big", [](auto* r) { r->set_batch_size(1000); }, grpc::StatusCode::INVALID_ARGUMENT, "batch_size"},
      {"truncation NaN",
       [](auto* r) {
         r->set_truncation(NAN);
         r->set_has_truncation(true);
       },
       grpc::StatusCode::INVALID_ARGUMENT, "truncation"},
      {"truncation range",
       [](auto* r) {
         r->set_truncation(3);
         r->set_has_truncation(true);
       },
       grpc::StatusCode::INVALID_ARGUMENT, "truncation must be in [0, 2]"},
      {"inject without mix", [](auto* r) { r->set_inject_index(2); }, grpc::StatusCode::INVALID_ARGUMENT, "mix_seeds"},
      {"mix count",
       [](auto* r) {
         r->add_mix_seeds(1);
         r->add_mix_seeds(2);
         r->set_inject_index(2);
       },
       grpc::StatusCode::INVALID_ARGUMENT, "one seed per image"},
      {"inject range",
       [](auto* r) {
         r->add_mix_seeds(1);
         r->set_inject_index(8);
       },
       grpc::StatusCode::INVALID_ARGUMENT, "inject_index must be in [1, 7]"},
      {"jpeg quality", [](auto* r) { r->set_jpeg_quality(101); }, grpc::StatusCode::INVALID_ARGUMENT, "jpeg_quality"},
      {"bad format enum", [](auto* r) { r->set_format(static_cast<v1::ImageFormat>(42)); },
       grpc::StatusCode::INVALID_ARGUMENT, "format"},
      {"latent wrong shape",
       [](auto* r) {
         r->clear_seeds();
         auto* l = r->mutable_latents();
         l->set_space(v1::LATENT_SPACE_W);
         l->mutable_values()->add_shape(1);
         l->mutable_values()->add_shape(63);
         for (int i = 0; i < 63; ++i) l->mutable_values()->add_data(0);
       },
       grpc::StatusCode::INVALID_ARGUMENT, "needs [1, 64]"},
      {"latent NaN",
       [](auto* r) {
         r->clear_seeds();
         auto* l = r->mutable_latents();
         l->set_space(v1::LATENT_SPACE_Z);
         l->mutable_values()->add_shape(1);
         l->mutable_values()->add_shape(64);
         for (int i = 0; i < 64; ++i) l->mutable_values()->add_data(i == 5 ? INFINITY : 0);
       },
       grpc::StatusCode::INVALID_ARGUMENT, "data[5]"},
      {"latent size mismatch",
       [](auto* r) {
         r->clear_seeds();
         auto* l = r->mutable_latents();
         l->set_space(v1::LATENT_SPACE_Z);
         l->mutable_values()->add_shape(2);
         l->mutable_values()->add_shape(64);
         l->mutable_values()->add_data(0);
       },
       grpc::StatusCode::INVALID_ARGUMENT, "needs 128 values"},
      {"latent no space",
       [](auto* r) {
         r->clear_seeds();
         r->mutable_latents();
       },
       grpc::StatusCode::INVALID_ARGUMENT, "latents.space"},
      {"unknown inversion",
       [](auto* r) {
         r->clear_seeds();
         r->set_inversion_id("inv-1");
       },
       grpc::StatusCode::NOT_FOUND, "no inversion 'inv-1'"},
      {"bad inversion id",
       [](auto* r) {
         r->clear_seeds();
         r->set_inversion_id("../../etc/passwd");
       },
       grpc::StatusCode::INVALID_ARGUMENT, "not an inversion id"},
  };
  auto stub = server_->Stub();
  for (const BadCase& c : cases) {
    v1::GenerateSamplesRequest req;
    req.set_model("tiny");
    req.add_seeds(1);
    c.edit(&req);
    grpc::Status st;
    auto batches = Generate(stub.get(), req, &st);
    EXPECT_EQ(st.error_code(), c.code) << c.name << ": " << st.error_message();
    EXPECT_NE(st.error_message().find(c.message_part), std::string::npos) << c.name << ": " << st.error_message();
    EXPECT_TRUE(batches.empty()) << c.name;
  }
  // Still serving.
  v1::GenerateSamplesRequest ok;
  ok.set_model("tiny");
  ok.add_seeds(1);
  grpc::Status st;
  Generate(stub.get(), ok, &st);
  EXPECT_TRUE(st.ok());
}

}  // namespace
}  // namespace ganserve::testing
