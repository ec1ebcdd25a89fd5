// Requests whose bytes do not parse as the method's message never reach a handler:
// gRPC's callback handlers then answer UNIMPLEMENTED with no message, which tells the
// caller the method does not exist. This server interceptor notices the failed parse
// (the message hook fires without a message) and rewrites the status sent to
// INVALID_ARGUMENT naming the expected message type, counted in the RPC metrics.
#ifndef GANSERVE_SERVER_PARSE_FAILURE_INTERCEPTOR_H_
#define GANSERVE_SERVER_PARSE_FAILURE_INTERCEPTOR_H_

#include <grpcpp/support/server_interceptor.h>

#include <string>

namespace ganserve::server {

class Metrics;

// "request could not be parsed as ganserve.v1.GenerateSamplesRequest" for
// "/ganserve.v1.GanService/GenerateSamples"; a generic wording for unknown methods.
std::string UnparseableRequestMessage(const std::string& full_method);

class ParseFailureInterceptorFactory : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit ParseFailureInterceptorFactory(Metrics* metrics) : metrics_(metrics) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(grpc::experimental::ServerRpcInfo* info) override;

 private:
  Metrics* metrics_;
};

}  // namespace ganserve::server

#endif  // GANSERVE_SERVER_PARSE_FAILURE_INTERCEPTOR_H_
