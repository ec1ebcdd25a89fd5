// The real server, in-process on 127.0.0.1:0: health, reflection, metrics scrapes and
// shutdown.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
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

// The retention pass at start-up: a job that finished long ago keeps its row and its
// terminal event; its earlier events (and their previews) are gone, WatchJob from the
// start says so, its training snapshots and unpinned inversions are deleted (a recent
// job's snapshots and a pinned inversion stay), and the metrics count what was deleted.
TEST(GanServerRetentionTest, OldFinishedJobsKeepOnlyTheirTerminalEvent) {
  TestServerOptions opt;
  opt.prepare_data = [](const std::string& data) {
    auto store = core::SqliteJobStore::Open(data + "/jobs.db");
    ASSERT_TRUE(store.ok());
    core::JobRecord old_job;
    old_job.id = "job-old";
    old_job.kind = core::JobKind::kAdapt;
    old_job.model = "tiny";
    old_job.create_time_ms = 1000;
    ASSERT_TRUE((*store)->CreateJob(old_job).ok());
    for (int i = 1; i <= 3; ++i) {
      if (i == 3) {
        old_job.state = core::JobState::kSucceeded;
        old_job.end_time_ms = 5000;  // 1970: far past the default 168 h
      }
      v1::JobEvent ev;
      ev.set_seq(i);
      ev.mutable_job()->set_id(old_job.id);
      ASSERT_TRUE((*store)->AppendEvent(old_job, "progress", ev.SerializeAsString(), 1000 + i).ok());
    }
    core::JobRecord recent = old_job;
    recent.id = "job-recent";
    recent.state = core::JobState::kSucceeded;
    recent.end_time_ms = absl::ToUnixMillis(absl::Now());
    ASSERT_TRUE((*store)->CreateJob(recent).ok());
    // Two old inversion jobs: the unpinned result expires, the pinned one stays.
    std::filesystem::create_directories(data + "/inversions");
    for (const char* hex : {"00000000000000aa", "00000000000000bb"}) {
      core::JobRecord inv = old_job;
      inv.id = std::string("job-") + hex;
      inv.kind = core::JobKind::kInvert;
      inv.state = core::JobState::kSucceeded;
      ASSERT_TRUE((*store)->CreateJob(inv).ok());
      std::ofstream(data + "/inversions/inv-" + hex + ".safetensors") << "latent";
    }
    std::ofstream(data + "/inversions/inv-00000000000000bb.pinned") << "kept";
  };
  opt.prepare_repo = [](const std::string& repo) {
    for (const char* job : {"job-old", "job-recent"}) {
      const std::string dir = repo + "/.snapshots/" + job + "/2";
      std::filesystem::create_directories(dir);
      std::filesystem::copy_file(repo + "/tiny/g.safetensors", dir + "/delta.safetensors");
      std::ofstream(dir + "/manifest.json") << R"({"kind": "adapted_generator", "base_model": "tiny", )"
                                            << R"("delta": "delta.safetensors", "snapshot_of": ")" << job
                                            << R"(-out", "step": 2, "job": ")" << job << R"("})";
    }
  };
  TestServer server(Root("retention"), opt);
  std::string body;
  for (int i = 0; i < 100; ++i) {  // the pass runs on its own thread at start-up
    body = HttpGet(server.metrics_port(), "/metrics");
    if (body.find("ganserve_retention_deleted_total{what=\"events\"} 2") != std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_NE(body.find("ganserve_retention_deleted_total{what=\"events\"} 2"), std::string::npos) << body;
  EXPECT_NE(body.find("ganserve_retention_deleted_total{what=\"snapshots\"} 1"), std::string::npos) << body;
  EXPECT_NE(body.find("ganserve_retention_deleted_total{what=\"inversions\"} 1"), std::string::npos) << body;
  EXPECT_FALSE(std::filesystem::exists(server.data() + "/inversions/inv-00000000000000aa.safetensors"));
  EXPECT_TRUE(std::filesystem::exists(server.data() + "/inversions/inv-00000000000000bb.safetensors"));
  EXPECT_FALSE(std::filesystem::exists(server.repo() + "/.snapshots/job-old"));
  EXPECT_TRUE(std::filesystem::exists(server.repo() + "/.snapshots/job-recent/2/manifest.json"));
  {
    auto stub = server.Stub();
    for (const char* name : {"job-recent-out@2", "job-old-out@2"}) {
      grpc::ClientContext ctx;
      v1::GetModelRequest req;
      req.set_name(name);
      v1::Model m;
      const grpc::Status gs = stub->GetModel(&ctx, req, &m);
      EXPECT_EQ(gs.error_code(),
                name == std::string("job-old-out@2") ? grpc::StatusCode::NOT_FOUND : grpc::StatusCode::OK)
          << name << ": " << gs.error_message();
    }
  }
  auto stub = server.Stub();
  grpc::ClientContext ctx;
  v1::GetJobRequest get;
  get.set_id("job-old");
  v1::Job job;
  ASSERT_TRUE(stub->GetJob(&ctx, get, &job).ok());
  EXPECT_EQ(job.state(), v1::JOB_STATE_SUCCEEDED);
  grpc::ClientContext wctx;
  v1::WatchJobRequest watch;
  watch.set_id("job-old");
  grpc::Status st;
  auto events = ReadAll<v1::JobEvent>(stub->WatchJob(&wctx, watch), &st);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::OUT_OF_RANGE) << st.error_message();
  EXPECT_NE(st.error_message().find("discarded"), std::string::npos) << st.error_message();
  grpc::ClientContext w2;
  watch.set_after_seq(2);
  events = ReadAll<v1::JobEvent>(stub->WatchJob(&w2, watch), &st);
  EXPECT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(events.size(), 1u);
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
