"""The gRPC server conventions: a plaintext health-only port for probes beside a TLS
port, and a stop that turns health NOT_SERVING before anything else ends."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import descriptor_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2

from devkit.pki import development_pki
from devkit.stack.components import free_port
from voting.config import ServerSettings, TlsSettings
from voting.server import GrpcServer

Check = health_pb2.HealthCheckRequest
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


async def health(target: str) -> int:
    async with grpc.aio.insecure_channel(target) as channel:
        stub: Any = health_pb2_grpc.HealthStub(channel)
        reply = await stub.Check(Check(service=""), timeout=5)
        return int(reply.status)


def test_the_probe_port_serves_health_in_plaintext_while_the_service_port_needs_mutual_tls(
    tmp_path: Path,
) -> None:
    pki = development_pki(tmp_path / "pki")
    tls = TlsSettings(
        cert=str(pki.server_cert),
        key=str(pki.server_key),
        ca=str(pki.ca),
        client_auth="require",
    )
    probe = f"127.0.0.1:{free_port()}"
    listen = f"127.0.0.1:{free_port()}"
    draining = asyncio.Event()
    release = asyncio.Event()

    async def on_drain() -> None:
        draining.set()
        await release.wait()

    async def scenario() -> None:
        server = GrpcServer(
            listen=listen,
            settings=ServerSettings(health_listen=probe, grace_s=1.0),
            tls=tls,
            on_drain=on_drain,
        )
        await server.start()
        assert await health(probe) == SERVING
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await health(listen)  # the service port speaks TLS only
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE

        stopping = asyncio.create_task(server.stop())
        await asyncio.wait_for(draining.wait(), 5)
        assert await health(probe) == NOT_SERVING  # probes see the stop before streams end
        release.set()
        await asyncio.wait_for(stopping, 10)
        with pytest.raises(grpc.aio.AioRpcError) as gone:
            await health(probe)
        assert gone.value.code() == grpc.StatusCode.UNAVAILABLE

    asyncio.run(scenario())


def test_health_lists_every_service_and_reflection_answers_at_v1_and_v1alpha() -> None:
    listen = f"127.0.0.1:{free_port()}"
    list_services = reflection_pb2.ServerReflectionRequest(list_services="")
    describe_v1 = reflection_pb2.ServerReflectionRequest(
        file_containing_symbol="grpc.reflection.v1.ServerReflection"
    )

    async def scenario() -> None:
        server = GrpcServer(listen=listen, settings=ServerSettings(grace_s=0.5))
        await server.start()
        try:
            async with grpc.aio.insecure_channel(listen) as channel:
                stub: Any = health_pb2_grpc.HealthStub(channel)
                list_request: Any = health_pb2.HealthListRequest()  # type: ignore[attr-defined]
                listed = await stub.List(list_request, timeout=5)
                assert dict(listed.statuses)[""].status == SERVING
                for version in ("v1", "v1alpha"):
                    info = channel.stream_stream(
                        f"/grpc.reflection.{version}.ServerReflection/ServerReflectionInfo",
                        request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
                        response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
                    )
                    replies = [r async for r in info(iter([list_services, describe_v1]), timeout=5)]
                    names = {s.name for s in replies[0].list_services_response.service}
                    assert {
                        "grpc.health.v1.Health",
                        "grpc.reflection.v1.ServerReflection",
                        "grpc.reflection.v1alpha.ServerReflection",
                    } <= names, version
                    (raw,) = replies[1].file_descriptor_response.file_descriptor_proto
                    described = descriptor_pb2.FileDescriptorProto.FromString(raw)
                    assert described.package == "grpc.reflection.v1"
        finally:
            await server.stop()

    asyncio.run(scenario())
