"""The GanService stub, built from the generated service descriptor: one callable per
RPC (ListModels, GenerateSamples, ...) of the cardinality the proto declares."""
from __future__ import annotations

import grpc
from google.protobuf import descriptor_pb2, symbol_database

from ganserve_client._proto.ganserve.v1 import ganserve_pb2 as pb

SERVICE = pb.DESCRIPTOR.services_by_name["GanService"]


def _streaming():
    """{method name: (client_streaming, server_streaming)} from the file descriptor."""
    proto = descriptor_pb2.FileDescriptorProto()
    pb.DESCRIPTOR.CopyToProto(proto)
    service = next(s for s in proto.service if s.name == SERVICE.name)
    return {m.name: (m.client_streaming, m.server_streaming) for m in service.method}


class GanServiceStub:
    def __init__(self, channel: grpc.Channel):
        db = symbol_database.Default()
        kinds = {(False, False): channel.unary_unary, (False, True): channel.unary_stream,
                 (True, False): channel.stream_unary, (True, True): channel.stream_stream}
        for name, cardinality in _streaming().items():
            method = SERVICE.methods_by_name[name]
            request = db.GetSymbol(method.input_type.full_name)
            response = db.GetSymbol(method.output_type.full_name)
            setattr(self, name, kinds[cardinality](f"/{SERVICE.full_name}/{name}",
                                                   request_serializer=request.SerializeToString,
                                                   response_deserializer=response.FromString))
