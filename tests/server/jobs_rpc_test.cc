// ListJobs / GetJob / CancelJob / WatchJob against the real server and a seeded job store.
#include <gtest/gtest.h>

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

}  // namespace
}  // namespace ganserve::testing
