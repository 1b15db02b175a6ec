"""The gRPC server conventions: a plaintext health-only port for probes beside a TLS
port, and a stop that turns health NOT_SERVING before anything else ends."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

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
