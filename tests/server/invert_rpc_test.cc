// InvertImage, then rendering the inversion through its model.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>

#include <unistd.h>

#include <cmath>
#include <functional>
#include <thread>

#include <grpcpp/generic/generic_stub.h>
#include "core/checkpoint/safetensors.h"
#include "core/checkpoint/torch_writer.h"
#include "core/invert/face_landmarks.h"
#include "core/io/image_codec.h"
#include "core/jobs/sqlite_job_store.h"
#include "core/models/stylegan2/generator.h"
#include "core/models/stylegan2/random_init.h"
#include "core/util/file_util.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "tests/server/service_fixture.h"
#include "tests/testing/shared.h"
#include "tests/testing/tiny_models.h"

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
  refused([](auto* r) { r->set_align(true); }, "not both");
  // No landmarks model in this repository: align says which file to install.
  v1::InvertImageRequest detect = inv;
  detect.clear_landmarks();
  detect.set_align(true);
  grpc::ClientContext c;
  ReadAll<v1::JobEvent>(stub->InvertImage(&c, detect), &st);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << st.error_message();
  EXPECT_NE(st.error_message().find("shape_predictor_68_face_landmarks.dat"), std::string::npos) << st.error_message();
}

// align: dlib's 68-point predictor imported as a LANDMARKS model finds the face of a real
// photo, and the job inverts the same aligned crop as a request that sends those
// landmarks itself (same seed, same latent). A photo without a face is refused before
// any job exists, and so is a file that is no predictor.
TEST_F(GanServiceTest, InvertAlignsAtTheFaceTheLandmarksModelFinds) {
  const char* predictor = "/usr/share/dlib/shape_predictor_68_face_landmarks.dat";
  auto photo = core::ReadFile(std::string(GANSERVE_BINARY_DIR) + "/test_fixtures/face/astronaut.png");
  if (!std::filesystem::exists(predictor)) GTEST_SKIP() << predictor << " is missing (Debian's libdlib-data)";
  if (!photo.ok()) GTEST_SKIP() << "no face photo (tests/fixtures/face_photo.sh): " << photo.status();
  auto stub = server_->Stub();
  v1::Model m;
  auto bogus = Import(stub.get(), Upload{"not-landmarks", v1::MODEL_KIND_LANDMARKS, {{"sp.dat", "not dlib"}}, ""}, &m);
  EXPECT_EQ(bogus.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << bogus.error_message();
  EXPECT_NE(bogus.error_message().find("not a dlib shape predictor"), std::string::npos) << bogus.error_message();
  auto dat = core::ReadFile(predictor);
  ASSERT_TRUE(dat.ok()) << dat.status();
  grpc::Status st = Import(
      stub.get(),
      Upload{"dlib-landmarks", v1::MODEL_KIND_LANDMARKS, {{"shape_predictor_68_face_landmarks.dat", *dat}}, ""}, &m);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(m.kind(), v1::MODEL_KIND_LANDMARKS);

  auto invert = [&](const v1::InvertImageRequest& r) {
    grpc::ClientContext c;
    auto events = ReadAll<v1::JobEvent>(stub->InvertImage(&c, r), &st);
    EXPECT_TRUE(st.ok()) << st.error_message();
    if (events.empty()) return v1::Job();
    EXPECT_EQ(events.back().job().state(), v1::JOB_STATE_SUCCEEDED) << events.back().job().error_message();
    return events.back().job();
  };
  auto latent = [&](const std::string& inversion) {
    v1::GenerateSamplesRequest g;
    g.set_model("tiny");
    g.set_inversion_id(inversion);
    g.set_return_latents(true);
    auto out = Generate(stub.get(), g, &st);
    EXPECT_TRUE(st.ok()) << st.error_message();
    const auto& v = out.at(0).images(0).latent().values().data();
    return std::vector<float>(v.begin(), v.end());
  };
  v1::InvertImageRequest inv;
  inv.set_model("tiny");
  inv.set_image(*photo);
  inv.set_steps(2);
  inv.set_seed(3);
  inv.set_align(true);
  const v1::Job detected = invert(inv);
  ASSERT_FALSE(detected.result().empty());

  auto decoded = core::DecodeImage(*photo);
  ASSERT_TRUE(decoded.ok());
  auto landmarker = core::invert::FaceLandmarker::Load(predictor);
  ASSERT_TRUE(landmarker.ok()) << landmarker.status();
  auto face = (*landmarker)->Largest(*decoded);
  ASSERT_TRUE(face.ok()) << face.status();
  v1::InvertImageRequest sent = inv;
  sent.set_align(false);
  for (const auto& p : face->landmarks) {
    auto* l = sent.add_landmarks();
    l->set_x(static_cast<float>(p.x));
    l->set_y(static_cast<float>(p.y));
  }
  const v1::Job given = invert(sent);
  const std::vector<float> a = latent(detected.result()), b = latent(given.result());
  ASSERT_EQ(a.size(), b.size());
  ASSERT_FALSE(a.empty());
  float worst = 0;
  for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::fabs(a[i] - b[i]));
  EXPECT_LE(worst, 1e-4f) << "the detected landmarks align as the same landmarks sent";

  core::Rgb8Image flat;
  flat.width = 200;
  flat.height = 160;
  flat.pixels.assign(200 * 160 * 3, 77);
  v1::InvertImageRequest faceless = inv;
  faceless.set_image(*core::EncodePng(flat));
  grpc::ClientContext c;
  ReadAll<v1::JobEvent>(stub->InvertImage(&c, faceless), &st);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << st.error_message();
  EXPECT_NE(st.error_message().find("no face found"), std::string::npos) << st.error_message();
  v1::InvertImageRequest both = inv;
  both.set_aligned(true);
  grpc::ClientContext c2;
  ReadAll<v1::JobEvent>(stub->InvertImage(&c2, both), &st);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << st.error_message();
}

// The encoder method end to end: an official-layout e4e checkpoint for a 512-wide
// generator imports (only the encoder is kept), and InvertImage with method ENCODER
// inverts a generated image into its own w+ in one step (the encoder answers that w+ by
// construction: testing::OracleEncoderWeights), then refines it when asked. Requests the
// method cannot serve are refused before any job exists.
TEST(EncoderInvertTest, ImportsAnE4eCheckpointAndInvertsWithIt) {
  TestServerOptions opt;
  std::map<std::string, core::FloatTensor> face;
  opt.prepare_repo = [&face](const std::string& repo) {
    face = core::stylegan2::RandomGeneratorWeights(core::stylegan2::MakeConfig(32, 512, 2, 1, 8), 6, 0.1f);
    std::filesystem::create_directories(repo + "/face");
    ASSERT_TRUE(core::SaveSafetensors(repo + "/face/g.safetensors", face, {}).ok());
    std::ofstream(repo + "/face/manifest.json") << R"({"kind": "generator", "checkpoint": "g.safetensors"})";
  };
  TestServer server(Root("encoder_invert"), opt);
  auto stub = server.Stub();
  grpc::Status st;
  v1::GenerateSamplesRequest g;
  g.set_model("face");
  g.add_seeds(7);
  g.set_return_latents(true);
  auto out = Generate(stub.get(), g, &st);
  ASSERT_TRUE(st.ok()) << st.error_message();
  const auto& lat = out[0].images(0).latent().values();
  const core::FloatTensor wplus{{lat.shape().begin(), lat.shape().end()}, {lat.data().begin(), lat.data().end()}};
  ASSERT_EQ(wplus.shape, (std::vector<int64_t>{1, 8, 512}));

  v1::InvertImageRequest inv;
  inv.set_model("face");
  inv.set_image(out[0].images(0).data());
  inv.set_method(v1::INVERT_METHOD_ENCODER);
  auto refused = [&](const v1::InvertImageRequest& r) {
    grpc::ClientContext c;
    ReadAll<v1::JobEvent>(stub->InvertImage(&c, r), &st);
    return st;
  };
  EXPECT_EQ(refused(inv).error_code(), grpc::StatusCode::FAILED_PRECONDITION) << st.error_message();
  EXPECT_NE(st.error_message().find("ImportModel kind ENCODER"), std::string::npos) << st.error_message();

  std::map<std::string, core::FloatTensor> sd, enc = OracleEncoderWeights(wplus, 3);
  const core::FloatTensor avg = enc.at("latent_avg");
  enc.erase("latent_avg");
  for (auto& [k, v] : enc) sd["encoder." + k] = std::move(v);
  for (auto& [k, v] : face) sd["decoder." + k] = std::move(v);
  Upload up;
  up.name = "face-e4e";
  up.kind = v1::MODEL_KIND_ENCODER;
  up.base_model = "face";
  up.files.emplace_back("e4e_face.pt", core::EncodeTorchSave({{"state_dict", std::move(sd)}, {"latent_avg", avg}}));
  v1::Model m;
  ASSERT_TRUE(Import(stub.get(), up, &m).ok());
  EXPECT_EQ(m.kind(), v1::MODEL_KIND_ENCODER);
  EXPECT_EQ(m.base_model(), "face");
  EXPECT_FALSE(std::filesystem::exists(server.repo() + "/face-e4e/e4e_face.pt")) << "only the encoder is kept";

  for (auto [field, bad] : std::vector<std::pair<const char*, std::function<void(v1::InvertImageRequest*)>>>{
           {"steps", [](v1::InvertImageRequest* r) { r->set_steps(10); }},
           {"W_PLUS", [](v1::InvertImageRequest* r) { r->set_space(v1::LATENT_SPACE_W); }},
           {"refine_steps", [](v1::InvertImageRequest* r) { r->set_refine_steps(5001); }},
           {"not an encoder", [](v1::InvertImageRequest* r) { r->set_encoder("face"); }},
           {"for method ENCODER",
            [](v1::InvertImageRequest* r) { r->set_method(v1::INVERT_METHOD_OPTIMIZATION), r->set_encoder("x"); }}}) {
    v1::InvertImageRequest r = inv;
    bad(&r);
    EXPECT_EQ(refused(r).error_code(), grpc::StatusCode::INVALID_ARGUMENT) << field << ": " << st.error_message();
    EXPECT_NE(st.error_message().find(field), std::string::npos) << st.error_message();
  }

  for (int refine : {0, 3}) {
    v1::InvertImageRequest r = inv;
    r.set_refine_steps(refine);
    grpc::ClientContext c;
    auto events = ReadAll<v1::JobEvent>(stub->InvertImage(&c, r), &st);
    ASSERT_TRUE(st.ok()) << st.error_message();
    ASSERT_FALSE(events.empty());
    const v1::Job& job = events.back().job();
    ASSERT_EQ(job.state(), v1::JOB_STATE_SUCCEEDED) << job.error_message();
    float psnr = 0;
    std::string phases;
    for (const auto& e : events) {
      if (!e.has_progress()) continue;
      if (e.progress().losses().count("psnr") != 0) psnr = e.progress().losses().at("psnr");
      phases += e.progress().phase() + " ";
      EXPECT_EQ(e.progress().total_steps(), 1 + refine);
    }
    EXPECT_EQ(phases.rfind("encode ", 0), 0u) << phases;
    // 8-bit rounding of the target is all that separates the encoder's rendering from it.
    EXPECT_GT(psnr, 50.0f);
    v1::GenerateSamplesRequest rg;
    rg.set_model("face");
    rg.set_inversion_id(job.result());
    rg.set_return_latents(true);
    auto back = Generate(stub.get(), rg, &st);
    ASSERT_TRUE(st.ok()) << st.error_message();
    const auto& got = back[0].images(0).latent().values().data();
    ASSERT_EQ(got.size(), static_cast<int>(wplus.data.size()));
    if (refine == 0) {
      for (int i = 0; i < got.size(); ++i) ASSERT_NEAR(got[i], wplus.data[static_cast<size_t>(i)], 1e-4) << i;
    }
  }
}

}  // namespace
}  // namespace ganserve::testing
