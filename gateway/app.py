"""The gateway process: ``voting gateway``."""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web

from gateway.api import Gateway
from gateway.hub import ResultsHub
from gateway.query import QueryClient
from voting import runtime
from voting.config import Settings
from voting.errors import ConfigError
from voting.server import wait_for_stop_signal

log = logging.getLogger(__name__)


def split_listen(listen: str) -> tuple[str, int]:
    host, _, port = listen.rpartition(":")
    try:
        return host.strip("[]") or "0.0.0.0", int(port)
    except ValueError as exc:
        raise ConfigError(f"VOTING_GATEWAY_LISTEN: not host:port: {listen!r}") from exc


async def serve(settings: Settings) -> None:
    """Serves until SIGTERM/SIGINT, then stops gracefully: the listener closes, every SSE
    response ends (browsers reconnect, resuming with Last-Event-ID), and in-flight
    requests get VOTING_SHUTDOWN_GRACE_S to finish."""
    host, port = split_listen(settings.gateway.listen)
    client = QueryClient(
        settings.gateway.query_target or settings.query.listen,
        tls=settings.tls,
        token=settings.gateway.token,
    )
    gateway = Gateway(
        client=client,
        hub=ResultsHub(client.watch, heartbeat_s=settings.gateway.heartbeat_s),
        settings=settings.gateway,
    )
    # handler_cancellation: a browser that goes away cancels its SSE handler at once, so
    # the poll's upstream stream closes as soon as its last browser leaves.
    runner = web.AppRunner(
        gateway.app(), handler_cancellation=True, shutdown_timeout=settings.server.grace_s
    )
    await runner.setup()
    # Like the gRPC servers (SO_REUSEPORT), several gateway processes can share a port.
    site = web.TCPSite(runner, host, port, reuse_port=True, backlog=settings.gateway.listen_backlog)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        await client.close()
        raise ConfigError(
            f"cannot listen on {settings.gateway.listen}: {exc} (is the port taken?)"
        ) from exc
    log.info("serving", extra={"listen": settings.gateway.listen, "query_service": client.target})
    await wait_for_stop_signal()
    gateway.stopping = True
    await runner.cleanup()
    await client.close()
    log.info("stopped", extra={"listen": settings.gateway.listen})


def main() -> int:
    settings = Settings.from_env()
    runtime.setup("gateway", settings)
    asyncio.run(serve(settings))
    return 0
