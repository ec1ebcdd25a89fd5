#include "server/options.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include "absl/status/status.h"
#include "core/service/application.h"
#include "server/status_util.h"

namespace ganserve::server {
namespace {

ParsedOptions Parse(std::vector<const char*> args) {
  args.insert(args.begin(), "ganserve");
  return ParseServerOptions(static_cast<int>(args.size()), args.data());
}

TEST(OptionsTest, DefaultsAndFlags) {
  auto p = Parse({"--listen", "0.0.0.0:6000", "--device", "cpu", "--threads", "3", "--clip_precision", "bf16",
                  "--host_threads", "4"});
  ASSERT_FALSE(p.exit) << p.message;
  EXPECT_EQ(p.options.app.host_threads, 4);
  EXPECT_EQ(Parse({}).options.app.host_threads, core::HostPool::Options{}.threads);
  EXPECT_EQ(p.options.app.clip_precision, "bf16");
  EXPECT_EQ(p.options.listen, "0.0.0.0:6000");
  EXPECT_EQ(p.options.app.device, "cpu");
  EXPECT_EQ(p.options.threads, 3);
  EXPECT_EQ(p.options.app.data_dir, "./data");
}

// Replica roles and leases; a replica without the training role needs a shared job store.
TEST(OptionsTest, RolesAndLeases) {
  auto both = Parse({});
  ASSERT_FALSE(both.exit) << both.message;
  EXPECT_TRUE(both.options.app.inference_role);
  EXPECT_TRUE(both.options.app.training_role);
  EXPECT_EQ(both.options.app.leases.lease_seconds, core::JobEngine::Options::Leases{}.lease_seconds);
  auto training = Parse({"--roles", "training", "--lease_seconds", "30", "--worker_id", "pod-7"});
  ASSERT_FALSE(training.exit) << training.message;
  EXPECT_FALSE(training.options.app.inference_role);
  EXPECT_TRUE(training.options.app.training_role);
  EXPECT_EQ(training.options.app.leases.lease_seconds, 30);
  EXPECT_EQ(training.options.app.leases.worker, "pod-7");
  EXPECT_TRUE(Parse({"--roles", "gpu"}).exit);
  auto renew = Parse({"--lease_seconds", "5", "--lease_renew_seconds", "5"});
  EXPECT_TRUE(renew.exit);
  EXPECT_NE(renew.message.find("--lease_renew_seconds"), std::string::npos) << renew.message;
  // An inference-only server on SQLite: nobody would run its jobs.
  core::service::ApplicationOptions o = Parse({"--roles", "inference"}).options.app;
  EXPECT_FALSE(o.training_role);
  o.data_dir = ::testing::TempDir() + "/roles_app";
  o.model_repository = o.data_dir + "/models";
  auto app = core::service::Application::Create(o);
  ASSERT_FALSE(app.ok());
  EXPECT_NE(app.status().message().find("shared job store"), std::string::npos) << app.status();
}

TEST(OptionsTest, EnvironmentTwinsFillUnsetFlags) {
  setenv("GANSERVE_DATA_DIR", "/var/lib/ganserve", 1);
  setenv("GANSERVE_LISTEN", "127.0.0.1:7000", 1);
  auto p = Parse({"--listen", "127.0.0.1:8000"});
  unsetenv("GANSERVE_DATA_DIR");
  unsetenv("GANSERVE_LISTEN");
  ASSERT_FALSE(p.exit) << p.message;
  EXPECT_EQ(p.options.app.data_dir, "/var/lib/ganserve");
  EXPECT_EQ(p.options.listen, "127.0.0.1:8000");  // the flag wins
}

TEST(OptionsTest, BadValuesExitWithAMessage) {
  for (auto args : std::vector<std::vector<const char*>>{{"--listen", "nowhere"},
                                                         {"--listen", "h:99999"},
                                                         {"--log_format", "xml"},
                                                         {"--clip_precision", "fp8"},
                                                         {"--max_message_mb", "0"},
                                                         {"--host_threads", "0"},
                                                         {"--metrics_listen", "x"},
                                                         {"--no_such_flag"}}) {
    auto p = Parse(args);
    EXPECT_TRUE(p.exit) << args[0];
    EXPECT_NE(p.exit_code, 0) << args[0];
    EXPECT_FALSE(p.message.empty()) << args[0];
  }
  auto help = Parse({"--help"});
  EXPECT_TRUE(help.exit);
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.message.find("--model_repository"), std::string::npos);
}

TEST(StatusUtilTest, MapsEveryCodeOneToOne) {
  EXPECT_EQ(ToGrpcStatus(absl::OkStatus()).error_code(), grpc::StatusCode::OK);
  for (int c = 1; c <= 16; ++c) {
    auto s = ToGrpcStatus(absl::Status(static_cast<absl::StatusCode>(c), "why"));
    EXPECT_EQ(static_cast<int>(s.error_code()), c);
    EXPECT_EQ(s.error_message(), "why");
  }
  EXPECT_STREQ(GrpcCodeName(grpc::StatusCode::RESOURCE_EXHAUSTED), "RESOURCE_EXHAUSTED");
}

}  // namespace
}  // namespace ganserve::server
