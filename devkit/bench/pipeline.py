"""``devkit bench --profile quick|standard``: the whole pipeline under one load, beside
the limits it runs against and the single-model design it replaces, in one run.

On one private local stack (every service and store a real process):

1. Limits: raw broker produce and consume, raw DynamoDB ledger writes (the worker's
   kind of write), raw Redis increments (the projector's), the bare gRPC server's unary
   calls and broadcast pushes (``bench.broadcast``), and the query service's unary
   GetResults for comparison.
2. Pipeline: the load generator (``bench.load``) casts votes flat out (or at a target
   rate) while ``watchers`` followers watch the first poll. "Flat out" keeps the backlog
   between acknowledged and counted votes bounded (``max_backlog``): otherwise the
   command service, many times faster than DynamoDB Local, would only measure how fast
   a queue grows. Figures: votes/s acknowledged and counted end to end, ack latency (per
   call), vote-to-visible latency (a vote is visible in the first pushed snapshot whose
   watermark covers its offset), push latency at the watchers, CPU seconds and peak RSS
   per process. Then the polls close and the recount must agree: ``exact``.
3. CQRS against the single-model baseline (``bench.baseline``): the same write load on
   each, quiet and beside heavy readers (``bench.readers``, their own process).

Writes ``bench/results/<timestamp>.json`` (or ``--json``) and a PNG beside it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import grpc
import redis.asyncio as aioredis

from devkit.bench import limits
from devkit.bench.environment import (
    cpu_seconds,
    machine,
    peak_rss_mib,
    private_stack,
    served,
    write_json,
)
from devkit.bench.load import LoadRecord, LoadSpec, VoteLoad, acked_rate
from devkit.bench.plot import timeline_png
from devkit.bench.polls import close_and_await_final, create_polls
from devkit.bench.progress import Progress
from devkit.bench.read import collect_swarm, spawn_swarm, swarm
from devkit.bench.readers import read_load
from devkit.bench.stats import percentile, rounded, windows
from devkit.stack.stack import Stack
from voting.config import Settings
from voting.readmodel import ACTIVE_KEY, DEFAULT_NAMESPACE, Keys
from voting.redis import text
from voting.v1 import query_service_pb2 as q
from voting.v1 import query_service_pb2_grpc

OPTIONS = ("o0", "o1", "o2")  # of the comparison's polls


@dataclass(frozen=True)
class Profile:
    name: str
    seconds: float  # of the pipeline load
    polls: int = 1
    options: int = 3
    voters: int = 1_000_000  # distinct voters per poll at most
    repeat_ratio: float = 0.1
    rate: float = 0.0  # votes/s; 0: flat out with a bounded backlog
    batch: int = 500  # votes per CastVotes call; 1: CastVote
    lanes: int = 4  # calls in flight
    watchers: int = 200
    # Flat out, acknowledged votes run ahead of counted ones by at most this many: enough
    # that no stage starves, small enough that vote-to-visible latency shows the pipeline
    # rather than a queue (at saturation it includes about max_backlog / rate of waiting).
    max_backlog: int = 5000
    limit_s: float = 3.0  # each window of each limit
    limit_windows: int = 3
    compare_s: float = 10.0  # each of the four CQRS/baseline runs
    readers: int = 32  # GetResults in flight, the heavy readers

    def planned_s(self) -> float:
        limits = (6 * self.limit_windows + 1) * self.limit_s
        return 60 + limits + self.seconds * 1.5 + 4 * (self.compare_s + 10) + 30


PROFILES = {
    # Seconds each, for CI: that every figure is produced, not what it is.
    "smoke": Profile(
        "smoke",
        seconds=5.0,
        batch=100,
        watchers=20,
        max_backlog=1000,
        limit_s=1.0,
        compare_s=3.0,
        readers=8,
    ),
    "quick": Profile("quick", seconds=40.0, batch=250, max_backlog=3000),
    "standard": Profile(
        "standard",
        seconds=120.0,
        polls=4,
        watchers=1000,
        max_backlog=8000,
        limit_s=6.0,
        compare_s=30.0,
        readers=64,
    ),
}


def run(
    *, profile: str = "quick", json_path: Path | None = None, **overrides: Any
) -> dict[str, Any]:
    chosen = replace(PROFILES[profile], **{k: v for k, v in overrides.items() if v is not None})
    progress = Progress(chosen.planned_s())
    services = ("command", "worker", "projector", "query")
    progress.show("starting the local stack")
    with private_stack(services=services) as stack:
        settings = stack.settings()
        limit_figures = measure_limits(stack, chosen, progress)
        figures = asyncio.run(measure_pipeline(stack, chosen, progress))
        compared = compare(stack, chosen, progress)
    progress.done()
    timeline = figures.pop("timeline")
    result: dict[str, Any] = {
        "benchmark": "pipeline",
        "profile": asdict(chosen),
        "machine": machine(),
        "partitions": settings.topics.partitions,
        **figures,
        "limits": limit_figures,
        **compared,
    }
    result["ratios"] = ratios(result)
    # Fast and wrong is a failure: the command exits non-zero.
    result["ok"] = bool(result["exact"] and result["cqrs_exact"] and result["baseline_exact"])
    result["timeline"] = timeline
    path = write_json(result, json_path)
    result["json"] = str(path)
    result["plot"] = str(
        timeline_png(
            timeline,
            f"devkit bench --profile {chosen.name}: {result['e2e_votes_per_s']:.0f} votes/s "
            f"end to end, {chosen.watchers} watchers ({machine()['cpus']} CPUs)",
            path.with_suffix(".png"),
        )
    )
    write_json(result, path)
    return result


# -- 1. limits ---------------------------------------------------------------------------


def measure_limits(stack: Stack, profile: Profile, progress: Progress) -> dict[str, Any]:
    """Each limit as the stage it bounds runs: the same records, batch, concurrency and
    process count, on the same stack with the services up and idle; the median of
    ``limit_windows`` windows, with the spread."""
    settings = stack.settings()
    seconds, count = profile.limit_s, profile.limit_windows
    topic = limits.bench_topic(settings)
    spec = LoadSpec(
        polls=["limits"],
        options=OPTIONS,
        voters=profile.voters,
        repeat_ratio=profile.repeat_ratio,
        batch=profile.batch,
        lanes=profile.lanes,
    )
    produced = 0

    def bare_batch() -> float:
        nonlocal produced
        rate, load = acked_rate(bare.address, spec, seconds)
        produced += len(load.record.acks)
        return rate

    progress.show("limits", "bare batch server (CastVotes produced as the command service does)")
    with served(stack, "bare", "--topic", topic) as bare:
        bare_batch_rate = windows(bare_batch, count)
    progress.show("limits", "raw broker consume of those records")
    consume = windows(lambda: limits.raw_consume(settings, topic, produced), count)
    progress.show("limits", "raw DynamoDB ledger writes")
    batch_max = settings.worker.batch_max
    # DynamoDB Local's JIT warms up: its first window is several times slower.
    dynamodb_rate = windows(
        lambda: limits.run_raw_dynamodb(settings, seconds=seconds, batch=batch_max),
        count,
        warmup=1,
    )
    progress.show("limits", "raw Redis increments")
    redis_rate = windows(lambda: limits.raw_redis(settings, seconds=seconds), count)
    poll_id = create_polls(settings, 1, len(OPTIONS), prefix="limits")[0]
    progress.show("limits", "bare gRPC unary and broadcast")
    with served(None, "broadcast", "--rate", "10") as broadcast:
        bare_unary = windows(
            lambda: asyncio.run(read_load(broadcast.address, "bench", seconds=seconds))[
                "reads_per_s"
            ],
            count,
        )
        bare_push = swarm(broadcast.address, "bench", profile.watchers, seconds)
    progress.show("limits", "query service unary")
    query_unary = windows(
        lambda: asyncio.run(read_load(settings.query.listen, poll_id, seconds=seconds))[
            "reads_per_s"
        ],
        count,
    )
    background = "command, worker, projector, query service up and idle"
    return {
        "bare_batch_server_votes_per_s": {
            **bare_batch_rate,
            "conditions": {
                "what": "CastVotes parsed, VoteCast records built and produced with the "
                "command service's producer settings and headers, acknowledged per vote",
                "batch": profile.batch,
                "calls_in_flight": profile.lanes,
                "processes": 1,
                "window_s": seconds,
                "background": background,
            },
        },
        "raw_consume_per_s": {
            **consume,
            "conditions": {
                "what": "read_committed read of the bare server's records, start to end",
                "processes": 1,
                "records": produced,
            },
        },
        "raw_dynamodb_writes_per_s": {
            **dynamodb_rate,
            "conditions": {
                "what": "the worker's own ledger (conditional transactions of 100)",
                "concurrency": settings.worker.dynamodb_concurrency,
                "batch": batch_max,
                "window_s": seconds,
                "background": background,
            },
        },
        "raw_redis_increments_per_s": {
            **redis_rate,
            "conditions": {
                "what": "HINCRBY pipelined 1000 per round trip, one client",
                "window_s": seconds,
            },
        },
        "bare_grpc_unary_per_s": {
            **bare_unary,
            "conditions": {
                "what": "GetResults of a pre-serialized 3-option snapshot (bench/broadcast)",
                "in_flight": 64,
                "window_s": seconds,
            },
        },
        "query_get_results_per_s": {
            **query_unary,
            "conditions": {
                "what": "the query service's GetResults of a 3-option poll",
                "in_flight": 64,
                "window_s": seconds,
            },
        },
        "bare_grpc_broadcast": {
            "subscribers": profile.watchers,
            "connected": bare_push["connected"],
            "pushes_per_s": rounded(bare_push["received"] / seconds),
            "p99_ms": rounded(bare_push["p99_ms"]),
            "conditions": {"updates_per_s": 10, "seconds": seconds, "swarm_processes": 2},
        },
    }


# -- 2. the pipeline ----------------------------------------------------------------------


async def measure_pipeline(stack: Stack, profile: Profile, progress: Progress) -> dict[str, Any]:
    settings = stack.settings()
    options = tuple(f"o{i}" for i in range(profile.options))
    polls = create_polls(settings, profile.polls, profile.options, prefix="pipeline")
    swarm_procs = spawn_swarm(
        settings.query.listen, polls[0], profile.watchers, profile.seconds, warmup_s=2.0
    )
    load = VoteLoad(
        settings.command.listen,
        LoadSpec(
            polls=polls,
            options=options,
            voters=profile.voters,
            repeat_ratio=profile.repeat_ratio,
            batch=profile.batch,
            lanes=profile.lanes,
            rate=profile.rate,
        ),
    )
    client = aioredis.from_url(settings.redis.url)
    keys = Keys(text(await client.get(ACTIVE_KEY)) or DEFAULT_NAMESPACE)
    counted = 0
    samples: list[tuple[float, int]] = []
    snapshots: list[tuple[float, dict[int, int]]] = []

    async def count() -> int:
        pipe = client.pipeline(transaction=False)
        for poll_id in polls:
            pipe.hvals(keys.counts(poll_id))
        return sum(int(v) for values in await pipe.execute() for v in values)

    async def monitor() -> None:
        nonlocal counted
        while True:
            counted = await count()
            samples.append((time.monotonic(), counted))
            progress.show("pipeline", f"{len(load.record.acks)} acknowledged, {counted} counted")
            await asyncio.sleep(0.2)

    async def watch() -> None:
        async with grpc.aio.insecure_channel(settings.query.listen) as channel:
            stub: Any = query_service_pb2_grpc.QueryServiceStub(channel)
            async for message in stub.WatchResults(q.WatchResultsRequest(poll_id=polls[0])):
                marks = {w.partition: w.offset for w in message.results.watermark}
                snapshots.append((time.monotonic(), marks))

    if profile.rate <= 0:
        load.gate = lambda: load.record.accepted_expected - counted <= profile.max_backlog
    usage_before = usage(stack)
    await asyncio.sleep(3.0)  # the watchers connect and warm up
    tasks = [asyncio.create_task(monitor()), asyncio.create_task(watch())]
    started = time.monotonic()
    await load.run(lambda: False, seconds=profile.seconds)
    load_ended = time.monotonic()
    expected = load.record.accepted_expected
    deadline = time.monotonic() + 180
    while counted < expected and time.monotonic() < deadline:
        progress.show("pipeline", f"draining: {counted} of {expected} counted")
        await asyncio.sleep(0.2)
    drained_at = next((t for t, c in samples if c >= expected), time.monotonic())
    await asyncio.sleep(1.0)  # the last snapshot reaches the watcher
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await client.aclose()
    usage_after = usage(stack)
    push = collect_swarm(swarm_procs, profile.watchers)
    progress.show("pipeline", "closing the polls; recount")
    exact = finalize(settings, polls, options, load.record)

    record = load.record
    call_ms = [(c.ended - c.started) * 1000 for c in record.calls if c.ok]
    visible = record.visibility(polls[0], snapshots)
    elapsed = drained_at - started
    return {
        "e2e_votes_per_s": rounded(expected / elapsed if elapsed > 0 else 0.0),
        "acked_votes_per_s": rounded(len(record.acks) / (load_ended - started)),
        "ack_p50_ms": rounded(percentile(call_ms, 50)),
        "ack_p99_ms": rounded(percentile(call_ms, 99)),
        "ack_latency_is_per": "CastVote call" if profile.batch == 1 else "CastVotes call",
        "visible_p50_ms": rounded(percentile([v for _, v in visible], 50)),
        "visible_p99_ms": rounded(percentile([v for _, v in visible], 99)),
        "push_p50_ms": rounded(push["p50_ms"]),
        "push_p99_ms": rounded(push["p99_ms"]),
        "watchers": {
            **{k: push[k] for k in ("subscribers", "connected", "failures", "received")},
            # Updates each watcher received per second, as measured (the query service
            # coalesces changes to at most VOTING_WATCH_MAX_UPDATES_PER_S).
            "delivered_per_s_each": rounded(
                push["received"] / max(push["connected"], 1) / profile.seconds, 2
            ),
        },
        "votes_acknowledged": len(record.acks),
        "votes_accepted": expected,
        "votes_repeated": len(record.acks) - expected,
        "retried_calls": record.attempts_failed,
        "votes_refused": record.refused,
        "processes": {
            name: {
                "cpu_s": rounded(usage_after[name][0] - usage_before[name][0]),
                "cpu_share": rounded(
                    (usage_after[name][0] - usage_before[name][0]) / (drained_at - started), 2
                ),
                "peak_rss_mib": rounded(usage_after[name][1]),
            }
            for name in usage_after
            if name in usage_before
        },
        **exact,
        "timeline": timeline(record, samples, visible, started),
    }


def finalize(
    settings: Settings, polls: list[str], options: tuple[str, ...], record: LoadRecord
) -> dict[str, Any]:
    """Closes the polls and waits for FINAL: exact when every final tally equals the
    ground truth and the recount found the live count equal to DynamoDB's."""
    finals = close_and_await_final(settings, polls)
    checks = {}
    for poll_id in polls:
        results = finals.get(poll_id)
        final = {c.option_id: c.votes for c in results.counts} if results else {}
        checks[poll_id] = {
            "final": bool(results and results.final),
            "equals_truth": {o: final.get(o, 0) for o in options}
            == record.truth_counts(poll_id, options),
            "live_matched_recount": bool(results and results.recount.matched),
        }
    exact = all(all(c.values()) for c in checks.values())
    return {"exact": exact, "exact_by_poll": checks}


def timeline(
    record: LoadRecord,
    samples: list[tuple[float, int]],
    visible: list[tuple[float, float]],
    started: float,
) -> list[dict[str, Any]]:
    acked: dict[int, int] = defaultdict(int)
    for ack in record.acks:
        acked[int(ack.at - started)] += 1
    call_ms: dict[int, list[float]] = defaultdict(list)
    for call in record.calls:
        if call.ok:
            call_ms[int(call.ended - started)].append((call.ended - call.started) * 1000)
    seen_ms: dict[int, list[float]] = defaultdict(list)
    for at, ms in visible:
        seen_ms[int(at - started)].append(ms)
    counted_at: dict[int, int] = {}
    for at, value in samples:
        counted_at[int(at - started)] = value
    end = max([*acked, *counted_at, 0])
    rows = []
    previous = 0
    for second in range(end + 1):
        current = counted_at.get(second, previous)
        rows.append(
            {
                "t": second,
                "acked_per_s": acked.get(second, 0),
                "counted_per_s": current - previous,
                "ack_p99_ms": rounded(percentile(call_ms[second], 99)) if call_ms[second] else None,
                "visible_p50_ms": (
                    rounded(percentile(seen_ms[second], 50)) if seen_ms[second] else None
                ),
                "visible_p99_ms": (
                    rounded(percentile(seen_ms[second], 99)) if seen_ms[second] else None
                ),
            }
        )
        previous = current
    return rows


def usage(stack: Stack) -> dict[str, tuple[float, float]]:
    """CPU seconds so far and peak RSS (MiB) of every process of the stack."""
    figures = {}
    for name, child in stack.children.items():
        with contextlib.suppress(OSError):
            figures[name] = (cpu_seconds(child.pid), peak_rss_mib(child.pid))
    return figures


# -- 3. CQRS against the single-model baseline ---------------------------------------------


def compare(stack: Stack, profile: Profile, progress: Progress) -> dict[str, Any]:
    """The same load on each design, quiet and beside heavy readers, alternating so that
    neither gets the fresher box; each run is drained, closed and checked before the next
    starts, so no run shares the stores with the previous one's backlog."""
    settings = stack.settings()
    figures: dict[str, Any] = {"runs_order": []}
    exact: dict[str, list[bool]] = {"cqrs": [], "baseline": []}
    with served(stack, "baseline") as server:
        baseline = server.address
        designs = {
            "baseline": (baseline, baseline),
            "cqrs": (settings.command.listen, settings.query.listen),
        }
        for condition in ("quiet", "heavy_reads"):
            for design, endpoints in designs.items():
                run = f"{design}_{condition}"
                progress.show("CQRS vs single model", run.replace("_", ", ", 1))
                measured = counted_run(
                    settings,
                    endpoints,
                    profile,
                    readers=profile.readers if condition == "heavy_reads" else 0,
                    await_read_side=design == "cqrs",
                )
                figures["runs_order"].append(run)
                figures[f"{design}_counted_per_s_{condition}"] = measured["counted_per_s"]
                figures[f"{design}_acked_per_s_{condition}"] = measured["acked_per_s"]
                if measured["reads"] is not None:
                    figures[f"{design}_reads"] = measured["reads"]
                figures[f"{run}_exact"] = measured["exact"]
                exact[design].append(measured["exact"])
    figures["cqrs_exact"] = all(exact["cqrs"])
    figures["baseline_exact"] = all(exact["baseline"])
    figures["compare_load"] = {
        "seconds": profile.compare_s,
        "batch": profile.batch,
        "lanes": profile.lanes,
        "voters": profile.voters,
        "repeat_ratio": profile.repeat_ratio,
        "options": len(OPTIONS),
        "max_backlog": profile.max_backlog,
        "readers_in_flight": profile.readers,
        "counted": "accepted votes readable by GetResults, from the first call to the "
        "moment the last one was, over that time",
    }
    return figures


def counted_run(
    settings: Settings,
    endpoints: tuple[str, str],
    profile: Profile,
    *,
    readers: int,
    await_read_side: bool,
) -> dict[str, Any]:
    """Votes/s counted: from the first call until GetResults shows every accepted vote
    (for the baseline that is the last acknowledgement; for CQRS, the last vote through
    the worker and the projector). Then the poll is closed and its FINAL checked against
    the truth."""
    commands_at, queries_at = endpoints
    (poll_id,) = create_polls(
        settings,
        1,
        len(OPTIONS),
        prefix="compare",
        await_read_side=await_read_side,
        endpoints=endpoints,
    )
    reader_proc = spawn_readers(queries_at, poll_id, profile.compare_s + 2, readers)
    load = VoteLoad(
        commands_at,
        LoadSpec(
            polls=[poll_id],
            options=OPTIONS,
            voters=profile.voters,
            repeat_ratio=profile.repeat_ratio,
            batch=profile.batch,
            lanes=profile.lanes,
            timeout_s=60,
        ),
    )
    counted = 0

    async def measure() -> tuple[float, float, float]:
        nonlocal counted
        load_ended: float | None = None
        all_counted = asyncio.Event()
        async with grpc.aio.insecure_channel(queries_at) as channel:
            stub: Any = query_service_pb2_grpc.QueryServiceStub(channel)

            async def monitor() -> None:
                nonlocal counted
                while True:
                    with contextlib.suppress(grpc.aio.AioRpcError):
                        request = q.GetResultsRequest(poll_id=poll_id)
                        counted = (await stub.GetResults(request, timeout=10)).results.total
                    if load_ended is not None and counted >= load.record.accepted_expected:
                        all_counted.set()
                    await asyncio.sleep(0.05)

            task = asyncio.create_task(monitor())
            load.gate = lambda: load.record.accepted_expected - counted <= profile.max_backlog
            started = time.monotonic()
            await load.run(lambda: False, seconds=profile.compare_s)
            load_ended = time.monotonic()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(all_counted.wait(), timeout=180)
            drained = time.monotonic()
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            return started, load_ended, drained

    started, load_ended, drained = asyncio.run(measure())
    if load.record.refused:
        raise RuntimeError(f"{commands_at} refused votes: {load.record.failure_codes}")
    reads = None
    if reader_proc is not None:
        reads = {
            k: rounded(v) for k, v in json.loads(reader_proc.communicate(timeout=120)[0]).items()
        }
    finals = close_and_await_final(settings, [poll_id], endpoints=endpoints)
    final = finals.get(poll_id)
    truth = load.record.truth_counts(poll_id, OPTIONS)
    exact = bool(
        final
        and final.final
        and {c.option_id: c.votes for c in final.counts} == truth
        and (not await_read_side or final.recount.matched)
    )
    return {
        "counted_per_s": rounded(load.record.accepted_expected / (drained - started)),
        "acked_per_s": rounded(len(load.record.acks) / (load_ended - started)),
        "reads": reads,
        "exact": exact,
    }


def spawn_readers(
    target: str, poll_id: str, seconds: float, in_flight: int
) -> subprocess.Popen[str] | None:
    """Heavy readers of the poll in their own process, at full speed before the writes."""
    if in_flight <= 0:
        return None
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "devkit.bench.readers",
            "--target",
            target,
            "--poll",
            poll_id,
            "--seconds",
            str(seconds),
            "--in-flight",
            str(in_flight),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    time.sleep(1.0)
    return proc


def ratios(result: dict[str, Any]) -> dict[str, float]:
    limit = {k: v["median"] for k, v in result["limits"].items() if "median" in v}
    e2e = result["e2e_votes_per_s"]

    def ratio(a: float, b: float) -> float:
        return rounded(a / b, 3) if b else 0.0

    return {
        "e2e_to_raw_dynamodb_writes": ratio(e2e, limit["raw_dynamodb_writes_per_s"]),
        "e2e_to_raw_consume": ratio(e2e, limit["raw_consume_per_s"]),
        "e2e_to_raw_redis_increments": ratio(e2e, limit["raw_redis_increments_per_s"]),
        "acked_to_bare_batch_server": ratio(
            result["acked_votes_per_s"], limit["bare_batch_server_votes_per_s"]
        ),
        "query_unary_to_bare_grpc_unary": ratio(
            limit["query_get_results_per_s"], limit["bare_grpc_unary_per_s"]
        ),
        "push_p99_to_bare_grpc_push_p99": ratio(
            result["push_p99_ms"], result["limits"]["bare_grpc_broadcast"]["p99_ms"]
        ),
        "cqrs_to_baseline_counted_quiet": ratio(
            result["cqrs_counted_per_s_quiet"], result["baseline_counted_per_s_quiet"]
        ),
        "cqrs_to_baseline_counted_heavy_reads": ratio(
            result["cqrs_counted_per_s_heavy_reads"], result["baseline_counted_per_s_heavy_reads"]
        ),
        "cqrs_heavy_reads_to_quiet": ratio(
            result["cqrs_counted_per_s_heavy_reads"], result["cqrs_counted_per_s_quiet"]
        ),
        "baseline_heavy_reads_to_quiet": ratio(
            result["baseline_counted_per_s_heavy_reads"], result["baseline_counted_per_s_quiet"]
        ),
    }
