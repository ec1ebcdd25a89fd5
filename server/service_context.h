// What the gRPC handlers and streams share. Owned by GanServer, which outlives the
// service and every stream.
#ifndef GANSERVE_SERVER_SERVICE_CONTEXT_H_
#define GANSERVE_SERVER_SERVICE_CONTEXT_H_

#include <atomic>

#include "core/service/application.h"
#include "server/auth.h"
#include "server/metrics.h"
#include "server/options.h"

namespace ganserve::server {

class JobStreamRegistry;

struct ServiceContext {
  ServerOptions options;
  core::service::Application* app = nullptr;
  Metrics* metrics = nullptr;
  const TokenAuth* auth = nullptr;  // null: no token checks
  JobStreamRegistry* streams = nullptr;
  bool webhooks = false;  // --webhook_secret_file given: notify_url is accepted
  std::atomic<bool> shutting_down{false};

  core::service::Service& service() const { return app->service(); }
};

}  // namespace ganserve::server

#endif  // GANSERVE_SERVER_SERVICE_CONTEXT_H_
