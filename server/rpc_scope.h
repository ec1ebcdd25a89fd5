// Per-RPC bookkeeping: a call id for logs, timing, and the one metrics record of its
// outcome.
#ifndef GANSERVE_SERVER_RPC_SCOPE_H_
#define GANSERVE_SERVER_RPC_SCOPE_H_

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <string>

namespace ganserve::server {

class Metrics;

// Not thread-safe; Done must be called once.
class RpcScope {
 public:
  RpcScope(Metrics* metrics, const char* method, const grpc::CallbackServerContext* call);
  void Done(const grpc::Status& s);
  const std::string& id() const { return id_; }

 private:
  Metrics* metrics_;
  const char* method_;
  std::string id_;
  std::chrono::steady_clock::time_point start_;
  bool done_ = false;
};

}  // namespace ganserve::server

#endif  // GANSERVE_SERVER_RPC_SCOPE_H_
