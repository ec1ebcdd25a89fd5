// Starts a real GanServer in-process on 127.0.0.1:0 with a small model repository.
#ifndef GANSERVE_TESTS_SERVER_TEST_SERVER_H_
#define GANSERVE_TESTS_SERVER_TEST_SERVER_H_

#include <grpcpp/grpcpp.h>

#include <filesystem>
#include <memory>
#include <string>

#include "ganserve/v1/ganserve.grpc.pb.h"
#include "server/server.h"

namespace ganserve::testing {

struct TestServerOptions {
  // Extra setup of the data directory before start (e.g. seeding the job store).
  std::function<void(const std::string& data_dir)> prepare_data;
  // Extra setup of the model repository before start (after the standard models).
  std::function<void(const std::string& repo_dir)> prepare_repo;
  // The StyleCLIP CLIP default (--styleclip_clip_model).
  std::string styleclip_clip_model = "clip-demo";
  int max_interactive_queue = 256;
  int max_images_per_request = 64;
  // Training checkpoint interval in steps; < 0: the server's default.
  int checkpoint_every = -1;
  // Model memory budgets and preloading.
  core::ResidencyOptions residency;
  // Serve the HTTP/JSON gateway on a free port.
  bool http = false;
  // Bearer tokens (server/auth.h format); empty = no checks.
  std::string auth_tokens;
  // The webhook HMAC key (written to --webhook_secret_file); empty = webhooks off.
  std::string webhook_secret;
  // --max_connection_age_seconds / _grace_seconds; 0 = never.
  int max_connection_age_seconds = 0, max_connection_age_grace_seconds = 0;
};

class TestServer {
 public:
  // Writes a 32 px random generator named "tiny" and a broken model "broken" into a
  // fresh repository under `root`, then starts the server and waits for the models.
  explicit TestServer(const std::string& root, TestServerOptions opt = {});
  ~TestServer();

  std::string address() const { return "127.0.0.1:" + std::to_string(server_->port()); }
  int metrics_port() const { return server_ == nullptr ? 0 : server_->metrics_port(); }
  int http_port() const { return server_ == nullptr ? 0 : server_->http_port(); }
  std::unique_ptr<v1::GanService::Stub> Stub() const;
  std::shared_ptr<grpc::Channel> channel() const { return channel_; }
  server::GanServer& server() { return *server_; }
  const std::string& repo() const { return repo_; }
  const std::string& data() const { return data_; }

 private:
  std::string repo_, data_;
  std::unique_ptr<server::GanServer> server_;
  std::shared_ptr<grpc::Channel> channel_;
};

// GET http://127.0.0.1:port/path; returns the body ("" on failure).
std::string HttpGet(int port, const std::string& path, int* status = nullptr);

}  // namespace ganserve::testing

#endif  // GANSERVE_TESTS_SERVER_TEST_SERVER_H_
