"""``devkit bench read``: the read side's figures beside a bare gRPC broadcast server.

1. Vote to visible: votes are cast one by one through the whole pipeline while a
   watcher follows the poll; a vote is visible in the first snapshot whose watermark
   for its partition reaches its offset (the consistency token of its acknowledgement).
2. Subscribers per process: subscriber swarms (separate processes) watch one poll on
   one query process while its results change at 10/s (then 1/s); the count doubles
   until the push p99 passes 100 ms. Changes are driven straight into the read model
   (version, updated_at, notification), so the figure is the fan-out's alone.
3. The same ramp against a bare grpc.aio broadcast server: the limit.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import grpc
import redis

from devkit.bench.environment import machine, private_stack, served, write_json
from devkit.bench.load import LoadSpec, VoteLoad
from devkit.bench.polls import create_polls
from devkit.bench.stats import percentile, rounded
from devkit.stack.components import grpc_serving
from devkit.stack.stack import Stack
from voting.config import Settings
from voting.readmodel import CHANGES_CHANNEL, DEFAULT_NAMESPACE, Keys, change_message
from voting.v1 import query_service_pb2 as q
from voting.v1 import query_service_pb2_grpc

PUSH_P99_LIMIT_MS = 100.0
RAMP_10HZ = (250, 500, 1000, 1500, 2000, 3000, 4000)
RAMP_1HZ = (250, 500, 1000, 2000, 4000, 8000)
SWARMS = 2


async def vote_to_visible(
    settings: Settings, poll_id: str, *, seconds: float, rate: float = 50.0
) -> dict[str, Any]:
    """Votes cast one by one at ``rate`` while a watcher follows the poll."""
    snapshots: list[tuple[float, dict[int, int]]] = []
    async with grpc.aio.insecure_channel(settings.query.listen) as channel:
        queries: Any = query_service_pb2_grpc.QueryServiceStub(channel)

        async def watch() -> None:
            async for message in queries.WatchResults(q.WatchResultsRequest(poll_id=poll_id)):
                marks = {w.partition: w.offset for w in message.results.watermark}
                snapshots.append((time.monotonic(), marks))

        watcher = asyncio.create_task(watch())
        await asyncio.sleep(0.5)
        load = VoteLoad(
            settings.command.listen,
            LoadSpec(
                polls=[poll_id], options=("o0", "o1"), batch=1, lanes=1, rate=rate, repeat_ratio=0
            ),
        )
        await load.run(lambda: False, seconds=seconds)
        await asyncio.sleep(5.0)
        watcher.cancel()
    visible = [ms for _, ms in load.record.visibility(poll_id, snapshots)]
    return {
        "visible_p50_ms": percentile(visible, 50),
        "visible_p99_ms": percentile(visible, 99),
        "visible_votes": len(visible),
        "visible_missing": len(load.record.acks) - len(visible),
    }


class ChangeDriver:
    """Changes a poll's results ``rate`` times a second, straight in the read model;
    ``published`` maps each version to the moment (epoch ms) it was stamped."""

    def __init__(self, url: str, poll_id: str, rate: float) -> None:
        self._client = redis.Redis.from_url(url)
        self._meta = Keys(DEFAULT_NAMESPACE).meta(poll_id)
        self._poll_id = poll_id
        self._rate = rate
        self.published: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> ChangeDriver:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self._client.close()

    def _run(self) -> None:
        while not self._stop.wait(1 / self._rate):
            stamp = time.time_ns() // 1_000_000
            self._client.hset(self._meta, "updated_at", str(stamp))
            version = int(self._client.hincrby(self._meta, "version", 1))
            self.published[version] = float(stamp)
            self._client.publish(CHANGES_CHANNEL, change_message(self._poll_id, version))


def swarm(
    target: str,
    poll_id: str,
    count: int,
    seconds: float,
    *,
    module: str = "devkit.bench.subscribers",
) -> dict[str, Any]:
    """``count`` followers of ``poll_id`` in SWARMS processes running ``module``, with
    the updates each follower actually received per second (not the rate asked for)."""
    figures = collect_swarm(spawn_swarm(target, poll_id, count, seconds, module=module), count)
    figures["delivered_per_s_each"] = rounded(
        figures["received"] / max(figures["connected"], 1) / seconds, 2
    )
    return figures


def spawn_swarm(
    target: str,
    poll_id: str,
    count: int,
    seconds: float,
    *,
    module: str = "devkit.bench.subscribers",
    warmup_s: float = 1.0,
) -> list[subprocess.Popen[str]]:
    """Starts the swarm processes; :func:`collect_swarm` waits for their figures."""
    per = max(1, count // SWARMS)
    return [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                module,
                "--target",
                target,
                "--poll",
                poll_id,
                "--count",
                str(per),
                "--seconds",
                str(seconds),
                "--warmup",
                str(warmup_s),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(SWARMS)
    ]


def collect_swarm(procs: list[subprocess.Popen[str]], count: int) -> dict[str, Any]:
    outs = [json.loads(p.communicate(timeout=600)[0]) for p in procs]
    return {
        "subscribers": count,
        "connected": sum(o["connected"] for o in outs),
        "failures": sum(o["failures"] for o in outs),
        "received": sum(o["received"] for o in outs),
        "p50_ms": max(o["p50_ms"] for o in outs),
        "p99_ms": max(o["p99_ms"] for o in outs),
    }


def ramp(
    target: str,
    poll_id: str,
    counts: tuple[int, ...],
    seconds: float,
    driver: Any,
    *,
    module: str = "devkit.bench.subscribers",
) -> tuple[int, list[dict[str, Any]]]:
    best = 0
    steps = []
    for count in counts:
        with driver():
            step = swarm(target, poll_id, count, seconds, module=module)
        steps.append(step)
        if step["connected"] < count or step["failures"] or step["p99_ms"] >= PUSH_P99_LIMIT_MS:
            break
        best = count
    return best, steps


def capped(counts: tuple[int, ...], most: int | None) -> tuple[int, ...]:
    """The ramp's steps up to ``most`` followers (at least the first step)."""
    if most is None:
        return counts
    return tuple(c for c in counts if c <= most) or counts[:1]


def fanout(
    stack: Stack, poll_id: str, *, seconds: float, max_followers: int | None = None
) -> dict[str, Any]:
    settings = stack.settings()
    query = settings.query.listen
    figures: dict[str, Any] = {}
    for hz, counts in ((10.0, RAMP_10HZ), (1.0, RAMP_1HZ)):
        window = max(3.0, seconds / 4) if hz >= 10 else max(6.0, seconds / 2)
        best, steps = ramp(
            query,
            poll_id,
            capped(counts, max_followers),
            window,
            lambda hz=hz: ChangeDriver(settings.redis.url, poll_id, hz),
        )
        figures[f"subscribers_per_process_{int(hz)}hz"] = best
        figures[f"steps_{int(hz)}hz"] = steps
    with served(None, "broadcast", "--rate", "10") as bare:
        target = bare.address
        best, steps = ramp(
            target, "bench", capped(RAMP_10HZ, max_followers), max(3.0, seconds / 4), _no_driver
        )
    figures["raw_subscribers_per_process_10hz"] = best
    figures["raw_steps_10hz"] = steps
    return figures


class _NoDriver:
    def __enter__(self) -> _NoDriver:
        return self

    def __exit__(self, *_: object) -> None:
        return None


def _no_driver() -> _NoDriver:
    return _NoDriver()


def run(
    *, seconds: float, json_path: Path | None, max_followers: int | None = None
) -> dict[str, Any]:
    with private_stack(services=("command", "worker", "projector", "query")) as stack:
        settings = stack.settings()
        visible_poll, poll_id = create_polls(settings, 2, 2, prefix="read")
        visible = asyncio.run(vote_to_visible(settings, visible_poll, seconds=seconds * 0.5))
        stack.stop_services(["worker", "projector", "command"])  # the query service has the box
        assert grpc_serving(settings.query.listen)
        fan = fanout(stack, poll_id, seconds=seconds, max_followers=max_followers)
    steps = [
        s for s in fan["steps_10hz"] if s["subscribers"] == fan["subscribers_per_process_10hz"]
    ]
    figures: dict[str, Any] = {
        "benchmark": "read",
        "seconds": seconds,
        "machine": machine(),
        **{k: rounded(v) if isinstance(v, float) else v for k, v in visible.items()},
        **fan,
        "push_p99_ms": rounded(steps[0]["p99_ms"]) if steps else None,
        "push_p99_at_subscribers": fan["subscribers_per_process_10hz"],
    }
    figures["ratios"] = {
        "subscribers_10hz_to_raw": rounded(
            fan["subscribers_per_process_10hz"] / max(fan["raw_subscribers_per_process_10hz"], 1), 3
        ),
    }
    figures["json"] = str(write_json(figures, json_path))
    return figures
