// A minimal HTTP/1.1 endpoint for Prometheus scrapes (GET /metrics). prometheus-cpp's
// civetweb exposer fails to start in a process that has loaded LibTorch 1.13
// (mg_start returns null after binding), so ganserve serves the text format itself;
// prometheus-cpp's TextSerializer still does the formatting.
#ifndef GANSERVE_SERVER_METRICS_HTTP_H_
#define GANSERVE_SERVER_METRICS_HTTP_H_

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"

namespace ganserve::server {

// One thread; serves requests one at a time with a 5 s read timeout per connection.
// Thread-safe to destroy from any thread (stops and joins).
class MetricsHttpServer {
 public:
  // Binds `address` (HOST:PORT, port 0 = any free port). `render` produces the
  // response body for GET /metrics and is called on the server's thread.
  static absl::StatusOr<std::unique_ptr<MetricsHttpServer>> Start(const std::string& address,
                                                                  std::function<std::string()> render);
  ~MetricsHttpServer();
  int port() const { return port_; }

 private:
  MetricsHttpServer() = default;
  void Loop();
  void Serve(int fd);

  int listen_fd_ = -1;
  int port_ = 0;
  std::function<std::string()> render_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace ganserve::server

#endif  // GANSERVE_SERVER_METRICS_HTTP_H_
