#include "tests/server/test_server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>

#include "core/checkpoint/safetensors.h"
#include "core/models/clip/random_init.h"
#include "core/models/stylegan2/random_init.h"
#include "tests/testing/shared.h"

namespace ganserve::testing {

TestServer::TestServer(const std::string& root, TestServerOptions opt) {
  std::filesystem::remove_all(root);
  repo_ = root + "/models";
  data_ = root + "/data";
  std::filesystem::create_directories(repo_ + "/tiny");
  std::filesystem::create_directories(repo_ + "/broken");
  std::filesystem::create_directories(data_);
  auto cfg = core::stylegan2::MakeConfig(32, 64, 2, 2, 16);
  EXPECT_TRUE(
      core::SaveSafetensors(repo_ + "/tiny/g.safetensors", core::stylegan2::RandomGeneratorWeights(cfg, 5, 0.1f), {})
          .ok());
  std::ofstream(repo_ + "/tiny/manifest.json")
      << R"({"kind": "generator", "checkpoint": "g.safetensors", "domain": "test", "default_truncation": 0.8})";
  std::ofstream(repo_ + "/broken/manifest.json") << R"({"kind": "generator", "checkpoint": "missing.pt"})";
  // A CLIP model from the shared fixtures, linked (not copied) into the repository.
  if (const std::string shared = SharedDir(); !shared.empty()) {
    std::filesystem::create_directories(repo_ + "/clip-tiny");
    std::filesystem::create_symlink(shared + "/fixtures/clip/b1_clip_tiny_traced.pt", repo_ + "/clip-tiny/clip.pt");
    std::filesystem::create_symlink(shared + "/clip/bpe_simple_vocab_16e6.txt.gz", repo_ + "/clip-tiny/vocab.txt.gz");
    std::ofstream(repo_ + "/clip-tiny/manifest.json")
        << R"({"kind": "clip", "checkpoint": "clip.pt", "vocab": "vocab.txt.gz"})";
  }
  // A small random CLIP with a synthetic vocabulary, so adaptation runs without shared/.
  std::filesystem::create_directories(repo_ + "/clip-demo");
  EXPECT_TRUE(core::SaveSafetensors(repo_ + "/clip-demo/clip.safetensors",
                                    core::clip::RandomClipWeights(core::clip::TinyClipConfig(), 3), {})
                  .ok());
  std::ofstream(repo_ + "/clip-demo/vocab.txt") << core::clip::SyntheticVocabulary();
  std::ofstream(repo_ + "/clip-demo/manifest.json")
      << R"({"kind": "clip", "checkpoint": "clip.safetensors", "vocab": "vocab.txt"})";
  if (opt.prepare_repo) opt.prepare_repo(repo_);
  if (opt.prepare_data) opt.prepare_data(data_);

  server::ServerOptions o;
  o.listen = "127.0.0.1:0";
  o.metrics_listen = "127.0.0.1:0";
  o.app.data_dir = data_;
  o.app.model_repository = repo_;
  o.app.device = "cpu";
  o.app.styleclip_clip_model = opt.styleclip_clip_model;
  o.app.max_interactive_queue = opt.max_interactive_queue;
  o.app.limits.max_images_per_request = opt.max_images_per_request;
  if (opt.checkpoint_every >= 0) o.app.checkpoint_every = opt.checkpoint_every;
  o.app.residency = opt.residency;
  if (opt.http) o.http_listen = "127.0.0.1:0";
  if (!opt.auth_tokens.empty()) {
    o.auth_tokens_file = root + "/tokens.txt";
    std::ofstream(o.auth_tokens_file) << opt.auth_tokens;
  }
  o.max_connection_age_seconds = opt.max_connection_age_seconds;
  o.max_connection_age_grace_seconds = opt.max_connection_age_grace_seconds;
  if (!opt.webhook_secret.empty()) {
    o.webhook_secret_file = root + "/webhook_secret.txt";
    std::ofstream(o.webhook_secret_file) << opt.webhook_secret << "\n";
  }
  auto s = server::GanServer::Start(o);
  EXPECT_TRUE(s.ok()) << s.status();
  if (!s.ok()) return;
  server_ = std::move(*s);
  server_->WaitUntilLoaded();
  channel_ = grpc::CreateChannel(address(), grpc::InsecureChannelCredentials());
}

TestServer::~TestServer() {
  if (server_ != nullptr) server_->Shutdown(absl::Seconds(2));
}

std::unique_ptr<v1::GanService::Stub> TestServer::Stub() const { return v1::GanService::NewStub(channel_); }

std::string HttpGet(int port, const std::string& path, int* status) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  ::inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return "";
  }
  std::string req = "GET " + path + " HTTP/1.1\r\nHost: localhost\r\n\r\n";
  ::send(fd, req.data(), req.size(), 0);
  std::string resp;
  char buf[4096];
  ssize_t n;
  while ((n = ::recv(fd, buf, sizeof(buf), 0)) > 0) resp.append(buf, static_cast<size_t>(n));
  ::close(fd);
  if (status != nullptr) *status = resp.size() > 12 ? std::atoi(resp.substr(9, 3).c_str()) : 0;
  size_t body = resp.find("\r\n\r\n");
  return body == std::string::npos ? "" : resp.substr(body + 4);
}

}  // namespace ganserve::testing
