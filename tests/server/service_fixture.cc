#include "tests/server/service_fixture.h"

#include <unistd.h>

#include "core/jobs/sqlite_job_store.h"
#include "core/util/sha256.h"

namespace ganserve::testing {

std::string Root(const char* name) {
  return ::testing::TempDir() + "/gan_service_test_" + name + "_" + std::to_string(::getpid());
}

void GanServiceTest::SetUpTestSuite() {
  TestServerOptions opt;
  opt.prepare_data = [](const std::string& data) {
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
      ASSERT_TRUE((*store)->AppendEvent(done, "progress", ev.SerializeAsString(), 1000 + i).ok());
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
  };
  opt.max_interactive_queue = 256;
  opt.max_images_per_request = 64;
  server_ = new TestServer(Root("shared"), opt);
}
void GanServiceTest::SetUp() {
  // A failure inside SetUpTestSuite would otherwise show as a skip.
  ASSERT_FALSE(::testing::Test::HasFailure());
  ASSERT_NE(server_, nullptr);
  ASSERT_EQ(server_->metrics_port() > 0, true) << "the test server did not start";
  ASSERT_TRUE(setup_ok_) << "seeding the job store failed; see the messages above";
}
void GanServiceTest::TearDownTestSuite() {
  delete server_;
  server_ = nullptr;
}
TestServer* GanServiceTest::server_ = nullptr;
bool GanServiceTest::setup_ok_ = false;

std::vector<v1::ImageBatch> Generate(v1::GanService::Stub* stub, const v1::GenerateSamplesRequest& req,
                                     grpc::Status* status) {
  grpc::ClientContext ctx;
  return ReadAll<v1::ImageBatch>(stub->GenerateSamples(&ctx, req), status);
}

std::vector<v1::ImageBatch> EditCall(v1::GanService::Stub* stub, const v1::EditRequest& req, grpc::Status* st) {
  grpc::ClientContext ctx;
  return ReadAll<v1::ImageBatch>(stub->Edit(&ctx, req), st);
}

grpc::Status Import(v1::GanService::Stub* stub, const Upload& u, v1::Model* m) {
  grpc::ClientContext ctx;
  auto w = stub->ImportModel(&ctx, m);
  bool open = true;
  for (size_t i = 0; i < u.files.size() && open; ++i) {
    const UpFile& f = u.files[i];
    const size_t chunk = f.bytes.size() > (size_t{1} << 20) ? size_t{1} << 20 : 4096;
    for (size_t off = 0; off == 0 || off < f.bytes.size(); off += chunk) {
      v1::ImportModelChunk c;
      if (off == 0) {
        if (i == 0) {
          c.set_name(u.name);
          c.set_kind(static_cast<v1::ModelKind>(u.kind));
          c.set_base_model(u.base_model);
        }
        c.set_filename(f.filename);
        c.set_total_bytes(f.total >= 0 ? f.total : static_cast<int64_t>(f.bytes.size()));
        c.set_sha256(f.sha256.empty() ? core::Sha256Hex(f.bytes) : f.sha256);
      }
      c.set_data(f.bytes.data() + off, std::min(chunk, f.bytes.size() - off));
      if (!w->Write(c)) {
        open = false;
        break;
      }
    }
  }
  w->WritesDone();
  return w->Finish();
}

}  // namespace ganserve::testing
