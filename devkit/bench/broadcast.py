"""The bare baseline for fan-out: a grpc.aio server that only broadcasts.

``python -m bench.broadcast --port P --rate R``: serves WatchResults on the same wire
contract as the query service, but every subscriber just awaits one shared future that
a timer resolves ``R`` times a second with a pre-serialized snapshot stamped with the
current time; GetResults answers that snapshot (the bare unary limit). No Redis, no
read model: what is left is the cost of gRPC itself, the limit the query service is
measured against.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import grpc

from voting.config import ServerSettings
from voting.server import server_options
from voting.v1 import query_service_pb2 as q
from voting.v1 import results_pb2


class Broadcast:
    def __init__(self, options: int) -> None:
        self.latest = self._snapshot(0, options)
        self.next: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._options = options

    @staticmethod
    def _snapshot(version: int, options: int) -> bytes:
        results = results_pb2.Results(poll_id="bench", version=version, total=version * options)
        for i in range(options):
            results.counts.add(option_id=f"o{i}", votes=version)
        results.updated_at.FromMilliseconds(time.time_ns() // 1_000_000)
        return q.WatchResultsResponse(results=results).SerializeToString()

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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--rate", type=float, default=10.0)
    parser.add_argument("--options", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(serve(args.port, args.rate, args.options))


if __name__ == "__main__":
    main()
