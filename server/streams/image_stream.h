// The streams of GenerateSamples and Edit: batches of rendered images (through the
// render batcher, which may render them together with other requests' work; encoded on
// the host pool), and the step-by-step latent optimization of Edit. At most one write is in flight, so a slow
// reader holds at most one batch.
#ifndef GANSERVE_SERVER_STREAMS_IMAGE_STREAM_H_
#define GANSERVE_SERVER_STREAMS_IMAGE_STREAM_H_

#include <grpcpp/grpcpp.h>

#include <functional>
#include <memory>

#include "absl/status/statusor.h"
#include "core/service/render.h"
#include "ganserve/v1/ganserve.pb.h"
#include "server/rpc_scope.h"

namespace ganserve::server {

struct ServiceContext;

// What a batch stream renders: `total` images, `batch_size` at a time.
struct BatchSource {
  int total = 0;
  int batch_size = 8;
  const char* operation = "generate";  // metrics label
  std::function<core::service::BatchWork(int start, int count)> prepare;
};

// Where a stream's planner runs: on the device executor when planning is device work
// (mapping latents, encoding text), else on the host pool (validating, reading an
// inversion) so that neither a gRPC thread nor the device waits for it.
enum class PlanOn { kDevice, kHost };

// Plans, then streams the plan's batches: each renders through the render batcher and
// is encoded (PNG/JPEG) on the host pool, so the device thread only renders.
grpc::ServerWriteReactor<v1::ImageBatch>* StartImageStream(ServiceContext* ctx, grpc::CallbackServerContext* call,
                                                           std::function<absl::StatusOr<BatchSource>()> planner,
                                                           PlanOn plan_on, RpcScope scope);
// Latent optimization: plans on the executor, then one executor task (batch class) per
// Adam step, streaming progress every few steps and each input's result.
grpc::ServerWriteReactor<v1::ImageBatch>* StartOptimizeStream(
    ServiceContext* ctx, grpc::CallbackServerContext* call,
    std::function<absl::StatusOr<core::service::OptimizePlan>()> planner, RpcScope scope);

// A server stream that ends at once with `status`.
template <typename T>
class ImmediateStatus : public grpc::ServerWriteReactor<T> {
 public:
  explicit ImmediateStatus(const grpc::Status& s) { this->Finish(s); }
  void OnDone() override { delete this; }
};

}  // namespace ganserve::server

#endif  // GANSERVE_SERVER_STREAMS_IMAGE_STREAM_H_
