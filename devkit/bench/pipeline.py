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
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import grpc
import redis.asyncio as aioredis

from devkit.bench import limits
from devkit.bench.environment import cpu_seconds, machine, peak_rss_mib, private_stack, write_json
from devkit.bench.load import LoadRecord, LoadSpec, VoteLoad
from devkit.bench.plot import timeline_png
from devkit.bench.polls import close_and_await_final, create_polls
from devkit.bench.progress import Progress
from devkit.bench.read import accepting, bare_server, collect_swarm, spawn_swarm, swarm
from devkit.bench.readers import read_load
from devkit.bench.stats import percentile, rounded
from devkit.process import ProcessSpec, spawn
from devkit.stack.components import free_port
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
    limit_s: float = 3.0  # each raw limit
    compare_s: float = 10.0  # each of the four CQRS/baseline runs
    readers: int = 32  # GetResults in flight, the heavy readers

    def planned_s(self) -> float:
        return 60 + 7 * self.limit_s + self.seconds * 1.5 + 4 * self.compare_s + 30


PROFILES = {
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
    settings = stack.settings()
    seconds = profile.limit_s
    progress.show("limits", "raw broker produce")
    produce_rate, topic, produced = limits.raw_produce(settings, seconds=seconds)
    progress.show("limits", "raw broker consume")
    consume_rate = limits.raw_consume(settings, topic, produced)
    progress.show("limits", "raw DynamoDB ledger writes")
    dynamodb_rate, concurrency = limits.run_raw_dynamodb(settings, seconds=seconds)
    progress.show("limits", "raw Redis increments")
    redis_rate = limits.raw_redis(settings, seconds=seconds)
    poll_id = create_polls(settings, 1, 3, prefix="limits")[0]
    progress.show("limits", "bare gRPC unary and broadcast")
    with bare_server(rate=10.0) as target:
        bare_unary = asyncio.run(read_load(target, "bench", seconds=seconds))
        bare_push = swarm(target, "bench", profile.watchers, seconds)
    progress.show("limits", "query service unary")
    query_unary = asyncio.run(read_load(settings.query.listen, poll_id, seconds=seconds))
    return {
        "raw_produce_per_s": rounded(produce_rate),
        "raw_consume_per_s": rounded(consume_rate),
        "raw_dynamodb_writes_per_s": rounded(dynamodb_rate),
        "raw_dynamodb_concurrency": concurrency,
        "raw_redis_increments_per_s": rounded(redis_rate),
        "bare_grpc_unary_per_s": rounded(bare_unary["reads_per_s"]),
        "bare_grpc_broadcast": {
            "subscribers": profile.watchers,
            "connected": bare_push["connected"],
            "pushes_per_s": rounded(bare_push["received"] / seconds),
            "p99_ms": rounded(bare_push["p99_ms"]),
        },
        "query_get_results_per_s": rounded(query_unary["reads_per_s"]),
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
        "watchers": {k: push[k] for k in ("subscribers", "connected", "failures", "received")},
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
    settings = stack.settings()
    seconds = profile.compare_s
    quiet, heavy = create_polls(settings, 2, len(OPTIONS), prefix="compare")
    figures: dict[str, Any] = {}
    progress.show("CQRS vs single model", "CQRS, quiet")
    figures["cqrs_write_per_s_quiet"], _ = write_rate(settings.command.listen, quiet, seconds)
    progress.show("CQRS vs single model", "CQRS, heavy reads")
    figures["cqrs_write_per_s_heavy_reads"], figures["cqrs_reads"] = write_rate(
        settings.command.listen, heavy, seconds, readers=(settings.query.listen, profile.readers)
    )
    with baseline_server(stack) as target:
        progress.show("CQRS vs single model", "baseline, quiet")
        figures["baseline_write_per_s_quiet"], _ = write_rate(target, "baseline-quiet", seconds)
        progress.show("CQRS vs single model", "baseline, heavy reads")
        figures["baseline_write_per_s_heavy_reads"], figures["baseline_reads"] = write_rate(
            target, "baseline-heavy", seconds, readers=(target, profile.readers)
        )
    return figures


def write_rate(
    target: str, poll_id: str, seconds: float, *, readers: tuple[str, int] | None = None
) -> tuple[float, dict[str, Any] | None]:
    """Acknowledged votes/s of the same write load (CastVotes of 100, 4 in flight), with
    heavy readers of the same poll in their own process if asked."""
    reader_proc = None
    if readers is not None:
        reader_target, in_flight = readers
        reader_proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "devkit.bench.readers",
                "--target",
                reader_target,
                "--poll",
                poll_id,
                "--seconds",
                str(seconds + 2),
                "--in-flight",
                str(in_flight),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        time.sleep(1.0)  # the readers are at full speed before the writes start
    load = VoteLoad(
        target,
        LoadSpec(
            polls=[poll_id], options=OPTIONS, batch=100, lanes=4, repeat_ratio=0.0, timeout_s=60
        ),
    )
    started = time.monotonic()
    asyncio.run(load.run(lambda: False, seconds=seconds))
    if load.record.refused:
        raise RuntimeError(f"{target} refused votes: {load.record.failure_codes}")
    rate = len(load.record.acks) / (time.monotonic() - started)
    reads = None
    if reader_proc is not None:
        reads = json.loads(reader_proc.communicate(timeout=120)[0])
        reads = {k: rounded(v) for k, v in reads.items()}
    return rounded(rate), reads


@contextlib.contextmanager
def baseline_server(stack: Stack) -> Iterator[str]:
    port = free_port()
    child = spawn(
        ProcessSpec(
            "baseline",
            [sys.executable, "-m", "devkit.bench.baseline", "--port", str(port)],
            env=stack.env(),
            log_path=stack.log_dir / "baseline.log",
        )
    )
    try:
        deadline = time.monotonic() + 60
        while not accepting(port):
            if not child.alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the baseline service did not start:\n{child.log_tail()}")
            time.sleep(0.2)
        yield f"127.0.0.1:{port}"
    finally:
        child.terminate(5)


def ratios(result: dict[str, Any]) -> dict[str, float]:
    limit = result["limits"]
    e2e = result["e2e_votes_per_s"]

    def ratio(a: float, b: float) -> float:
        return rounded(a / b, 3) if b else 0.0

    return {
        "e2e_to_raw_dynamodb_writes": ratio(e2e, limit["raw_dynamodb_writes_per_s"]),
        "e2e_to_raw_consume": ratio(e2e, limit["raw_consume_per_s"]),
        "e2e_to_raw_redis_increments": ratio(e2e, limit["raw_redis_increments_per_s"]),
        "acked_to_raw_produce": ratio(result["acked_votes_per_s"], limit["raw_produce_per_s"]),
        "query_unary_to_bare_grpc_unary": ratio(
            limit["query_get_results_per_s"], limit["bare_grpc_unary_per_s"]
        ),
        "push_p99_to_bare_grpc_push_p99": ratio(
            result["push_p99_ms"], limit["bare_grpc_broadcast"]["p99_ms"]
        ),
        "cqrs_to_baseline_quiet": ratio(
            result["cqrs_write_per_s_quiet"], result["baseline_write_per_s_quiet"]
        ),
        "cqrs_to_baseline_heavy_reads": ratio(
            result["cqrs_write_per_s_heavy_reads"], result["baseline_write_per_s_heavy_reads"]
        ),
        "cqrs_heavy_reads_to_quiet": ratio(
            result["cqrs_write_per_s_heavy_reads"], result["cqrs_write_per_s_quiet"]
        ),
        "baseline_heavy_reads_to_quiet": ratio(
            result["baseline_write_per_s_heavy_reads"], result["baseline_write_per_s_quiet"]
        ),
    }
