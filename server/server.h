// The ganserve process minus main(): model repository, job store, device executor,
// gRPC services (GanService, health, reflection) and the metrics exposer.
#ifndef GANSERVE_SERVER_SERVER_H_
#define GANSERVE_SERVER_SERVER_H_

#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "server/options.h"

namespace grpc {
class Server;
}

namespace ganserve::core {
class SharedFiles;
}  // namespace ganserve::core
namespace ganserve::core::storage {
class ArtifactCache;
class ArtifactStore;
}  // namespace ganserve::core::storage
namespace ganserve::core::service {
class Application;
}  // namespace ganserve::core::service

namespace ganserve::server {

class GanServiceImpl;
class HttpGateway;
class JobStreamRegistry;
class Metrics;
class TokenAuth;
class Webhooks;
struct ServiceContext;

// Start() returns once the ports are bound; models load in the background and the
// health services `readiness` and "" turn SERVING when they are done (`liveness` is
// SERVING from the start). With a PostgreSQL job store or an artifact store, readiness
// then follows whether they answer (checked every few seconds). Not copyable; Shutdown is idempotent and thread-safe.
class GanServer {
 public:
  static absl::StatusOr<std::unique_ptr<GanServer>> Start(const ServerOptions& options);
  ~GanServer();

  int port() const { return port_; }
  int metrics_port() const { return metrics_port_; }
  int health_port() const { return health_port_; }
  // The HTTP/JSON gateway's port; 0 when off.
  int http_port() const;
  bool ready() const;
  // Blocks until the model repository finished loading.
  void WaitUntilLoaded();

  // Ordered shutdown: health NOT_SERVING, refuse new work, drain in-flight calls up to
  // `grace` (then cancel them), stop the executor, join every thread.
  void Shutdown(absl::Duration grace);
  // Blocks until Shutdown() finished.
  void Wait();
  // Sets a health service's status ("" = overall) on the main and the health port.
  void SetHealth(const std::string& service, bool serving);
  // The application behind the edge (embedding, tests).
  core::service::Application& application() { return *app_; }

 private:
  GanServer();
  // Readiness follows the shared job store and artifact store (their checks, every
  // kDependencyCheckPeriod) until shutdown.
  void FollowDependencies();
  static constexpr absl::Duration kDependencyCheckPeriod = absl::Seconds(5);
  int port_ = 0;
  int metrics_port_ = 0;
  std::unique_ptr<Metrics> metrics_;
  std::unique_ptr<Webhooks> webhooks_;  // outlives the application, whose jobs call it
  // The shared files (--artifact_store) and what they stand on; outlive the application.
  std::unique_ptr<core::storage::ArtifactStore> artifact_store_;
  std::unique_ptr<core::storage::ArtifactCache> artifact_cache_;
  std::unique_ptr<core::SharedFiles> shared_files_;
  std::unique_ptr<core::service::Application> app_;
  std::unique_ptr<TokenAuth> auth_;
  std::unique_ptr<grpc::Server> health_server_;
  int health_port_ = 0;
  std::unique_ptr<JobStreamRegistry> streams_;
  std::unique_ptr<ServiceContext> context_;
  std::unique_ptr<GanServiceImpl> service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<HttpGateway> http_;
  std::thread loader_;
  std::thread readiness_;  // follows the job store and the artifact store
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace ganserve::server

#endif  // GANSERVE_SERVER_SERVER_H_
