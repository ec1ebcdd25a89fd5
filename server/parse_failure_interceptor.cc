#include "server/parse_failure_interceptor.h"

#include <google/protobuf/descriptor.h>

#include "server/metrics.h"

namespace ganserve::server {
namespace {

using grpc::experimental::InterceptionHookPoints;

class ParseFailureInterceptor : public grpc::experimental::Interceptor {
 public:
  ParseFailureInterceptor(Metrics* metrics, std::string method) : metrics_(metrics), method_(std::move(method)) {}

  void Intercept(grpc::experimental::InterceptorBatchMethods* m) override {
    if (m->QueryInterceptionHookPoint(InterceptionHookPoints::POST_RECV_MESSAGE) && m->GetRecvMessage() == nullptr) {
      unparsed_ = true;
    }
    if (unparsed_ && m->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_STATUS) &&
        m->GetSendStatus().error_code() == grpc::StatusCode::UNIMPLEMENTED) {
      m->ModifySendStatus(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, UnparseableRequestMessage(method_)));
      if (metrics_ != nullptr) {
        const size_t slash = method_.rfind('/');
        metrics_->RecordRpc(slash == std::string::npos ? method_ : method_.substr(slash + 1), "INVALID_ARGUMENT", 0);
        metrics_->RecordRejected("unparseable_request");
      }
    }
    m->Proceed();
  }

 private:
  Metrics* metrics_;
  std::string method_;
  bool unparsed_ = false;
};

}  // namespace

std::string UnparseableRequestMessage(const std::string& full_method) {
  // "/package.Service/Method" -> "package.Service.Method".
  std::string name = full_method;
  if (!name.empty() && name[0] == '/') name.erase(0, 1);
  const size_t slash = name.find('/');
  if (slash != std::string::npos) name[slash] = '.';
  const auto* method = google::protobuf::DescriptorPool::generated_pool()->FindMethodByName(name);
  if (method == nullptr) return "request could not be parsed as the message of " + full_method;
  return "request could not be parsed as " + method->input_type()->full_name() +
         ": the bytes are not a valid serialized message of that type (truncated, corrupted, or invalid UTF-8 in a "
         "string field)";
}

grpc::experimental::Interceptor* ParseFailureInterceptorFactory::CreateServerInterceptor(
    grpc::experimental::ServerRpcInfo* info) {
  return new ParseFailureInterceptor(metrics_, info->method());
}

}  // namespace ganserve::server
