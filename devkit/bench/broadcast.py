"""The bare baselines for fan-out: servers that only broadcast.

``python -m devkit.bench.broadcast --port P --rate R``: a grpc.aio server on the same
wire contract as the query service, but every subscriber just awaits one shared future
that a timer resolves ``R`` times a second with a pre-serialized snapshot stamped with
the current time; GetResults answers that snapshot (the bare unary limit). No Redis, no
read model: what is left is the cost of gRPC itself, the limit the query service is
measured against.

``--protocol sse``: the cheapest Server-Sent Events broadcast stdlib asyncio allows, the
limit the gateway is measured against. Any request gets the event-stream headers and the
latest event; each tick encodes one event (the gateway's encoding, framed as an HTTP
chunk) and writes those bytes to every transport whose buffer is empty, skipping the
others, as the gateway does.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import grpc

from gateway.encoding import chunk, results_event
from voting.config import ServerSettings
from voting.server import server_options
from voting.v1 import query_service_pb2 as q
from voting.v1 import results_pb2


def stamped(version: int, options: int) -> results_pb2.Results:
    """The bench poll's results at ``version``, published now."""
    results = results_pb2.Results(poll_id="bench", version=version, total=version * options)
    for i in range(options):
        results.counts.add(option_id=f"o{i}", votes=version)
    results.updated_at.FromMilliseconds(time.time_ns() // 1_000_000)
    return results


class Broadcast:
    def __init__(self, options: int) -> None:
        self.latest = self._snapshot(0, options)
        self.next: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._options = options

    @staticmethod
    def _snapshot(version: int, options: int) -> bytes:
        return q.WatchResultsResponse(results=stamped(version, options)).SerializeToString()

    async def tick(self, rate: float) -> None:
        version = 0
        while True:
            await asyncio.sleep(1 / rate)
            version += 1
            self.latest = self._snapshot(version, self._options)
            waiters, self.next = self.next, asyncio.get_running_loop().create_future()
            waiters.set_result(self.latest)

    async def get(self, request: q.GetResultsRequest, context: Any) -> bytes:
        return self.latest  # WatchResultsResponse and GetResultsResponse share one wire form

    async def watch(self, request: q.WatchResultsRequest, context: Any) -> AsyncIterator[bytes]:
        yield self.latest
        while True:
            yield await asyncio.shield(self.next)


async def serve(port: int, rate: float, options: int) -> None:
    broadcast = Broadcast(options)
    server = grpc.aio.server(options=server_options(ServerSettings()))
    handler = grpc.method_handlers_generic_handler(
        "voting.v1.QueryService",
        {
            "WatchResults": grpc.unary_stream_rpc_method_handler(
                broadcast.watch,
                request_deserializer=q.WatchResultsRequest.FromString,
                response_serializer=bytes,
            ),
            "GetResults": grpc.unary_unary_rpc_method_handler(
                broadcast.get,
                request_deserializer=q.GetResultsRequest.FromString,
                response_serializer=bytes,
            ),
        },
    )
    server.add_generic_rpc_handlers((handler,))
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    ticker = asyncio.create_task(broadcast.tick(rate))
    try:
        await server.wait_for_termination()
    finally:
        ticker.cancel()


SSE_HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n"
)


class SseBroadcast:
    def __init__(self, options: int) -> None:
        self.followers: set[asyncio.Transport] = set()
        self.latest = self._event(0, options)
        self._options = options

    @staticmethod
    def _event(version: int, options: int) -> bytes:
        return chunk(results_event(stamped(version, options)))

    async def tick(self, rate: float) -> None:
        version = 0
        while True:
            await asyncio.sleep(1 / rate)
            version += 1
            self.latest = event = self._event(version, self._options)
            for transport in list(self.followers):
                if transport.is_closing():
                    self.followers.discard(transport)
                elif not transport.get_write_buffer_size():
                    transport.write(event)


class SseFollower(asyncio.Protocol):
    def __init__(self, broadcast: SseBroadcast) -> None:
        self._broadcast = broadcast
        self._transport: asyncio.Transport | None = None
        self._request = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        assert self._transport is not None
        self._request += data
        if b"\r\n\r\n" in self._request and self._transport not in self._broadcast.followers:
            self._transport.write(SSE_HEAD + self._broadcast.latest)
            self._broadcast.followers.add(self._transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._transport is not None:
            self._broadcast.followers.discard(self._transport)


async def serve_sse(port: int, rate: float, options: int) -> None:
    broadcast = SseBroadcast(options)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SseFollower(broadcast), "127.0.0.1", port, backlog=4096
    )
    ticker = asyncio.create_task(broadcast.tick(rate))
    try:
        await server.serve_forever()
    finally:
        ticker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await ticker


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--rate", type=float, default=10.0)
    parser.add_argument("--options", type=int, default=3)
    parser.add_argument("--protocol", choices=("grpc", "sse"), default="grpc")
    args = parser.parse_args()
    asyncio.run(
        (serve_sse if args.protocol == "sse" else serve)(args.port, args.rate, args.options)
    )


if __name__ == "__main__":
    main()
