"""A browser that stops reading, over real sockets: the gateway's aiohttp app and the
poll's broadcaster, fed by a scripted upstream (the query service is not the subject).

The browser's socket has a tiny receive buffer and reads nothing while the poll goes
through a thousand versions of 16 KB each; the gateway must neither queue them (its
buffer for that browser stays within one event) nor stop serving the others, and once
the browser reads again it gets the latest version, having skipped most of the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from gateway.api import Gateway
from gateway.hub import ResultsHub
from tests.gateway.test_hub import ScriptedQueries, until
from voting.config import GatewaySettings
from voting.v1 import results_pb2

VERSIONS = 1_000
OPTIONS = 400  # about 16 KB an event: 16 MB in all, far more than the kernel buffers


class Allowed:
    """The query service's answer to the gateway's access check: every poll is public."""

    target = "scripted"

    async def results(self, poll_id: str, authorization: str | None) -> results_pb2.Results:
        return results_pb2.Results(poll_id=poll_id)

    async def serving(self) -> bool:
        return True


def results(version: int) -> results_pb2.Results:
    snapshot = results_pb2.Results(poll_id="p", version=version, total=version)
    for i in range(OPTIONS):
        snapshot.counts.add(option_id=f"option-{i}", votes=version)
    return snapshot


def follower(port: int, *, rcvbuf: int | None = None) -> socket.socket:
    sock = socket.socket()
    if rcvbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.connect(("127.0.0.1", port))
    sock.sendall(b"GET /api/polls/p/events HTTP/1.1\r\nHost: x\r\n\r\n")
    sock.setblocking(False)
    return sock


class Reader:
    """The event ids one browser socket has received so far."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.data = b""

    async def ids_until(self, version: int, timeout_s: float = 10) -> list[int]:
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(timeout_s):
            while True:
                ids = [int(m) for m in re.findall(rb"id: (\d+)\n", self.data)]
                if version in ids:
                    return ids
                self.data += await loop.sock_recv(self.sock, 65536)


@contextlib.asynccontextmanager
async def gateway(
    settings: GatewaySettings | None = None,
) -> AsyncIterator[tuple[int, ScriptedQueries, ResultsHub]]:
    """The gateway's app on a real port over a scripted upstream: (port, upstream, hub)."""
    queries = ScriptedQueries()
    settings = settings or GatewaySettings()
    hub = ResultsHub(queries.watch, heartbeat_s=settings.heartbeat_s)
    client: Any = Allowed()
    app = Gateway(client=client, hub=hub, settings=settings).app()
    runner = web.AppRunner(app, handler_cancellation=True)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield site._server.sockets[0].getsockname()[1], queries, hub  # type: ignore[union-attr]
    finally:
        await hub.close()
        await runner.cleanup()


def test_a_browser_that_stops_reading_skips_versions_and_costs_one_event() -> None:
    async def scenario() -> None:
        async with gateway() as (port, queries, hub):
            quick = Reader(follower(port))
            await until(lambda: len(queries.calls) == 1)
            queries.send(results(1))
            assert await quick.ids_until(1) == [1]
            slow = Reader(follower(port, rcvbuf=4096))
            await until(lambda: (s := hub.stream("p")) is not None and len(s.followers) == 2)
            stream = hub.stream("p")
            assert stream is not None
            assert stream.latest is not None
            event_size = len(stream.latest.chunk)
            held = 0
            for version in range(2, VERSIONS + 1):
                queries.send(results(version))
                await asyncio.sleep(0)
                held = max(held, *(f.sink.get_write_buffer_size() for f in stream.followers))
                if version % 10 == 0:
                    await quick.ids_until(version)
            quick_ids = await quick.ids_until(VERSIONS)
            assert quick_ids == list(range(1, VERSIONS + 1)), "a reading browser misses none"
            assert held <= event_size, (held, event_size)
            ids = await slow.ids_until(VERSIONS)
            assert ids[0] == 1
            assert ids[-1] == VERSIONS
            assert len(ids) < VERSIONS / 2, f"the slow browser got {len(ids)}: queued"
            assert ids == sorted(set(ids))
            for reader in (quick, slow):
                reader.sock.close()

    asyncio.run(scenario())


def test_beyond_its_limit_a_gateway_process_sends_browsers_elsewhere() -> None:
    async def scenario() -> None:
        async with gateway(GatewaySettings(max_followers=1)) as (port, queries, hub):
            first = Reader(follower(port))
            await until(lambda: len(queries.calls) == 1)
            queries.send(results(1))
            await first.ids_until(1)
            second = Reader(follower(port))
            loop = asyncio.get_running_loop()
            async with asyncio.timeout(10):
                while b"\r\n\r\n" not in second.data:
                    second.data += await loop.sock_recv(second.sock, 65536)
            head = second.data.split(b"\r\n\r\n")[0]
            assert head.startswith(b"HTTP/1.1 503"), head
            assert b"Retry-After: 1" in head
            assert hub.subscribers == 1
            for reader in (first, second):
                reader.sock.close()

    asyncio.run(scenario())
