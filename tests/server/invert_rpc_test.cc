// InvertImage, then rendering the inversion through its model.
#include <gtest/gtest.h>

#include <filesystem>

#include <unistd.h>

#include <cmath>
#include <functional>
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

// With landmarks the photo is FFHQ-aligned first: the job runs on the aligned crop, and
// landmarks that outline no face in the photo are refused before any job exists.
TEST_F(GanServiceTest, InvertAlignsAPhotoFromItsLandmarks) {
  auto stub = server_->Stub();
  core::Rgb8Image photo;
  photo.width = 120;
  photo.height = 90;
  for (int i = 0; i < photo.width * photo.height; ++i) {
    photo.pixels.push_back(static_cast<uint8_t>(i % 251));
    photo.pixels.push_back(static_cast<uint8_t>((i / 7) % 253));
    photo.pixels.push_back(static_cast<uint8_t>((i * 3) % 256));
  }
  auto png = core::EncodePng(photo);
  ASSERT_TRUE(png.ok());
  v1::InvertImageRequest inv;
  inv.set_model("tiny");
  inv.set_image(*png);
  inv.set_steps(3);
  const float five[5][2] = {{50, 40}, {70, 40}, {60, 50}, {52, 62}, {68, 62}};
  for (const auto& p : five) {
    auto* l = inv.add_landmarks();
    l->set_x(p[0]);
    l->set_y(p[1]);
  }
  grpc::Status st;
  grpc::ClientContext ctx;
  auto events = ReadAll<v1::JobEvent>(stub->InvertImage(&ctx, inv), &st);
  ASSERT_TRUE(st.ok()) << st.error_message();
  ASSERT_EQ(events.back().job().state(), v1::JOB_STATE_SUCCEEDED) << events.back().job().error_message();
  auto refused = [&](std::function<void(v1::InvertImageRequest*)> f, const char* says) {
    v1::InvertImageRequest bad = inv;
    f(&bad);
    grpc::ClientContext c;
    grpc::Status s;
    ReadAll<v1::JobEvent>(stub->InvertImage(&c, bad), &s);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << says;
    EXPECT_NE(s.error_message().find(says), std::string::npos) << s.error_message();
  };
  refused([](auto* r) { r->mutable_landmarks()->RemoveLast(); }, "68 points");
  refused([](auto* r) { r->set_aligned(true); }, "aligned");
  refused(
      [](auto* r) {
        for (auto& p : *r->mutable_landmarks()) p.set_x(p.x() + 5000);
      },
      "outside");
  refused([](auto* r) { r->mutable_landmarks(0)->set_x(NAN); }, "finite");
}

}  // namespace
}  // namespace ganserve::testing
