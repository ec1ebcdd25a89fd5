// The stream of ImportModel: chunks are written to a staging file as they arrive (size
// and SHA-256 tracked), then the file is loaded and published on the host pool. Nothing
// is published unless the size, the digest and the load all check out.
#ifndef GANSERVE_SERVER_STREAMS_IMPORT_STREAM_H_
#define GANSERVE_SERVER_STREAMS_IMPORT_STREAM_H_

#include <grpcpp/grpcpp.h>

#include <memory>

#include "ganserve/v1/ganserve.pb.h"
#include "server/rpc_scope.h"

namespace ganserve::server {

struct ServiceContext;

// A client stream refused at once with `status` (nothing is read).
template <typename T>
class ImmediateReadStatus : public grpc::ServerReadReactor<T> {
 public:
  explicit ImmediateReadStatus(const grpc::Status& s) { this->Finish(s); }
  void OnDone() override { delete this; }
};

grpc::ServerReadReactor<v1::ImportModelChunk>* StartImportStream(ServiceContext* ctx, v1::Model* response,
                                                                 std::unique_ptr<RpcScope> scope);

}  // namespace ganserve::server

#endif  // GANSERVE_SERVER_STREAMS_IMPORT_STREAM_H_
