"""A subscriber swarm, run as its own process: ``python -m bench.subscribers``.

Opens ``--count`` WatchResults streams to one target and measures, for every snapshot
received after the warm-up, the push latency: receive time minus the snapshot's
``updated_at`` (stamped when the change was published; same machine, same clock).
Prints one JSON object when done.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import time
from typing import Any

import grpc

from devkit.bench.stats import percentile
from voting.v1 import query_service_pb2 as q
from voting.v1 import query_service_pb2_grpc


async def swarm(
    target: str, poll_id: str, count: int, seconds: float, warmup_s: float
) -> dict[str, Any]:
    latencies: list[float] = []
    connected = 0
    failures = 0
    measure_from = 0.0
    stop_at = 0.0
    ready = asyncio.Event()
    options = [("grpc.max_receive_message_length", 16 * 1024 * 1024)]
    channels = [
        grpc.aio.insecure_channel(target, options=options) for _ in range(max(1, count // 500))
    ]

    async def one(index: int) -> None:
        nonlocal connected, failures
        stub: Any = query_service_pb2_grpc.QueryServiceStub(channels[index % len(channels)])
        first = True
        try:
            async for message in stub.WatchResults(q.WatchResultsRequest(poll_id=poll_id)):
                now = time.time() * 1000
                if first:
                    first = False
                    connected += 1
                    if connected == count:
                        ready.set()
                    continue
                if measure_from and time.monotonic() >= measure_from:
                    latencies.append(now - message.results.updated_at.ToMilliseconds())
                if stop_at and time.monotonic() >= stop_at:
                    return
        except grpc.aio.AioRpcError:
            failures += 1

    tasks = [asyncio.create_task(one(i)) for i in range(count)]
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(ready.wait(), timeout=60 + count / 100)
    measure_from = time.monotonic() + warmup_s
    stop_at = measure_from + seconds
    await asyncio.sleep(warmup_s + seconds)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for channel in channels:
        await channel.close()
    return {
        "count": count,
        "connected": connected,
        "failures": failures,
        "received": len(latencies),
        "p50_ms": percentile(latencies, 50),
        "p99_ms": percentile(latencies, 99),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--target", required=True)
    parser.add_argument("--poll", required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    args = parser.parse_args()
    print(
        json.dumps(
            asyncio.run(swarm(args.target, args.poll, args.count, args.seconds, args.warmup))
        )
    )


if __name__ == "__main__":
    main()
