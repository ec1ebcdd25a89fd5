// InvertImage, then rendering the inversion through its model.
#include <gtest/gtest.h>

#include <filesystem>

#include <unistd.h>

#include <cmath>
#include <thread>

#include <grpcpp/generic/generic_stub.h>
#include "core/io/image_codec.h"
#include "core/jobs/sqlite_job_store.h"
#include "core/models/stylegan2/generator.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "tests/server/service_fixture.h"
#include "tests/testing/shared.h"

namespace ganserve::testing {
namespace {

TEST_F(GanServiceTest, InvertThenRenderTheInversion) {
  auto stub = server_->Stub();
  v1::GenerateSamplesRequest g;
  g.set_model("tiny");
  g.add_seeds(4);
  grpc::Status st;
  auto png = Generate(stub.get(), g, &st);
  ASSERT_TRUE(st.ok());
  v1::InvertImageRequest inv;
  inv.set_model("tiny");
  inv.set_image(png[0].images(0).data());
  inv.set_steps(10);
  inv.set_preview_every(5);
  inv.set_pin(true);
  grpc::ClientContext ctx;
  auto reader = stub->InvertImage(&ctx, inv);
  v1::JobEvent e, last;
  int previews = 0;
  while (reader->Read(&e)) {
    previews += e.has_preview();
    last = e;
  }
  ASSERT_TRUE(reader->Finish().ok());
  EXPECT_EQ(previews, 2);
  ASSERT_EQ(last.job().state(), v1::JOB_STATE_SUCCEEDED) << last.job().error_message();
  const std::string id = last.job().result();
  EXPECT_EQ(id.rfind("inv-", 0), 0u) << id;
  EXPECT_TRUE(std::filesystem::exists(server_->data() + "/inversions/" + id + ".pinned"))
      << "a pinned inversion is kept past the job retention";
  v1::GenerateSamplesRequest r;
  r.set_model("tiny");
  r.set_inversion_id(id);
  r.set_return_latents(true);
  auto out = Generate(stub.get(), r, &st);
  ASSERT_TRUE(st.ok()) << st.error_message();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].images(0).latent().values().shape_size(), 3);
  // Bad images are refused before any job exists.
  for (const std::string& bad : {std::string(), std::string("not an image"), png[0].images(0).data().substr(0, 60)}) {
    v1::InvertImageRequest b = inv;
    b.set_image(bad);
    grpc::ClientContext c2;
    auto r2 = stub->InvertImage(&c2, b);
    while (r2->Read(&e)) {
    }
    auto s2 = r2->Finish();
    EXPECT_EQ(s2.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s2.error_message();
    EXPECT_NE(s2.error_message().find("image"), std::string::npos) << s2.error_message();
  }
}

}  // namespace
}  // namespace ganserve::testing
