"""Readers: GetResults calls kept ``in_flight`` against any QueryService (the query
service, the bare gRPC server, or the single-model baseline).

``python -m bench.readers --target T --poll P --seconds S`` runs them as their own
process (the heavy readers beside a write load) and prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

import grpc

from devkit.bench.stats import percentile
from voting.v1 import query_service_pb2 as q
from voting.v1 import query_service_pb2_grpc


async def read_load(
    target: str, poll_id: str, *, seconds: float, in_flight: int = 64
) -> dict[str, Any]:
    latencies: list[float] = []
    failures = 0
    async with grpc.aio.insecure_channel(target) as channel:
        stub: Any = query_service_pb2_grpc.QueryServiceStub(channel)
        request = q.GetResultsRequest(poll_id=poll_id)
        started = time.monotonic()

        async def reader() -> None:
            nonlocal failures
            while time.monotonic() - started < seconds:
                sent = time.perf_counter()
                try:
                    await stub.GetResults(request, timeout=10)
                except grpc.aio.AioRpcError:
                    failures += 1
                    await asyncio.sleep(0.05)
                    continue
                latencies.append((time.perf_counter() - sent) * 1000)

        await asyncio.gather(*(reader() for _ in range(in_flight)))
        elapsed = time.monotonic() - started
    return {
        "reads_per_s": len(latencies) / elapsed,
        "failures": failures,
        "p50_ms": percentile(latencies, 50),
        "p99_ms": percentile(latencies, 99),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--target", required=True)
    parser.add_argument("--poll", required=True)
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--in-flight", type=int, default=64)
    args = parser.parse_args()
    figures = asyncio.run(
        read_load(args.target, args.poll, seconds=args.seconds, in_flight=args.in_flight)
    )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
