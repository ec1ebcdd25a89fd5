// The real server, in-process on 127.0.0.1:0: health, reflection, metrics, jobs and
// models RPCs, and GenerateSamples streaming with its request contract.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cmath>
#include <thread>

#include "core/io/image_codec.h"
#include "core/jobs/sqlite_job_store.h"
#include "core/models/stylegan2/generator.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include <grpcpp/generic/generic_stub.h>
#include "tests/server/test_server.h"
#include "tests/testing/shared.h"

namespace ganserve::testing {
namespace {

// Unique per process: ctest runs the tests of this file in parallel processes.
std::string Root(const char* name) {
  return ::testing::TempDir() + "/gan_service_test_" + name + "_" + std::to_string(::getpid());
}

class GanServiceTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    server_ = new TestServer(Root("shared"), {.prepare_data = [](const std::string& data) {
                                                auto store = core::SqliteJobStore::Open(data + "/jobs.db");
                                                ASSERT_TRUE(store.ok());
                                                core::JobRecord done;
                                                done.id = "job-done";
                                                done.kind = core::JobKind::kAdapt;
                                                done.state = core::JobState::kRunning;
                                                done.model = "tiny";
                                                done.create_time_ms = 1000;
                                                ASSERT_TRUE((*store)->CreateJob(done).ok());
                                                for (int i = 1; i <= 3; ++i) {
                                                  if (i == 3) done.state = core::JobState::kSucceeded;
                                                  v1::JobEvent ev;
                                                  ev.set_seq(i);
                                                  ev.mutable_job()->set_id(done.id);
                                                  ev.mutable_progress()->set_step(i);
                                                  ASSERT_TRUE((*store)->AppendEvent(done, "progress",
                                                                                   ev.SerializeAsString(), 1000 + i)
                                                                  .ok());
                                                }
                                                core::JobRecord queued;
                                                queued.id = "job-queued";
                                                queued.kind = core::JobKind::kInvert;
                                                queued.model = "tiny";
                                                queued.create_time_ms = 2000;
                                                queued.request = R"({"model": "tiny"})";
                                                queued.request_encoding = "spec-json";
                                                ASSERT_TRUE((*store)->CreateJob(queued).ok());
                                                setup_ok_ = true;
                                              },
                                              .max_interactive_queue = 256,
                                              .max_images_per_request = 64});
  }
  void SetUp() override {
    // A failure inside SetUpTestSuite would otherwise show as a skip.
    ASSERT_FALSE(::testing::Test::HasFailure());
    ASSERT_NE(server_, nullptr);
    ASSERT_EQ(server_->metrics_port() > 0, true) << "the test server did not start";
    ASSERT_TRUE(setup_ok_) << "seeding the job store failed; see the messages above";
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  static TestServer* server_;
  static bool setup_ok_;
};
TestServer* GanServiceTest::server_ = nullptr;
bool GanServiceTest::setup_ok_ = false;

TEST_F(GanServiceTest, HealthServicesAreServingOnceModelsLoaded) {
  auto stub = grpc::health::v1::Health::NewStub(server_->channel());
  for (const std::string svc : {"", "liveness", "readiness"}) {
    grpc::ClientContext ctx;
    grpc::health::v1::HealthCheckRequest req;
    req.set_service(svc);
    grpc::health::v1::HealthCheckResponse resp;
    ASSERT_TRUE(stub->Check(&ctx, req, &resp).ok()) << svc;
    EXPECT_EQ(resp.status(), grpc::health::v1::HealthCheckResponse::SERVING) << svc;
  }
}

// Reflection through a generic call (the reflection messages live inside
// libgrpc++_reflection, so the request is encoded by hand: field 7 list_services "*").
TEST_F(GanServiceTest, ReflectionListsTheService) {
  grpc::GenericStub stub(server_->channel());
  grpc::ClientContext ctx;
  grpc::CompletionQueue cq;
  auto call = stub.PrepareCall(&ctx, "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", &cq);
  auto wait = [&cq](intptr_t want) {
    void* tag = nullptr;
    bool ok = false;
    EXPECT_TRUE(cq.Next(&tag, &ok));
    EXPECT_EQ(reinterpret_cast<intptr_t>(tag), want);
    return ok;
  };
  call->StartCall(reinterpret_cast<void*>(1));
  ASSERT_TRUE(wait(1));
  const std::string request("\x3a\x01*", 3);
  grpc::Slice slice(request);
  grpc::ByteBuffer out(&slice, 1);
  call->Write(out, reinterpret_cast<void*>(2));
  ASSERT_TRUE(wait(2));
  call->WritesDone(reinterpret_cast<void*>(3));
  ASSERT_TRUE(wait(3));
  grpc::ByteBuffer in;
  call->Read(&in, reinterpret_cast<void*>(4));
  ASSERT_TRUE(wait(4));
  std::vector<grpc::Slice> slices;
  ASSERT_TRUE(in.Dump(&slices).ok());
  std::string response;
  for (const auto& s : slices) response.append(reinterpret_cast<const char*>(s.begin()), s.size());
  EXPECT_NE(response.find("ganserve.v1.GanService"), std::string::npos);
  EXPECT_NE(response.find("grpc.health.v1.Health"), std::string::npos);
  grpc::Status status;
  call->Finish(&status, reinterpret_cast<void*>(5));
  wait(5);
  EXPECT_TRUE(status.ok()) << status.error_message();
}

TEST_F(GanServiceTest, ModelsListShowsReadyAndBrokenModels) {
  auto stub = server_->Stub();
  grpc::ClientContext ctx;
  v1::ListModelsResponse resp;
  ASSERT_TRUE(stub->ListModels(&ctx, v1::ListModelsRequest(), &resp).ok());
  std::map<std::string, v1::Model> by_name;
  for (const auto& m : resp.models()) by_name[m.name()] = m;
  ASSERT_EQ(by_name.count("broken"), 1u);
  EXPECT_EQ(by_name["broken"].state(), v1::MODEL_STATE_FAILED);
  EXPECT_NE(by_name["broken"].error().find("missing.pt"), std::string::npos) << by_name["broken"].error();
  ASSERT_EQ(by_name.count("tiny"), 1u);
  EXPECT_EQ(by_name["tiny"].state(), v1::MODEL_STATE_READY);
  EXPECT_EQ(by_name["tiny"].resolution(), 32);
  EXPECT_EQ(by_name["tiny"].n_latent(), 8);
  if (!SharedDir().empty()) {
    ASSERT_EQ(by_name.count("clip-tiny"), 1u);
    EXPECT_EQ(by_name["clip-tiny"].kind(), v1::MODEL_KIND_CLIP);
    EXPECT_EQ(by_name["clip-tiny"].state(), v1::MODEL_STATE_READY) << by_name["clip-tiny"].error();
    EXPECT_EQ(by_name["clip-tiny"].resolution(), 224);
  }

  grpc::ClientContext c2;
  v1::GetModelRequest get;
  get.set_name("nope");
  v1::Model m;
  auto s = stub->GetModel(&c2, get, &m);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_NE(s.error_message().find("tiny"), std::string::npos) << s.error_message();

  grpc::ClientContext c3;
  v1::DeleteModelRequest del;
  del.set_name("tiny");
  v1::DeleteModelResponse dr;
  EXPECT_EQ(stub->DeleteModel(&c3, del, &dr).error_code(), grpc::StatusCode::FAILED_PRECONDITION);
}

TEST_F(GanServiceTest, JobsListGetCancelWatch) {
  auto stub = server_->Stub();
  {
    grpc::ClientContext ctx;
    v1::ListJobsResponse resp;
    ASSERT_TRUE(stub->ListJobs(&ctx, v1::ListJobsRequest(), &resp).ok());
    ASSERT_EQ(resp.jobs_size(), 2);
    EXPECT_EQ(resp.jobs(0).id(), "job-queued");  // newest first
  }
  {
    grpc::ClientContext ctx;
    v1::ListJobsRequest req;
    req.set_state(v1::JOB_STATE_SUCCEEDED);
    v1::ListJobsResponse resp;
    ASSERT_TRUE(stub->ListJobs(&ctx, req, &resp).ok());
    ASSERT_EQ(resp.jobs_size(), 1);
    EXPECT_EQ(resp.jobs(0).id(), "job-done");
    EXPECT_EQ(resp.jobs(0).step(), 0);
  }
  {
    grpc::ClientContext ctx;
    v1::ListJobsRequest req;
    req.set_page_size(501);
    v1::ListJobsResponse resp;
    EXPECT_EQ(stub->ListJobs(&ctx, req, &resp).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  }
  {
    grpc::ClientContext ctx;
    v1::GetJobRequest req;
    req.set_id("missing");
    v1::Job j;
    EXPECT_EQ(stub->GetJob(&ctx, req, &j).error_code(), grpc::StatusCode::NOT_FOUND);
  }
  // Cancelling a finished job is a no-op that returns it; an unknown id is NOT_FOUND.
  for (int i = 0; i < 2; ++i) {
    grpc::ClientContext ctx;
    v1::CancelJobRequest req;
    req.set_id("job-done");
    v1::Job j;
    ASSERT_TRUE(stub->CancelJob(&ctx, req, &j).ok());
    EXPECT_EQ(j.state(), v1::JOB_STATE_SUCCEEDED);
  }
  {
    grpc::ClientContext ctx;
    v1::CancelJobRequest req;
    req.set_id("job-nope");
    v1::Job j;
    EXPECT_EQ(stub->CancelJob(&ctx, req, &j).error_code(), grpc::StatusCode::NOT_FOUND);
  }
  // Replay of a finished job after seq 1.
  {
    grpc::ClientContext ctx;
    v1::WatchJobRequest req;
    req.set_id("job-done");
    req.set_after_seq(1);
    auto reader = stub->WatchJob(&ctx, req);
    v1::JobEvent ev;
    std::vector<int64_t> seqs;
    while (reader->Read(&ev)) seqs.push_back(ev.seq());
    EXPECT_TRUE(reader->Finish().ok());
    EXPECT_EQ(seqs, (std::vector<int64_t>{2, 3}));
  }
}

std::vector<v1::ImageBatch> Generate(v1::GanService::Stub* stub, const v1::GenerateSamplesRequest& req,
                                     grpc::Status* status) {
  grpc::ClientContext ctx;
  auto reader = stub->GenerateSamples(&ctx, req);
  std::vector<v1::ImageBatch> out;
  v1::ImageBatch b;
  while (reader->Read(&b)) out.push_back(b);
  *status = reader->Finish();
  return out;
}

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

struct BadCase {
  const char* name;
  std::function<void(v1::GenerateSamplesRequest*)> edit;
  grpc::StatusCode code;
  const char* message_part;
};

// The request contract of GenerateSamples: each bad field gets its code and a message
// naming it, and the server keeps serving.
TEST_F(GanServiceTest, GenerateRejectsBadRequests) {
  const BadCase cases[] = {
      {"no model", [](auto* r) { r->clear_model(); }, grpc::StatusCode::INVALID_ARGUMENT, "model is required"},
      {"bad model name", [](auto* r) { r->set_model("../etc"); }, grpc::StatusCode::INVALID_ARGUMENT, "valid model name"},
      {"unknown model", [](auto* r) { r->set_model("nope"); }, grpc::StatusCode::NOT_FOUND, "no model named 'nope'"},
      {"broken model", [](auto* r) { r->set_model("broken"); }, grpc::StatusCode::FAILED_PRECONDITION, "failed to load"},
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
      {"mix count", [](auto* r) { r->add_mix_seeds(1); r->add_mix_seeds(2); r->set_inject_index(2); },
       grpc::StatusCode::INVALID_ARGUMENT, "one seed per image"},
      {"inject range", [](auto* r) { r->add_mix_seeds(1); r->set_inject_index(8); },
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

std::vector<v1::JobEvent> Adapt(v1::GanService::Stub* stub, const v1::AdaptDomainRequest& req, grpc::Status* st,
                                std::function<void(const v1::JobEvent&)> on_event = nullptr) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  auto reader = stub->AdaptDomain(&ctx, req);
  std::vector<v1::JobEvent> out;
  v1::JobEvent e;
  while (reader->Read(&e)) {
    out.push_back(e);
    if (on_event) on_event(e);
  }
  *st = reader->Finish();
  return out;
}

v1::AdaptDomainRequest GoodAdapt() {
  v1::AdaptDomainRequest r;
  r.set_model("tiny");
  r.set_source_text("photo");
  r.set_target_text("sketch");
  r.set_iterations(3);
  r.set_preview_every(2);
  return r;
}

// The AdaptDomain request contract: each bad field gets its code and a message naming it.
TEST_F(GanServiceTest, AdaptRejectsBadRequests) {
  struct Case {
    const char* name;
    std::function<void(v1::AdaptDomainRequest*)> edit;
    grpc::StatusCode code;
    const char* part;
  };
  const Case cases[] = {
      {"no model", [](auto* r) { r->clear_model(); }, grpc::StatusCode::INVALID_ARGUMENT, "model is required"},
      {"unknown model", [](auto* r) { r->set_model("nope"); }, grpc::StatusCode::NOT_FOUND, "no model named"},
      {"clip as base", [](auto* r) { r->set_model("clip-demo"); }, grpc::StatusCode::FAILED_PRECONDITION,
       "adapt from a base generator"},
      {"no target", [](auto* r) { r->clear_target_text(); }, grpc::StatusCode::INVALID_ARGUMENT, "target_text"},
      {"long target", [](auto* r) { r->set_target_text(std::string(301, 'a')); }, grpc::StatusCode::INVALID_ARGUMENT,
       "limit is 300"},
      {"same texts", [](auto* r) { r->set_target_text("photo"); }, grpc::StatusCode::INVALID_ARGUMENT, "the same"},
      {"iterations", [](auto* r) { r->set_iterations(5001); }, grpc::StatusCode::INVALID_ARGUMENT, "iterations"},
      {"batch", [](auto* r) { r->set_batch_size(17); }, grpc::StatusCode::INVALID_ARGUMENT, "batch_size"},
      {"lr", [](auto* r) { r->set_lr_scale(-1); }, grpc::StatusCode::INVALID_ARGUMENT, "lr_scale"},
      {"mixing", [](auto* r) { r->set_mixing(2); }, grpc::StatusCode::INVALID_ARGUMENT, "mixing"},
      {"layer k", [](auto* r) { r->set_auto_layer_k(99); }, grpc::StatusCode::INVALID_ARGUMENT, "auto_layer_k"},
      {"unknown clip", [](auto* r) { r->add_clip_models()->set_name("nope"); }, grpc::StatusCode::NOT_FOUND,
       "no model named 'nope'"},
      {"clip weight",
       [](auto* r) {
         auto* c = r->add_clip_models();
         c->set_name("clip-demo");
         c->set_weight(11);
       },
       grpc::StatusCode::INVALID_ARGUMENT, "weight"},
      {"corrupt image", [](auto* r) { r->add_target_images("x"); }, grpc::StatusCode::INVALID_ARGUMENT,
       "target_images[0]"},
      {"images with selection and no text",
       [](auto* r) {
         r->clear_target_text();
         r->add_target_images(std::string("\x89PNG\r\n\x1a\n", 8));
       },
       grpc::StatusCode::INVALID_ARGUMENT, "target_images[0]"},
      {"output name", [](auto* r) { r->set_output_name("Bad Name"); }, grpc::StatusCode::INVALID_ARGUMENT,
       "output_name"},
      {"output exists", [](auto* r) { r->set_output_name("tiny"); }, grpc::StatusCode::ALREADY_EXISTS, "exists"},
      {"request id", [](auto* r) { r->set_request_id("has space"); }, grpc::StatusCode::INVALID_ARGUMENT,
       "request_id"},
  };
  auto stub = server_->Stub();
  for (const Case& c : cases) {
    v1::AdaptDomainRequest r = GoodAdapt();
    c.edit(&r);
    grpc::Status st;
    auto events = Adapt(stub.get(), r, &st);
    EXPECT_EQ(st.error_code(), c.code) << c.name << ": " << st.error_message();
    EXPECT_NE(st.error_message().find(c.part), std::string::npos) << c.name << ": " << st.error_message();
    EXPECT_TRUE(events.empty()) << c.name;
  }
}

TEST_F(GanServiceTest, AdaptTrainsStreamsAndServesTheResult) {
  auto stub = server_->Stub();
  v1::AdaptDomainRequest r = GoodAdapt();
  r.set_request_id("adapt-once");
  r.set_output_name("tiny-sketch");
  grpc::Status st;
  auto events = Adapt(stub.get(), r, &st);
  ASSERT_TRUE(st.ok()) << st.error_message();
  ASSERT_FALSE(events.empty());
  int progress = 0, previews = 0;
  for (size_t i = 0; i < events.size(); ++i) {
    EXPECT_EQ(events[i].seq(), static_cast<int64_t>(i + 1));
    progress += events[i].has_progress();
    previews += events[i].has_preview();
  }
  EXPECT_EQ(progress, 3);
  EXPECT_EQ(previews, 2);  // steps 2 and 3 (the last)
  EXPECT_EQ(events.back().job().state(), v1::JOB_STATE_SUCCEEDED);
  EXPECT_EQ(events.back().job().result(), "tiny-sketch");
  // Same request_id, same payload: the same job, replayed; another payload: ALREADY_EXISTS.
  auto again = Adapt(stub.get(), r, &st);
  ASSERT_TRUE(st.ok());
  ASSERT_FALSE(again.empty());
  EXPECT_EQ(again.back().job().id(), events.back().job().id());
  r.set_target_text("watercolor");
  Adapt(stub.get(), r, &st);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::ALREADY_EXISTS);
  // The new model renders through GenerateSamples.
  v1::GenerateSamplesRequest g;
  g.set_model("tiny-sketch");
  g.add_seeds(1);
  Generate(stub.get(), g, &st);
  EXPECT_TRUE(st.ok()) << st.error_message();
  grpc::ClientContext ctx;
  v1::GetModelRequest gm;
  gm.set_name("tiny-sketch");
  v1::Model m;
  ASSERT_TRUE(stub->GetModel(&ctx, gm, &m).ok());
  EXPECT_EQ(m.kind(), v1::MODEL_KIND_ADAPTED_GENERATOR);
  EXPECT_EQ(m.base_model(), "tiny");
  EXPECT_EQ(m.target_text(), "sketch");
}

TEST_F(GanServiceTest, CancelStopsARunningAdaptation) {
  auto stub = server_->Stub();
  v1::AdaptDomainRequest r = GoodAdapt();
  r.set_iterations(5000);
  r.set_output_name("never");
  std::string id;
  std::thread canceller;
  grpc::Status st;
  auto events = Adapt(stub.get(), r, &st, [&](const v1::JobEvent& e) {
    if (e.has_progress() && e.progress().step() == 2 && id.empty()) {
      id = e.job().id();
      canceller = std::thread([&stub, id] {
        grpc::ClientContext ctx;
        v1::CancelJobRequest c;
        c.set_id(id);
        v1::Job j;
        EXPECT_TRUE(stub->CancelJob(&ctx, c, &j).ok());
      });
    }
  });
  if (canceller.joinable()) canceller.join();
  ASSERT_TRUE(st.ok()) << st.error_message();
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back().job().state(), v1::JOB_STATE_CANCELLED);
  EXPECT_LT(events.back().job().step(), 10);
}

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

std::vector<v1::ImageBatch> EditCall(v1::GanService::Stub* stub, const v1::EditRequest& req, grpc::Status* st) {
  grpc::ClientContext ctx;
  auto reader = stub->Edit(&ctx, req);
  std::vector<v1::ImageBatch> out;
  v1::ImageBatch b;
  while (reader->Read(&b)) out.push_back(b);
  *st = reader->Finish();
  return out;
}

TEST_F(GanServiceTest, DirectionEditsStartAtTheInputAndMoveWithStrength) {
  auto stub = server_->Stub();
  v1::EditRequest e;
  e.set_model("tiny");
  e.add_seeds(7);
  e.set_truncation(0.5f);
  e.set_has_truncation(true);
  e.set_format(v1::IMAGE_FORMAT_RAW_FLOAT);
  auto* d = e.mutable_direction();
  d->mutable_direction()->set_space(v1::LATENT_SPACE_S);
  d->mutable_direction()->mutable_values()->add_shape(1);
  // s_dim of the tiny model: from GetModel.
  grpc::ClientContext mc;
  v1::GetModelRequest gm;
  gm.set_name("tiny");
  v1::Model m;
  ASSERT_TRUE(stub->GetModel(&mc, gm, &m).ok());
  d->mutable_direction()->mutable_values()->add_shape(m.s_dim());
  for (int i = 0; i < m.s_dim(); ++i) d->mutable_direction()->mutable_values()->add_data(i == 3 ? 1.0f : 0.0f);
  d->add_strengths(0.0f);
  grpc::Status st;
  auto zero = EditCall(stub.get(), e, &st);
  ASSERT_TRUE(st.ok()) << st.error_message();
  // Strength 0 reproduces GenerateSamples exactly (both render a batch of one image).
  v1::GenerateSamplesRequest g;
  g.set_model("tiny");
  g.add_seeds(7);
  g.set_truncation(0.5f);
  g.set_has_truncation(true);
  g.set_format(v1::IMAGE_FORMAT_RAW_FLOAT);
  auto gen = Generate(stub.get(), g, &st);
  ASSERT_TRUE(st.ok());
  const auto& ref = gen[0].images(0).raw().data();
  ASSERT_EQ(zero[0].images(0).raw().data_size(), ref.size());
  for (int i = 0; i < ref.size(); ++i) ASSERT_EQ(zero[0].images(0).raw().data(i), ref[i]) << i;
  // A sweep: larger strengths move the image further from the input. (Rendered as one
  // batch of three, so strength 0 matches only up to float rounding here.)
  for (float a : {2.0f, 4.0f}) d->add_strengths(a);
  auto edits = EditCall(stub.get(), e, &st);
  ASSERT_TRUE(st.ok()) << st.error_message();
  std::vector<v1::Image> images;
  for (const auto& b : edits) images.insert(images.end(), b.images().begin(), b.images().end());
  ASSERT_EQ(images.size(), 3u);
  auto dist = [&](const v1::Image& im) {
    double sum = 0;
    for (int i = 0; i < ref.size(); ++i) sum += std::pow(im.raw().data(i) - ref[i], 2);
    return sum;
  };
  EXPECT_LT(dist(images[0]), 1e-8);
  EXPECT_GT(dist(images[1]), 1e-4);
  EXPECT_GT(dist(images[2]), dist(images[1]));

  // Contract: wrong sizes, unknown render model, unsupported methods.
  v1::EditRequest bad = e;
  bad.mutable_direction()->mutable_direction()->mutable_values()->set_shape(1, 5);
  bad.mutable_direction()->mutable_direction()->mutable_values()->mutable_data()->Truncate(5);
  EditCall(stub.get(), bad, &st);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << st.error_message();
  bad = e;
  bad.set_render_model("nope");
  EditCall(stub.get(), bad, &st);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND);
  bad = e;
  bad.clear_direction();
  EditCall(stub.get(), bad, &st);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  bad = e;
  bad.mutable_direction()->set_strengths(0, NAN);
  EditCall(stub.get(), bad, &st);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(GanServiceTest, LatentOptimizationStreamsProgressThenEachResult) {
  auto stub = server_->Stub();
  v1::EditRequest req;
  req.set_model("tiny");
  req.add_seeds(5);
  req.add_seeds(6);
  req.set_return_latents(true);
  auto* l = req.mutable_latent_optimization();
  l->set_target_text("a smiling face");
  l->set_steps(6);
  l->set_clip_model("clip-demo");
  grpc::Status st;
  auto batches = EditCall(stub.get(), req, &st);
  ASSERT_TRUE(st.ok()) << st.error_message();
  int progress_only = 0;
  std::vector<v1::Image> results;
  for (const auto& b : batches) {
    ASSERT_TRUE(b.has_progress());
    EXPECT_EQ(b.progress().total_steps(), 6);
    EXPECT_GT(b.progress().losses().at("clip"), 0.0f);
    if (b.images_size() == 0) {
      ++progress_only;
      continue;
    }
    EXPECT_EQ(b.progress().step(), 6);  // results come after the last step
    results.insert(results.end(), b.images().begin(), b.images().end());
  }
  EXPECT_EQ(progress_only, 2 * 5);  // every step but the last, per input
  ASSERT_EQ(results.size(), 2u);
  EXPECT_EQ(results[0].index(), 0);
  EXPECT_EQ(results[1].index(), 1);
  EXPECT_EQ(results[1].seed(), 6);
  EXPECT_EQ(results[0].latent().values().shape_size(), 3);  // the optimised w+
  EXPECT_FALSE(results[0].data().empty());

  v1::EditRequest bad = req;
  bad.mutable_latent_optimization()->set_id_lambda(0.1f);
  EditCall(stub.get(), bad, &st);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << st.error_message();
  EXPECT_NE(st.error_message().find("ArcFace"), std::string::npos) << st.error_message();
  bad = req;
  bad.mutable_latent_optimization()->set_steps(5000);
  EditCall(stub.get(), bad, &st);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  bad = req;
  for (int s = 0; s < 5; ++s) bad.add_seeds(10 + s);
  EditCall(stub.get(), bad, &st);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << st.error_message();
}

std::vector<v1::JobEvent> PrepareCall(v1::GanService::Stub* stub, const v1::PrepareGlobalDirectionsRequest& req,
                                      grpc::Status* st) {
  grpc::ClientContext ctx;
  auto reader = stub->PrepareGlobalDirections(&ctx, req);
  std::vector<v1::JobEvent> out;
  v1::JobEvent e;
  while (reader->Read(&e)) out.push_back(e);
  *st = reader->Finish();
  return out;
}

TEST_F(GanServiceTest, GlobalDirectionEditsAfterPreparingStatistics) {
  auto stub = server_->Stub();
  v1::EditRequest e;
  e.set_model("tiny");
  e.add_seeds(11);
  e.add_seeds(12);
  e.set_format(v1::IMAGE_FORMAT_RAW_FLOAT);
  auto* g = e.mutable_global_direction();
  g->set_neutral_text("a face");
  g->set_target_text("a smiling face");
  g->set_beta(0.001f);
  for (float a : {0.0f, 2.0f, 4.0f}) g->add_alphas(a);
  grpc::Status st;
  // Before the statistics exist: a precondition naming the RPC that makes them.
  EditCall(stub.get(), e, &st);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << st.error_message();
  EXPECT_NE(st.error_message().find("PrepareGlobalDirections"), std::string::npos) << st.error_message();

  v1::PrepareGlobalDirectionsRequest prep;
  prep.set_model("tiny");
  prep.set_num_samples(100);
  prep.set_num_images(2);
  prep.set_batch_size(4);
  auto events = PrepareCall(stub.get(), prep, &st);
  ASSERT_TRUE(st.ok()) << st.error_message();
  ASSERT_FALSE(events.empty());
  const v1::Job& job = events.back().job();
  ASSERT_EQ(job.state(), v1::JOB_STATE_SUCCEEDED) << job.error_message();
  EXPECT_EQ(job.kind(), v1::JOB_KIND_EDIT_STATS);
  EXPECT_EQ(job.step(), job.total_steps());
  EXPECT_EQ(events.front().job().total_steps(), job.total_steps());  // known from the start
  EXPECT_EQ(job.result(), "tiny/clip-demo");
  // Once made, asking again without recompute says they exist.
  PrepareCall(stub.get(), prep, &st);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::ALREADY_EXISTS) << st.error_message();

  auto batches = EditCall(stub.get(), e, &st);
  ASSERT_TRUE(st.ok()) << st.error_message();
  std::vector<v1::Image> images;
  for (const auto& b : batches) {
    EXPECT_GT(b.channels_moved(), 0);
    images.insert(images.end(), b.images().begin(), b.images().end());
  }
  ASSERT_EQ(images.size(), 6u);  // 2 seeds x 3 alphas, seed-major
  // Alpha 0 is the unedited image (up to batch rounding); larger alphas move further.
  v1::GenerateSamplesRequest gr;
  gr.set_model("tiny");
  gr.add_seeds(11);
  gr.set_format(v1::IMAGE_FORMAT_RAW_FLOAT);
  auto ref = Generate(stub.get(), gr, &st);
  ASSERT_TRUE(st.ok());
  const auto& r = ref[0].images(0).raw().data();
  auto dist = [&](const v1::Image& im) {
    double sum = 0;
    for (int i = 0; i < r.size(); ++i) sum += std::pow(im.raw().data(i) - r[i], 2);
    return sum;
  };
  EXPECT_LT(dist(images[0]), 1e-8);
  EXPECT_GT(dist(images[1]), 1e-6);
  EXPECT_GT(dist(images[2]), dist(images[1]));
  EXPECT_EQ(images[3].seed(), 12);

  // A beta above every relevance keeps nothing: said with the largest relevance.
  v1::EditRequest strict = e;
  strict.mutable_global_direction()->set_beta(0.999f);
  EditCall(stub.get(), strict, &st);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << st.error_message();
  EXPECT_NE(st.error_message().find("largest relevance"), std::string::npos) << st.error_message();
  // Field limits.
  v1::EditRequest bad = e;
  bad.mutable_global_direction()->set_neutral_text("");
  EditCall(stub.get(), bad, &st);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  bad = e;
  bad.mutable_global_direction()->set_alphas(0, 50.0f);
  EditCall(stub.get(), bad, &st);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  bad = e;
  bad.mutable_global_direction()->set_clip_model("nope");
  EditCall(stub.get(), bad, &st);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND) << st.error_message();
  v1::PrepareGlobalDirectionsRequest bad_prep = prep;
  bad_prep.set_batch_size(3);
  PrepareCall(stub.get(), bad_prep, &st);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  bad_prep = prep;
  bad_prep.set_model("nope");
  PrepareCall(stub.get(), bad_prep, &st);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(GanServiceTest, MetricsScrapeCountsRpcs) {
  auto stub = server_->Stub();
  grpc::ClientContext ctx;
  v1::ListJobsResponse resp;
  ASSERT_TRUE(stub->ListJobs(&ctx, v1::ListJobsRequest(), &resp).ok());
  int status = 0;
  std::string body = HttpGet(server_->metrics_port(), "/metrics", &status);
  EXPECT_EQ(status, 200);
  EXPECT_NE(body.find("ganserve_build_info"), std::string::npos);
  EXPECT_NE(body.find("ganserve_rpc_requests_total{code=\"OK\",method=\"ListJobs\"}"), std::string::npos) << body;
  EXPECT_NE(body.find("ganserve_rpc_duration_seconds_bucket{method=\"ListJobs\""), std::string::npos);
  EXPECT_NE(body.find("ganserve_models{state=\"failed\"} 1"), std::string::npos);
  HttpGet(server_->metrics_port(), "/nothing", &status);
  EXPECT_EQ(status, 404);
}

TEST(GanServerLifecycleTest, ShutdownTurnsHealthNotServingAndRefusesWork) {
  TestServer s(Root("lifecycle"));
  auto health = grpc::health::v1::Health::NewStub(s.channel());
  s.server().Shutdown(absl::Seconds(1));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
  grpc::health::v1::HealthCheckRequest req;
  grpc::health::v1::HealthCheckResponse resp;
  auto st = health->Check(&ctx, req, &resp);
  // The server is gone: either the call fails or it reports NOT_SERVING.
  EXPECT_TRUE(!st.ok() || resp.status() != grpc::health::v1::HealthCheckResponse::SERVING);
}

}  // namespace
}  // namespace ganserve::testing
