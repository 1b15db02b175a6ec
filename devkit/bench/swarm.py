"""A follower swarm for ``devkit bench fanout``, run as its own process:
``python -m devkit.bench.swarm --protocol sse|grpc --target T --poll P --count N``.

Unlike ``bench.followers`` and ``bench.subscribers`` (which time only the snapshots they
receive), this swarm accounts for every version: a follower that receives version ``v``
while holding ``u`` has just learnt of every version in ``(u, v]``, so each of those is
covered at that moment, and the latency of a skipped or coalesced version is measured
from its own publication, not from the newer one that replaced it. The swarm knows no
publication times; it prints, per version, a histogram of the moments (epoch ms) it was
covered, and the parent subtracts the publication times it recorded.

SSE followers are raw asyncio protocols, not an HTTP client library: the swarm has to
read tens of thousands of events a second on the same two cores as the server it
measures, so what it does per event is one search for the event's id.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import sys
import time
from collections import Counter, defaultdict
from datetime import datetime
from typing import Any

import grpc

from voting.v1 import query_service_pb2 as q
from voting.v1 import query_service_pb2_grpc

_EVENT_ID = re.compile(rb"id: (\d+)\n")
_UPDATED_AT = re.compile(rb'"updated_at":"([^"]+)"')


class Tally:
    """What every follower of this swarm saw, kept as histograms (the memory of a swarm
    of 10,000 followers must not grow with the events they read)."""

    def __init__(self) -> None:
        self.connected = 0
        self.failures = 0
        self.reasons: Counter[str] = Counter()  # why followers failed
        self.measuring = False
        self.window: tuple[float, float] = (0.0, 0.0)
        # version -> {epoch ms: followers that learnt of it then}
        self.covered: defaultdict[int, Counter[int]] = defaultdict(Counter)
        # epoch 100 ms slot -> events received in it
        self.receipts: Counter[int] = Counter()
        # version -> the updated_at its event carried (epoch ms), once per version
        self.stamps: dict[int, float] = {}
        # ms from the swarm's first connection attempt -> followers whose first snapshot
        # arrived then: how long a crowd arriving at once waits for the current count
        self.joins: Counter[int] = Counter()
        self.began = time.monotonic()
        self.all_connected = asyncio.Event()
        self.count = 0
        self.closing = False  # the swarm is hanging up: a lost connection is no failure

    def failed(self, reason: str) -> None:
        self.failures += 1
        self.reasons[reason] += 1

    def joined(self) -> None:
        self.connected += 1
        self.joins[int((time.monotonic() - self.began) * 1000)] += 1
        if self.connected == self.count:
            self.all_connected.set()

    def saw(self, held: int, version: int) -> None:
        if self.measuring:
            self.covered_at(held, version, time.time() * 1000)

    def covered_at(self, held: int, version: int, at_ms: float) -> None:
        """A follower holding ``held`` received ``version`` at ``at_ms``."""
        self.receipts[int(at_ms // 100)] += 1
        at = int(at_ms)
        for covered in range(max(held + 1, version - 10_000), version + 1):
            self.covered[covered][at] += 1

    def figures(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "connected": self.connected,
            "failures": self.failures,
            "reasons": dict(self.reasons),
            "window": self.window,
            "covered": {v: dict(c) for v, c in self.covered.items()},
            "receipts": dict(self.receipts),
            "joins": dict(self.joins),
            "stamps": self.stamps,
        }


class SseFollower(asyncio.Protocol):
    """One browser's EventSource, reduced to what the figures need."""

    def __init__(self, tally: Tally, request: bytes, lost: asyncio.Future[None]) -> None:
        self._tally = tally
        self._request = request
        self._lost = lost
        self._pending = b""
        self._held = -1
        self._ok: bool | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        transport.write(self._request)

    def data_received(self, data: bytes) -> None:
        if self._ok is None:
            self._ok = data.startswith((b"HTTP/1.1 200", b"HTTP/1.0 200"))
            if not self._ok:
                self._tally.failed(data.split(b"\r\n", 1)[0].decode(errors="replace"))
        buffer = self._pending + data
        end = buffer.rfind(b"\n\n")
        if end < 0:
            self._pending = buffer
            return
        self._pending = buffer[end + 2 :]
        for match in _EVENT_ID.finditer(buffer, 0, end + 2):
            version = int(match.group(1))
            if self._held < 0:
                self._tally.joined()
            elif version > self._held:
                self._tally.saw(self._held, version)
            if version not in self._tally.stamps:
                stamp = _UPDATED_AT.search(buffer, match.end())
                if stamp is not None:
                    self._tally.stamps[version] = _epoch_ms(stamp.group(1))
            self._held = max(self._held, version)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._held < 0 and self._ok is not False and not self._tally.closing:
            self._tally.failed(f"closed before the first event: {exc!r}")
        if not self._lost.done():
            self._lost.set_result(None)


def _epoch_ms(stamp: bytes) -> float:
    return datetime.fromisoformat(stamp.decode()).timestamp() * 1000


async def sse_swarm(tally: Tally, target: str, poll_id: str, count: int) -> list[Any]:
    host, _, port = target.removeprefix("http://").rpartition(":")
    request = (
        f"GET /api/polls/{poll_id}/events HTTP/1.1\r\nHost: {host}:{port}\r\n"
        "Accept: text/event-stream\r\n\r\n"
    ).encode()
    loop = asyncio.get_running_loop()
    transports: list[Any] = []

    async def one() -> None:
        lost: asyncio.Future[None] = loop.create_future()
        try:
            transport, _ = await loop.create_connection(
                lambda: SseFollower(tally, request, lost), host, int(port)
            )
        except OSError as exc:
            tally.failed(f"connect: {exc.strerror or exc!r}")
            return
        transports.append(transport)
        await lost

    # Connect in waves: 10,000 SYNs at once overflow the listen backlog.
    tasks = []
    for start in range(0, count, 500):
        tasks += [asyncio.create_task(one()) for _ in range(min(500, count - start))]
        await asyncio.sleep(0.05)
    return [tasks, transports]


async def grpc_swarm(tally: Tally, target: str, poll_id: str, count: int) -> list[Any]:
    options = [("grpc.max_receive_message_length", 16 * 1024 * 1024)]
    channels = [
        grpc.aio.insecure_channel(target, options=options) for _ in range(max(1, count // 500))
    ]

    async def one(index: int) -> None:
        stub: Any = query_service_pb2_grpc.QueryServiceStub(channels[index % len(channels)])
        held = -1
        try:
            async for message in stub.WatchResults(q.WatchResultsRequest(poll_id=poll_id)):
                version = message.results.version
                if held < 0:
                    tally.joined()
                elif version > held:
                    tally.saw(held, version)
                if version not in tally.stamps:
                    tally.stamps[version] = message.results.updated_at.ToMilliseconds()
                held = max(held, version)
        except grpc.aio.AioRpcError as exc:
            if not tally.closing:
                tally.failed(f"{exc.code().name}: {exc.details()}")

    tasks = [asyncio.create_task(one(i)) for i in range(count)]
    return [tasks, channels]


async def swarm(
    protocol: str, target: str, poll_id: str, *, count: int, seconds: float, warmup_s: float
) -> dict[str, Any]:
    tally = Tally()
    tally.count = count
    tally.began = time.monotonic()
    start = sse_swarm if protocol == "sse" else grpc_swarm
    tasks, held = await start(tally, target, poll_id, count)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(tally.all_connected.wait(), timeout=60 + count / 100)
    # Every swarm of a step measures over the same window: each says it has joined and
    # waits for the parent's go, which comes once all of them have.
    print("joined", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    await asyncio.sleep(warmup_s)
    tally.measuring = True
    began = time.time()
    await asyncio.sleep(seconds)
    tally.window = (began * 1000, time.time() * 1000)
    tally.measuring = False
    tally.closing = True
    for task in tasks:
        task.cancel()
    if protocol == "sse":
        for transport in held:
            transport.abort()
    else:
        for channel in held:
            await channel.close()
    await asyncio.gather(*tasks, return_exceptions=True)
    return tally.figures()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--protocol", choices=("sse", "grpc"), required=True)
    parser.add_argument("--target", required=True)
    parser.add_argument("--poll", required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    args = parser.parse_args()
    figures = asyncio.run(
        swarm(
            args.protocol,
            args.target,
            args.poll,
            count=args.count,
            seconds=args.seconds,
            warmup_s=args.warmup,
        )
    )
    print(json.dumps(figures), flush=True)


if __name__ == "__main__":
    main()
