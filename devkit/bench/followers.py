"""An SSE follower swarm, run as its own process: ``python -m bench.followers``.

The browser-side twin of ``bench.subscribers``: opens ``--count`` Server-Sent Events
streams on a gateway (``--target http://host:port``) and measures, for every snapshot
received after the warm-up, the push latency: receive time minus the snapshot's
``updated_at`` (same machine, same clock). Prints one JSON object when done.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import time
from datetime import datetime
from typing import Any

import aiohttp

from devkit.bench.stats import percentile

_UPDATED_AT = b'"updated_at":"'


def updated_at_ms(event: bytes) -> float:
    start = event.index(_UPDATED_AT) + len(_UPDATED_AT)
    stamp = event[start : event.index(b'"', start)].decode()
    return datetime.fromisoformat(stamp).timestamp() * 1000


async def swarm(
    target: str, poll_id: str, count: int, seconds: float, warmup_s: float
) -> dict[str, Any]:
    latencies: list[float] = []
    connected = 0
    failures = 0
    measure_from = 0.0
    stop_at = 0.0
    ready = asyncio.Event()
    url = f"{target}/api/polls/{poll_id}/events"
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def one() -> None:
            nonlocal connected, failures
            first = True
            pending = b""
            try:
                async with session.get(url) as response:
                    if response.status != 200:
                        failures += 1
                        return
                    # Chunks, not lines: one clock reading and one split per read.
                    async for chunk in response.content.iter_any():
                        now = time.time() * 1000
                        *events, pending = (pending + chunk).split(b"\n\n")
                        for event in events:
                            if not event.startswith(b"id:"):
                                continue  # a heartbeat
                            if first:
                                first = False
                                connected += 1
                                if connected == count:
                                    ready.set()
                                continue
                            if (
                                measure_from
                                and time.monotonic() >= measure_from
                                and _UPDATED_AT in event
                            ):
                                latencies.append(now - updated_at_ms(event))
                        if stop_at and time.monotonic() >= stop_at:
                            return
            except (aiohttp.ClientError, OSError):
                failures += 1

        tasks = [asyncio.create_task(one()) for _ in range(count)]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(ready.wait(), timeout=60 + count / 100)
        measure_from = time.monotonic() + warmup_s
        stop_at = measure_from + seconds
        await asyncio.sleep(warmup_s + seconds)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
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
    parser.add_argument("--target", required=True, help="the gateway, e.g. http://127.0.0.1:8080")
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
