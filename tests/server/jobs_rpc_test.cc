// ListJobs / GetJob / CancelJob / WatchJob against the real server and a seeded job store.
#include <gtest/gtest.h>

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <thread>

#include <grpcpp/generic/generic_stub.h>
#include "core/io/image_codec.h"
#include "core/jobs/sqlite_job_store.h"
#include "core/models/stylegan2/generator.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "tests/server/service_fixture.h"
#include "tests/server/test_server.h"
#include "tests/testing/shared.h"

namespace ganserve::testing {
namespace {

TEST_F(GanServiceTest, JobsListGetCancelWatch) {
  auto stub = server_->Stub();
  {
    grpc::ClientContext ctx;
    v1::ListJobsResponse resp;
    ASSERT_TRUE(stub->ListJobs(&ctx, v1::ListJobsRequest(), &resp).ok());
    // The two seeded jobs, newest first (other tests sharing the server may add newer ones).
    std::vector<std::string> ids;
    for (const auto& j : resp.jobs()) {
      if (j.id() == "job-queued" || j.id() == "job-done") ids.push_back(j.id());
    }
    EXPECT_EQ(ids, (std::vector<std::string>{"job-queued", "job-done"}));
  }
  {
    grpc::ClientContext ctx;
    v1::ListJobsRequest req;
    req.set_state(v1::JOB_STATE_SUCCEEDED);
    v1::ListJobsResponse resp;
    ASSERT_TRUE(stub->ListJobs(&ctx, req, &resp).ok());
    ASSERT_GE(resp.jobs_size(), 1);
    bool found = false;
    for (const auto& j : resp.jobs()) {
      EXPECT_EQ(j.state(), v1::JOB_STATE_SUCCEEDED) << j.id();
      if (j.id() == "job-done") {
        found = true;
        EXPECT_EQ(j.step(), 0);
      }
      EXPECT_NE(j.id(), "job-queued");
    }
    EXPECT_TRUE(found);
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

}  // namespace
}  // namespace ganserve::testing

namespace ganserve::testing {
namespace {

// --max_connection_age_seconds: the server closes aged connections (so clients behind a
// round-robin balancer spread over new replicas); a watch cut by it re-attaches with
// after_seq and misses nothing, and the job goes on.
TEST(MaxConnectionAgeTest, AgedStreamsAreCutAndAWatchResumesAfterSeq) {
  TestServerOptions o;
  o.max_connection_age_seconds = 1;
  o.max_connection_age_grace_seconds = 1;
  TestServer s(::testing::TempDir() + "/max_age_" + std::to_string(::getpid()), o);
  auto stub = s.Stub();
  v1::AdaptDomainRequest req;
  req.set_model("tiny");
  req.set_source_text("photo");
  req.set_target_text("sketch");
  req.set_iterations(5000);
  req.add_clip_models()->set_name("clip-demo");
  grpc::ClientContext ctx;
  auto reader = stub->AdaptDomain(&ctx, req);
  v1::JobEvent ev;
  int64_t last = 0;
  std::string id;
  const auto start = std::chrono::steady_clock::now();
  while (reader->Read(&ev)) {
    id = ev.job().id();
    if (ev.seq() > 0) last = ev.seq();
  }
  const grpc::Status st = reader->Finish();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_FALSE(st.ok()) << "the stream of a 5000-step job ended normally";
  EXPECT_LT(seconds, 30.0);
  ASSERT_FALSE(id.empty());
  ASSERT_GT(last, 0);
  EXPECT_NE(ev.job().state(), v1::JOB_STATE_SUCCEEDED);
  // Re-attach on the same channel (a new connection): the next event is last + 1.
  grpc::ClientContext wctx;
  v1::WatchJobRequest w;
  w.set_id(id);
  w.set_after_seq(last);
  auto watch = stub->WatchJob(&wctx, w);
  v1::JobEvent next;
  ASSERT_TRUE(watch->Read(&next));
  EXPECT_EQ(next.seq(), last + 1);
  wctx.TryCancel();
  (void)watch->Finish();
  grpc::ClientContext cctx;
  v1::CancelJobRequest cancel;
  cancel.set_id(id);
  v1::Job job;
  EXPECT_TRUE(stub->CancelJob(&cctx, cancel, &job).ok());
}

}  // namespace
}  // namespace ganserve::testing
