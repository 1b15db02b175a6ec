"""``devkit bench write``: the write side's figures beside anchors measured like for like.

On one private stack, with the worker stopped so the command service has the machine:
1. the raw rate of the worker's kind of DynamoDB write (its ledger, concurrency, batch);
2. window by window in turn, the command service and the bare anchors (``bench.bare``)
   under the same loads: CastVotes of 1000 (4 in flight) against a bare server that
   produces the same records with the same producer settings; CastVote (64 in flight)
   against a bare unary echo; CPU per vote of each serving process;
3. the worker started on the command service's backlog: votes decided per second (from
   its committed offsets; the broker's end offsets are not trusted) and its CPU per
   decided record; then a raw read_committed read of the same topic.
"""

from __future__ import annotations

import statistics
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from confluent_kafka import TopicPartition

from devkit.bench import limits, stats
from devkit.bench.environment import cpu_seconds, machine, private_stack, served, write_json
from devkit.bench.load import LoadSpec, acked_rate
from devkit.bench.polls import create_polls
from devkit.bench.stats import percentile, rounded
from devkit.stack.stack import Stack
from voting.config import Settings
from voting.kafka import KafkaClients

OPTIONS = ("o0", "o1", "o2")


def committed_total(settings: Settings) -> int:
    kafka = KafkaClients(settings.kafka, settings.topics)
    probe = kafka.consumer(group_id=settings.worker.group_id, client_id="bench-lag-probe")
    tps = [TopicPartition(settings.topics.votes, p) for p in range(settings.topics.partitions)]
    committed = probe.committed(tps, timeout=10)
    probe.close()
    return sum(max(tp.offset, 0) for tp in committed)


def worker_rate(settings: Settings, backlog: int, *, seconds: float) -> tuple[float, int]:
    """Votes/s the worker decides while it drains ``backlog`` input records, and how
    many it decided from the start."""
    first: tuple[float, int] | None = None
    last = (time.monotonic(), 0)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        done = committed_total(settings)
        now = time.monotonic()
        if done > 0 and first is None:
            first = (now, done)
        last = (now, done)
        if done >= backlog or (first is not None and now - first[0] >= seconds):
            break
        time.sleep(0.5)
    if first is None or last[0] <= first[0]:
        return 0.0, last[1]
    return (last[1] - first[1]) / (last[0] - first[0]), last[1]


def ingest(stack: Stack, seconds: float, count: int) -> dict[str, Any]:
    """The command service and the bare anchors (``bench.bare``) under the same loads,
    window by window in turn: CastVotes of 1000 with 4 in flight against the bare batch
    server; CastVote with 64 in flight against the bare unary echo. CPU per vote is the
    serving process's own (from /proc), over the same window."""
    settings = stack.settings()
    (poll_id,) = create_polls(settings, 1, len(OPTIONS), prefix="write", await_read_side=False)
    command = settings.command.listen, stack.children["command"].pid
    loads = {
        "bulk": LoadSpec(polls=[poll_id], options=OPTIONS, batch=1000, lanes=4, repeat_ratio=0.0),
        "unary": LoadSpec(polls=[poll_id], options=OPTIONS, batch=1, lanes=64, repeat_ratio=0.0),
    }
    rates: dict[str, list[float]] = defaultdict(list)
    cpu_us: dict[str, list[float]] = defaultdict(list)
    latencies: list[float] = []
    next_offset: dict[int, int] = {}
    acknowledged = 0
    with served(stack, "bare", "--topic", limits.bench_topic(settings)) as bare:
        acked_rate(command[0], loads["unary"], 1.0)  # warm up caches and connections
        acked_rate(bare.address, loads["unary"], 1.0)
        for _ in range(count):
            for kind, spec in loads.items():
                window = seconds * (0.2 if kind == "bulk" else 0.1)
                for name, (target, pid) in (
                    ("command", command),
                    ("bare", (bare.address, bare.pid)),
                ):
                    before = cpu_seconds(pid)
                    rate, load = acked_rate(target, spec, window)
                    votes = len(load.record.acks)
                    rates[f"{name}_{kind}"].append(rate)
                    cpu_us[f"{name}_{kind}"].append(
                        (cpu_seconds(pid) - before) / max(votes, 1) * 1e6
                    )
                    if name == "command":
                        acknowledged += votes
                        for ack in load.record.acks:
                            next_offset[ack.partition] = max(
                                next_offset.get(ack.partition, 0), ack.offset + 1
                            )
                        if kind == "unary":
                            latencies += [
                                (c.ended - c.started) * 1000 for c in load.record.calls if c.ok
                            ]
    median = {k: statistics.median(v) for k, v in rates.items()}
    return {
        "acknowledged_votes": acknowledged,
        "backlog": sum(next_offset.values()),
        "ingest_bulk_votes_per_s": median["command_bulk"],
        "ingest_unary_votes_per_s": median["command_unary"],
        "bare_batch_server_votes_per_s": median["bare_bulk"],
        "bare_unary_per_s": median["bare_unary"],
        "windows": {k: [rounded(x) for x in v] for k, v in rates.items()},
        "cpu_us_per_vote": {k: rounded(statistics.median(v)) for k, v in cpu_us.items()},
        "ack_p50_ms": percentile(latencies, 50),
        "ack_p99_ms": percentile(latencies, 99),
    }


def run(*, seconds: float, json_path: Path | None, windows: int = 3) -> dict[str, Any]:
    with private_stack(services=("command",)) as stack:
        settings = stack.settings()
        limit_s = max(seconds * 0.1, 2.0)

        def raw_dynamodb() -> float:
            return limits.run_raw_dynamodb(
                settings, seconds=limit_s, batch=settings.worker.batch_max
            )

        # DynamoDB Local's JIT warms up: its first window is several times slower.
        dynamodb_rate = stats.windows(raw_dynamodb, windows, warmup=1)
        measured = ingest(stack, seconds / windows, windows)
        acknowledged, backlog = measured.pop("acknowledged_votes"), measured.pop("backlog")
        stack.start_services(["worker"])
        worker_pid = stack.children["worker"].pid
        cpu_before = cpu_seconds(worker_pid)
        decided_rate, decided = worker_rate(settings, backlog, seconds=seconds * 0.3)
        worker_cpu_s = cpu_seconds(worker_pid) - cpu_before
        consume = stats.windows(
            lambda: limits.raw_consume(settings, settings.topics.votes, backlog), windows
        )
    cpu = measured.pop("cpu_us_per_vote")
    figures: dict[str, Any] = {
        "benchmark": "write",
        "seconds": seconds,
        "machine": machine(),
        **{k: rounded(v) if isinstance(v, float) else v for k, v in measured.items()},
        "cpu_us_per_vote": cpu,
        "worker_votes_per_s": rounded(decided_rate),
        "worker_cpu_us_per_record": rounded(worker_cpu_s / max(decided, 1) * 1e6),
        "worker_records_per_cpu_s": rounded(decided / worker_cpu_s if worker_cpu_s else 0.0),
        "raw_consume_per_s": consume,
        "raw_dynamodb_writes_per_s": dynamodb_rate,
        "conditions": {
            "bulk": "CastVotes of 1000, 4 in flight, one client process",
            "unary": "CastVote, 64 in flight, one client process",
            "windows": windows,
            "order": "command bulk, bare bulk, command unary, bare unary; repeated",
            "worker": "started on the command service's backlog; CPU from /proc over the "
            "drain, records decided from its committed offsets",
            "raw_dynamodb": f"the worker's ledger, concurrency "
            f"{settings.worker.dynamodb_concurrency}, batches of {settings.worker.batch_max}",
            "raw_consume": "read_committed, the votes topic start to end, after the worker",
        },
        "acknowledged_votes": acknowledged,
    }
    figures["ratios"] = {
        "castvotes_to_bare_batch_server": rounded(
            measured["ingest_bulk_votes_per_s"] / max(measured["bare_batch_server_votes_per_s"], 1),
            3,
        ),
        "castvote_to_bare_unary": rounded(
            measured["ingest_unary_votes_per_s"] / max(measured["bare_unary_per_s"], 1), 3
        ),
        "worker_to_raw_dynamodb": rounded(decided_rate / max(dynamodb_rate["median"], 1), 3),
        "worker_to_raw_consume": rounded(decided_rate / max(consume["median"], 1), 3),
    }
    figures["json"] = str(write_json(figures, json_path))
    return figures
