// The stream of ExportModel: the file is built on the host pool (a copy of the weights
// and their encoding: no device work), then written in 1 MiB chunks, one in flight.
#ifndef GANSERVE_SERVER_STREAMS_EXPORT_STREAM_H_
#define GANSERVE_SERVER_STREAMS_EXPORT_STREAM_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "core/service/service.h"
#include "ganserve/v1/ganserve.pb.h"
#include "server/rpc_scope.h"

namespace ganserve::server {

struct ServiceContext;

inline constexpr size_t kExportChunkBytes = size_t{1} << 20;

grpc::ServerWriteReactor<v1::ExportModelChunk>* StartExportStream(ServiceContext* ctx, std::string name,
                                                                  core::service::ExportFormat format,
                                                                  std::unique_ptr<RpcScope> scope);

}  // namespace ganserve::server

#endif  // GANSERVE_SERVER_STREAMS_EXPORT_STREAM_H_
