"""``devkit bench fanout``: how many followers one push process serves, and what a push
costs it, beside the cheapest broadcast Python allows, in one run on one private stack.

Four servers, each ramped through the same follower counts at 1 and then 10 updates/s:

- ``gateway``: SSE followers on one gateway process (its one upstream WatchResults stream
  fed by the query service, whose poll a driver changes straight in the read model);
- ``bare_sse``: the same swarm on ``bench.broadcast --protocol sse`` (stdlib asyncio, one
  pre-encoded event written to every transport): the limit the gateway is held to;
- ``query``: WatchResults streams on one query service process;
- ``bare_grpc``: the same gRPC swarm on ``bench.broadcast`` (grpc.aio, one pre-serialized
  message): the limit the query service is held to.

Followers run in SWARMS separate processes (``devkit.bench.swarm``). At each step:

- latency of every version, from the moment it was published (the driver's clock, or the
  bare server's stamp) to the moment each follower learnt of it, by that version's own
  event or by a newer one that replaced it (skipped and coalesced versions count);
- delivered/expected: the (follower, version) pairs learnt in time over followers times
  versions published in the window;
- the server's CPU-seconds over the window from /proc (not wall time), per push (per
  event a follower received), and its RSS;
- how long the step's followers, all connecting at once, waited for their first snapshot
  (``join_max_ms``; the headline ``gateway_join_max_ms`` is the first step at 1/s).

A step is served when every follower connected, none failed, at least SERVED of the
expected pairs were delivered and the p99 is at most P99_LIMIT_MS; a ramp stops at the
first step that is not. What the figures do not show: the swarms share the server's two
cores (a client reads an event for every push the server writes), so the counts are the
box's, not the server's alone; the ratios to the bare servers, measured with the same
swarms, are the portable figures.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any

from devkit.bench.environment import (
    cpu_seconds,
    machine,
    private_stack,
    rss_mib,
    served,
    write_json,
)
from devkit.bench.polls import create_polls
from devkit.bench.read import ChangeDriver
from devkit.bench.stats import rounded, weighted_percentile
from devkit.stack.components import grpc_serving

STEPS = (1_000, 2_000, 5_000, 10_000, 19_500)  # the box's fd limit is 20,000
RATES = (1.0, 10.0)
P99_LIMIT_MS = 250.0
SERVED = 0.999
SWARMS = 2
# A version published later than this before the window ends is not counted: its
# followers could not all have learnt of it in time.
GRACE_MS = 1_000.0
KINDS = ("gateway", "bare_sse", "query", "bare_grpc")
PROTOCOL = {"gateway": "sse", "bare_sse": "sse", "query": "grpc", "bare_grpc": "grpc"}


class Sampler:
    """The server's CPU-seconds and RSS, sampled every 50 ms in a thread."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.samples: list[tuple[float, float]] = []  # (epoch ms, cpu s)
        self.rss_mib = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def cpu_between(self, start_ms: float, end_ms: float) -> float:
        return self._at(end_ms) - self._at(start_ms)

    def _at(self, when_ms: float) -> float:
        before = [s for s in self.samples if s[0] <= when_ms]
        after = [s for s in self.samples if s[0] >= when_ms]
        if not before or not after:
            return (before or after)[-1 if before else 0][1]
        (t0, c0), (t1, c1) = before[-1], after[0]
        return c0 if t1 == t0 else c0 + (c1 - c0) * (when_ms - t0) / (t1 - t0)

    def _run(self) -> None:
        while True:
            self.samples.append((time.time() * 1000, cpu_seconds(self.pid)))
            self.rss_mib = max(self.rss_mib, rss_mib(self.pid))
            if self._stop.wait(0.05):
                return


def summarize(
    outs: list[dict[str, Any]], published: dict[int, float], count: int
) -> dict[str, Any]:
    """One step's figures from its swarms' tallies and the publication times."""
    start = max(o["window"][0] for o in outs)
    end = min(o["window"][1] for o in outs)
    stamps = {int(v): t for o in outs for v, t in o["stamps"].items()}
    times = {**stamps, **published}
    measured = [v for v, t in times.items() if start <= t <= end - GRACE_MS]
    latencies: list[tuple[float, int]] = []
    for out in outs:
        covered = out["covered"]
        for version in measured:
            for at, n in covered.get(str(version), {}).items():
                latencies.append((int(at) - times[version], n))
    joins = [(int(ms), n) for o in outs for ms, n in o["joins"].items()]
    delivered = sum(n for _, n in latencies)
    expected = count * len(measured)
    pushes = sum(
        n for o in outs for slot, n in o["receipts"].items() if start <= int(slot) * 100 < end
    )
    return {
        "followers": count,
        "connected": sum(o["connected"] for o in outs),
        "failures": sum(o["failures"] for o in outs),
        "failure_reasons": dict(sum((Counter(o.get("reasons", {})) for o in outs), Counter())),
        "window_s": rounded((end - start) / 1000, 2),
        "versions": len(measured),
        "delivered": delivered,
        "expected": expected,
        "delivered_ratio": rounded(delivered / expected, 4) if expected else 0.0,
        "p50_ms": rounded(weighted_percentile(latencies, 50)),
        "p99_ms": rounded(weighted_percentile(latencies, 99)),
        "pushes": pushes,
        "join_p99_ms": rounded(weighted_percentile(joins, 99)),
        "join_max_ms": max((ms for ms, _ in joins), default=0),
        "start_ms": start,
        "end_ms": end,
    }


def swarm(
    protocol: str, target: str, poll_id: str, count: int, seconds: float
) -> list[dict[str, Any]]:
    per = max(1, count // SWARMS)
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "devkit.bench.swarm",
                "--protocol",
                protocol,
                "--target",
                target,
                "--poll",
                poll_id,
                "--count",
                str(per if i < SWARMS - 1 else count - per * (SWARMS - 1)),
                "--seconds",
                str(seconds),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for i in range(SWARMS)
    ]
    for proc in procs:
        assert proc.stdout is not None
        proc.stdout.readline()  # "joined" (or nothing, if the swarm died)
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    outs = [proc.communicate(timeout=900)[0] for proc in procs]
    return [json.loads(out.splitlines()[-1]) for out in outs]


def served_step(step: dict[str, Any]) -> bool:
    return bool(
        step["connected"] == step["followers"]
        and step["failures"] == 0
        and step["delivered_ratio"] >= SERVED
        and step["p99_ms"] <= P99_LIMIT_MS
    )


Driver = Callable[[float], AbstractContextManager[ChangeDriver | None]]


def ramp(
    kind: str,
    target: str,
    pid: int,
    *,
    poll_id: str,
    hz: float,
    steps: Sequence[int],
    seconds: float,
    driver: Driver,
) -> list[dict[str, Any]]:
    done = []
    idle_rss = rss_mib(pid)
    for count in steps:
        with driver(hz) as changes, Sampler(pid) as sampler:
            outs = swarm(PROTOCOL[kind], target, poll_id, count, seconds)
            published = dict(changes.published) if changes is not None else {}
        step = summarize(outs, published, count)
        cpu_s = sampler.cpu_between(step.pop("start_ms"), step.pop("end_ms"))
        step.update(
            kind=kind,
            hz=hz,
            cpu_s=rounded(cpu_s, 3),
            pushes_per_cpu_s=rounded(step["pushes"] / cpu_s) if cpu_s > 0 else 0.0,
            rss_mib=rounded(sampler.rss_mib),
            idle_rss_mib=rounded(idle_rss),
        )
        step["served"] = served_step(step)
        done.append(step)
        if not step["served"]:
            break
    return done


def largest_served(steps: list[dict[str, Any]]) -> int:
    return max((s["followers"] for s in steps if s["served"]), default=0)


def paired(
    ours: list[dict[str, Any]], bare: list[dict[str, Any]]
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """The two steps to compare: the largest follower count both served (like for like);
    else the first step of each."""
    served_by = {s["followers"]: s for s in bare if s["served"]}
    common = [s for s in ours if s["served"] and s["followers"] in served_by]
    if common:
        return common[-1], served_by[common[-1]["followers"]]
    return (ours[0] if ours else None), (bare[0] if bare else None)


@contextmanager
def _changes(settings: Any, poll_id: str, hz: float) -> Iterator[ChangeDriver]:
    with ChangeDriver(settings.redis.url, poll_id, hz) as driver:
        time.sleep(1.5 / hz)  # the first change reaches the feed before followers join
        yield driver


def run(
    *,
    seconds: float,
    json_path: Path | None,
    steps: Sequence[int] = STEPS,
    kinds: Sequence[str] = KINDS,
) -> dict[str, Any]:
    services = ("command", "worker", "projector", "query", "gateway")
    results: dict[str, dict[str, list[dict[str, Any]]]] = {k: {} for k in kinds}
    with private_stack(services=services) as stack:
        settings = stack.settings()
        (poll_id,) = create_polls(settings, 1, 3, prefix="fanout")
        stack.stop_services(["worker", "projector", "command"])  # the read side has the box
        assert grpc_serving(settings.query.listen)
        for hz in RATES:
            window = max(seconds, 8.0) if hz < 10 else max(seconds / 2, 4.0)
            for kind in kinds:
                if kind in ("gateway", "query"):
                    target = (
                        f"http://{settings.gateway.listen}"
                        if kind == "gateway"
                        else settings.query.listen
                    )
                    pid = stack.children[kind].pid

                    def driver(rate: float) -> AbstractContextManager[ChangeDriver | None]:
                        return _changes(settings, poll_id, rate)

                    results[kind][f"{int(hz)}hz"] = ramp(
                        kind,
                        target,
                        pid,
                        poll_id=poll_id,
                        hz=hz,
                        steps=steps,
                        seconds=window,
                        driver=driver,
                    )
                    continue
                args = ("--rate", str(hz), "--protocol", PROTOCOL[kind])
                with served(None, "broadcast", *args, http=kind == "bare_sse") as bare:
                    target = f"http://{bare.address}" if kind == "bare_sse" else bare.address
                    results[kind][f"{int(hz)}hz"] = ramp(
                        kind,
                        target,
                        bare.pid,
                        poll_id="bench",
                        hz=hz,
                        steps=steps,
                        seconds=window,
                        driver=lambda _rate: nullcontext(None),
                    )
    figures = headline(results)
    result: dict[str, Any] = {
        "benchmark": "fanout",
        "seconds": seconds,
        "p99_limit_ms": P99_LIMIT_MS,
        "served_fraction": SERVED,
        "swarms": SWARMS,
        "machine": machine(),
        **figures,
        "steps": results,
    }
    path = write_json(result, json_path)
    result["json"] = str(path)
    result["png"] = str(fanout_png(results, path.with_suffix(".png")))
    return result


def headline(results: dict[str, dict[str, list[dict[str, Any]]]]) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    for ours, bare, key, bare_key in (
        ("gateway", "bare_sse", "gateway", "bare"),
        ("query", "bare_grpc", "query", "bare_grpc"),
    ):
        if ours not in results or bare not in results:
            continue
        mine, theirs = paired(results[ours].get("10hz", []), results[bare].get("10hz", []))
        figures[f"{key}_pushes_per_cpu_s"] = mine["pushes_per_cpu_s"] if mine else 0.0
        figures[f"{bare_key}_pushes_per_cpu_s"] = theirs["pushes_per_cpu_s"] if theirs else 0.0
        figures[f"{key}_pushes_per_cpu_s_at_followers"] = mine["followers"] if mine else 0
        figures[f"{key}_to_{bare_key}_pushes_per_cpu_s"] = rounded(
            figures[f"{key}_pushes_per_cpu_s"] / max(figures[f"{bare_key}_pushes_per_cpu_s"], 1), 3
        )
    for kind, name in (("gateway", "gateway"), ("bare_sse", "bare"), ("query", "query")):
        for hz in ("1hz", "10hz"):
            if kind in results:
                figures[f"{name}_max_followers_{hz}"] = largest_served(results[kind].get(hz, []))
    for kind in ("gateway", "query"):
        # the first step of the 1/s ramp: a crowd of STEPS[0] followers arriving at once
        first = results.get(kind, {}).get("1hz", [])
        if first:
            figures[f"{kind}_join_max_ms"] = first[0]["join_max_ms"]
            figures[f"{kind}_join_at_followers"] = first[0]["followers"]
    if "gateway" in results:
        steps = [s for hz in results["gateway"].values() for s in hz if s["served"]] or [
            s for hz in results["gateway"].values() for s in hz
        ]
        biggest = max(steps, key=lambda s: s["followers"], default=None)
        figures["rss_mb_per_1k_followers"] = (
            rounded((biggest["rss_mib"] - biggest["idle_rss_mib"]) / biggest["followers"] * 1000, 2)
            if biggest
            else 0.0
        )
    return figures


def fanout_png(results: dict[str, dict[str, list[dict[str, Any]]]], path: Path) -> Path:
    import matplotlib  # noqa: PLC0415 - only the benchmark needs it

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    fig, (latency, cost) = plt.subplots(1, 2, figsize=(12, 5))
    for kind, rates in results.items():
        for hz, steps in rates.items():
            followers = [s["followers"] for s in steps]
            label = f"{kind} {hz}"
            latency.plot(followers, [s["p99_ms"] for s in steps], marker="o", label=label)
            cost.plot(
                followers,
                [1e6 / s["pushes_per_cpu_s"] if s["pushes_per_cpu_s"] else None for s in steps],
                marker="o",
                label=label,
            )
    latency.axhline(P99_LIMIT_MS, color="grey", linestyle="--", linewidth=1)
    latency.set_ylabel("push p99 (ms, from each version's publication)")
    cost.set_ylabel("server CPU per push (µs)")
    for axis in (latency, cost):
        axis.set_xscale("log")
        axis.set_yscale("log")
        axis.set_xlabel("followers on one process")
        axis.grid(alpha=0.3)
        axis.legend(fontsize=7)
    fig.suptitle("fan-out: one process, followers in separate swarm processes")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
