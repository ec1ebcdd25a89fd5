// ListModels / GetModel / DeleteModel against the real server.
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

}  // namespace
}  // namespace ganserve::testing
