// Faults on disk: with writes failing (ENOSPC, EIO) at each place the server persists
// something, the job ends FAILED with a message naming the cause, nothing half-written
// is visible to ListModels, GenerateSamples or Edit, the server keeps serving, and once
// the fault clears the same work succeeds. Faults come from tests/faults/fs_fault_shim.c
// (LD_PRELOAD, set by CMake), driven through its rules file.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "core/util/file_util.h"
#include "tests/server/service_fixture.h"

namespace ganserve::testing {
namespace {

// Set before main starts any thread: the shim reads it on every write.
const std::string& RulesPath() {
  static const std::string path = [] {
    std::string p = ::testing::TempDir() + "/disk_fault_rules_" + std::to_string(::getpid());
    setenv("GANSERVE_FAULTS", p.c_str(), 1);
    return p;
  }();
  return path;
}
const bool kRulesSet = !RulesPath().empty();

void SetFault(const std::string& rule) {
  std::ofstream(RulesPath(), std::ios::trunc) << rule << "\n";
  std::filesystem::remove(RulesPath() + ".fired");
}
void ClearFaults() { std::ofstream(RulesPath(), std::ios::trunc); }
std::string Fired() {
  std::ifstream in(RulesPath() + ".fired");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The last job state of a job stream.
template <typename Reader>
v1::Job LastJob(Reader reader, grpc::Status* st) {
  auto events = ReadAll<v1::JobEvent>(std::move(reader), st);
  return events.empty() ? v1::Job() : events.back().job();
}

v1::Job Adapt(v1::GanService::Stub* stub, const std::string& output, grpc::Status* st) {
  v1::AdaptDomainRequest r;
  r.set_model("tiny");
  r.set_source_text("photo");
  r.set_target_text("sketch");
  r.set_iterations(4);
  r.set_output_name(output);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  return LastJob(stub->AdaptDomain(&ctx, r), st);
}

// GenerateSamples of seed 1, or of an inversion.
grpc::Status Render(v1::GanService::Stub* stub, const std::string& model, const std::string& inversion = "") {
  v1::GenerateSamplesRequest r;
  r.set_model(model);
  if (inversion.empty()) {
    r.add_seeds(1);
  } else {
    r.set_inversion_id(inversion);
  }
  grpc::Status st;
  Generate(stub, r, &st);
  return st;
}

bool Listed(v1::GanService::Stub* stub, const std::string& name) {
  grpc::ClientContext ctx;
  v1::ListModelsRequest r;
  v1::ListModelsResponse resp;
  EXPECT_TRUE(stub->ListModels(&ctx, r, &resp).ok());
  for (const auto& m : resp.models()) {
    if (m.name() == name) return true;
  }
  return false;
}

// No temporary or half-published entries left in the repository.
void ExpectNoLeftovers(const TestServer& server) {
  for (const auto& e : std::filesystem::directory_iterator(server.repo())) {
    const std::string n = e.path().filename().string();
    EXPECT_FALSE(n.rfind(".tmp-", 0) == 0) << "left behind: " << e.path();
  }
}

class DiskFaultTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(kRulesSet);
    ClearFaults();
    // The shim must be loaded, or every test here would pass without a fault.
    SetFault("EIO write disk_fault_probe");
    const std::string probe = ::testing::TempDir() + "/disk_fault_probe";
    absl::Status st = core::WriteFileAtomic(probe, "x");
    ClearFaults();
    ASSERT_FALSE(st.ok()) << "tests/faults/fs_fault_shim.c is not preloaded (LD_PRELOAD)";
  }
  void TearDown() override { ClearFaults(); }
};

TEST_F(DiskFaultTest, TrainingCheckpoint) {
  TestServerOptions opt;
  opt.checkpoint_every = 2;
  TestServer server(::testing::TempDir() + "/disk_fault_ckpt_" + std::to_string(::getpid()), opt);
  auto stub = server.Stub();
  SetFault("ENOSPC write /checkpoints/");
  grpc::Status st;
  v1::Job job = Adapt(stub.get(), "ck", &st);
  EXPECT_NE(Fired().find("/checkpoints/"), std::string::npos) << "the fault was not hit";
  EXPECT_EQ(job.state(), v1::JOB_STATE_FAILED);
  EXPECT_NE(job.error_message().find("checkpoint"), std::string::npos) << job.error_message();
  EXPECT_NE(job.error_message().find("No space left on device"), std::string::npos) << job.error_message();
  EXPECT_FALSE(Listed(stub.get(), "ck"));
  EXPECT_TRUE(Render(stub.get(), "tiny").ok());
  ClearFaults();
  job = Adapt(stub.get(), "ck", &st);
  EXPECT_EQ(job.state(), v1::JOB_STATE_SUCCEEDED) << job.error_message();
  EXPECT_TRUE(Listed(stub.get(), "ck"));
  EXPECT_TRUE(Render(stub.get(), "ck").ok());
}

TEST_F(DiskFaultTest, AdaptedModelPublish) {
  TestServer server(::testing::TempDir() + "/disk_fault_publish_" + std::to_string(::getpid()));
  auto stub = server.Stub();
  // The delta is written first; the manifest fails: nothing of the model may show.
  SetFault("ENOSPC write manifest.json");
  grpc::Status st;
  v1::Job job = Adapt(stub.get(), "pub", &st);
  EXPECT_NE(Fired().find("manifest.json"), std::string::npos) << "the fault was not hit";
  EXPECT_EQ(job.state(), v1::JOB_STATE_FAILED);
  EXPECT_NE(job.error_message().find("No space left on device"), std::string::npos) << job.error_message();
  EXPECT_FALSE(Listed(stub.get(), "pub"));
  EXPECT_EQ(Render(stub.get(), "pub").error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_FALSE(std::filesystem::exists(server.repo() + "/pub"));
  ExpectNoLeftovers(server);
  EXPECT_TRUE(Render(stub.get(), "tiny").ok());
  ClearFaults();
  job = Adapt(stub.get(), "pub", &st);
  EXPECT_EQ(job.state(), v1::JOB_STATE_SUCCEEDED) << job.error_message();
  EXPECT_TRUE(Render(stub.get(), "pub").ok());
}

TEST_F(DiskFaultTest, InversionStore) {
  TestServer server(::testing::TempDir() + "/disk_fault_invert_" + std::to_string(::getpid()));
  auto stub = server.Stub();
  // A target image: the tiny generator's own seed 3.
  v1::GenerateSamplesRequest g;
  g.set_model("tiny");
  g.add_seeds(3);
  grpc::Status gst;
  auto batches = Generate(stub.get(), g, &gst);
  ASSERT_TRUE(gst.ok() && !batches.empty()) << gst.error_message();
  const std::string png = batches[0].images(0).data();
  auto invert = [&](grpc::Status* st) {
    v1::InvertImageRequest r;
    r.set_model("tiny");
    r.set_image(png);
    r.set_steps(5);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    return LastJob(stub->InvertImage(&ctx, r), st);
  };
  SetFault("EIO write /inversions/");
  grpc::Status st;
  v1::Job job = invert(&st);
  EXPECT_NE(Fired().find("/inversions/"), std::string::npos) << "the fault was not hit";
  EXPECT_EQ(job.state(), v1::JOB_STATE_FAILED);
  EXPECT_NE(job.error_message().find("Input/output error"), std::string::npos) << job.error_message();
  EXPECT_TRUE(job.result().empty());
  // The id the inversion would have had ("inv-" + the job's suffix) is unknown.
  grpc::Status missing = Render(stub.get(), "tiny", "inv-" + job.id().substr(4));
  EXPECT_EQ(missing.error_code(), grpc::StatusCode::NOT_FOUND) << missing.error_message();
  EXPECT_TRUE(std::filesystem::is_empty(server.data() + "/inversions"));
  EXPECT_TRUE(Render(stub.get(), "tiny").ok());
  ClearFaults();
  job = invert(&st);
  EXPECT_EQ(job.state(), v1::JOB_STATE_SUCCEEDED) << job.error_message();
  grpc::Status served = Render(stub.get(), "tiny", job.result());
  EXPECT_TRUE(served.ok()) << served.error_message();
}

TEST_F(DiskFaultTest, GlobalDirectionStatistics) {
  TestServer server(::testing::TempDir() + "/disk_fault_stats_" + std::to_string(::getpid()));
  auto stub = server.Stub();
  auto prepare = [&](grpc::Status* st) {
    v1::PrepareGlobalDirectionsRequest r;
    r.set_model("tiny");
    r.set_num_samples(100);
    r.set_num_images(2);
    r.set_batch_size(4);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(120));
    return LastJob(stub->PrepareGlobalDirections(&ctx, r), st);
  };
  SetFault("ENOSPC write /global_directions/");
  grpc::Status st;
  v1::Job job = prepare(&st);
  EXPECT_NE(Fired().find("/global_directions/"), std::string::npos) << "the fault was not hit";
  EXPECT_EQ(job.state(), v1::JOB_STATE_FAILED);
  EXPECT_NE(job.error_message().find("No space left on device"), std::string::npos) << job.error_message();
  // No statistics: a global-direction edit is refused as before any preparation.
  v1::EditRequest e;
  e.set_model("tiny");
  e.add_seeds(1);
  auto* gd = e.mutable_global_direction();
  gd->set_neutral_text("a face");
  gd->set_target_text("a smiling face");
  gd->add_alphas(1);
  gd->set_clip_model("clip-demo");
  EditCall(stub.get(), e, &st);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << st.error_message();
  EXPECT_TRUE(Render(stub.get(), "tiny").ok());
  ClearFaults();
  job = prepare(&st);
  EXPECT_EQ(job.state(), v1::JOB_STATE_SUCCEEDED) << job.error_message();
}

TEST_F(DiskFaultTest, JobDatabaseJournal) {
  TestServer server(::testing::TempDir() + "/disk_fault_db_" + std::to_string(::getpid()));
  auto stub = server.Stub();
  SetFault("EIO write jobs.db");
  grpc::Status st;
  v1::Job job = Adapt(stub.get(), "db", &st);
  EXPECT_NE(Fired().find("jobs.db"), std::string::npos) << "the fault was not hit";
  // The job cannot be recorded: the caller is told so, with the cause.
  EXPECT_FALSE(st.ok() && job.state() == v1::JOB_STATE_SUCCEEDED);
  if (!st.ok()) {
    EXPECT_NE(st.error_message().find("I/O"), std::string::npos) << st.error_message();
  }
  // Rendering needs no database: still served.
  EXPECT_TRUE(Render(stub.get(), "tiny").ok());
  ClearFaults();
  job = Adapt(stub.get(), "db2", &st);
  EXPECT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(job.state(), v1::JOB_STATE_SUCCEEDED) << job.error_message();
  EXPECT_TRUE(Render(stub.get(), "db2").ok());
}

}  // namespace
}  // namespace ganserve::testing
