"""What a server says about itself: the standard health service (Check, Watch and List)
and server reflection at both versions clients ask for (``grpc.reflection.v1`` first,
then ``v1alpha``).

grpcio ships reflection at v1alpha only, and its health servicer has no List. The v1
reflection schema is v1alpha's with another package name (same messages, same field
numbers), so v1 is served by the v1alpha servicer under the v1 method name, and its
descriptor, derived from v1alpha's, is added to the pool so that reflection can
describe itself at both versions.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool
from grpc_health.v1 import health_pb2
from grpc_health.v1._async import HealthServicer
from grpc_reflection.v1alpha import reflection, reflection_pb2

HEALTH = health_pb2.DESCRIPTOR.services_by_name["Health"].full_name
REFLECTION_V1 = "grpc.reflection.v1.ServerReflection"
REFLECTION_V1ALPHA = reflection.SERVICE_NAME


# The type stubs of grpcio-health-checking predate List.
_health: Any = health_pb2


class Health(HealthServicer):
    """The reference health servicer, with List."""

    async def List(self, request: Any, context: Any) -> Any:
        reply = _health.HealthListResponse()
        statuses: dict[str, int] = self._server_status  # type: ignore[attr-defined]
        for name, status in dict(statuses).items():
            reply.statuses[name].status = status
        return reply


def enable_reflection(server: grpc.aio.Server, service_names: Sequence[str]) -> None:
    """Reflection (v1 and v1alpha) over ``service_names``, health and reflection itself."""
    _add_v1_descriptor()
    names = [*service_names, HEALTH, REFLECTION_V1, REFLECTION_V1ALPHA]
    servicer = reflection.aio.ReflectionServicer(names)
    reflection.enable_server_reflection(names, server)
    server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                REFLECTION_V1,
                {
                    "ServerReflectionInfo": grpc.stream_stream_rpc_method_handler(
                        servicer.ServerReflectionInfo,
                        request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
                        response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString,
                    )
                },
            ),
        )
    )


def _add_v1_descriptor() -> None:
    pool = descriptor_pool.Default()
    try:
        pool.FindServiceByName(REFLECTION_V1)
        return
    except KeyError:
        pass
    file = descriptor_pb2.FileDescriptorProto()
    reflection_pb2.DESCRIPTOR.CopyToProto(file)
    old, new = ".grpc.reflection.v1alpha.", ".grpc.reflection.v1."
    file.name = "grpc/reflection/v1/reflection.proto"
    file.package = "grpc.reflection.v1"
    file.options.Clear()
    for message in file.message_type:
        for field in message.field:
            if field.type_name.startswith(old):  # scalars have none: leave it unset
                field.type_name = new + field.type_name[len(old) :]
    for service in file.service:
        for method in service.method:
            method.input_type = new + method.input_type[len(old) :]
            method.output_type = new + method.output_type[len(old) :]
    pool.Add(file)
