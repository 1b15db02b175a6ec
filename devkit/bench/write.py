"""``devkit bench write``: the write side's figures beside the limits of its stores.

Phases, on one private stack:
1. limits: raw produce and consume rates of the broker, and the raw rate of the
   worker's kind of DynamoDB write;
2. bulk ingest: CastVotes of 1000 votes, several in flight, with the worker stopped so
   the command service has the machine;
3. unary ingest: CastVote with 64 in flight; acknowledgement latency;
4. the worker started on that backlog: votes decided per second (from its committed
   offsets; the broker's end offsets are not trusted).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from confluent_kafka import TopicPartition

from devkit.bench import limits
from devkit.bench.environment import machine, private_stack, write_json
from devkit.bench.load import LoadSpec, VoteLoad
from devkit.bench.polls import create_polls
from devkit.bench.stats import percentile, rounded
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


def worker_rate(settings: Settings, backlog: int, *, seconds: float) -> float:
    """Votes/s the worker decides while it drains ``backlog`` input records."""
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
        return 0.0
    return (last[1] - first[1]) / (last[0] - first[0])


def ingest(settings: Settings, seconds: float) -> dict[str, Any]:
    target = settings.command.listen
    (poll_id,) = create_polls(settings, 1, len(OPTIONS), prefix="write", await_read_side=False)

    def load(batch: int, lanes: int, seconds: float) -> tuple[VoteLoad, float]:
        spec = LoadSpec(
            polls=[poll_id], options=OPTIONS, batch=batch, lanes=lanes, repeat_ratio=0.0
        )
        vote_load = VoteLoad(target, spec)
        started = time.monotonic()
        asyncio.run(vote_load.run(lambda: False, seconds=seconds))
        return vote_load, len(vote_load.record.acks) / (time.monotonic() - started)

    warm, _ = load(1, 64, 1.0)  # warm up caches and connections
    bulk, bulk_rate = load(1000, 4, seconds * 0.4)
    unary, unary_rate = load(1, 64, seconds * 0.2)
    latencies = [(c.ended - c.started) * 1000 for c in unary.record.calls if c.ok]
    next_offset: dict[int, int] = {}
    for ack in (*warm.record.acks, *bulk.record.acks, *unary.record.acks):
        next_offset[ack.partition] = max(next_offset.get(ack.partition, 0), ack.offset + 1)
    return {
        "acknowledged_votes": sum(len(v.record.acks) for v in (warm, bulk, unary)),
        "backlog": sum(next_offset.values()),
        "ingest_bulk_votes_per_s": bulk_rate,
        "ingest_unary_votes_per_s": unary_rate,
        "ack_p50_ms": percentile(latencies, 50),
        "ack_p99_ms": percentile(latencies, 99),
    }


def run(*, seconds: float, json_path: Path | None) -> dict[str, Any]:
    with private_stack(services=("command",)) as stack:
        settings = stack.settings()
        produce_rate, topic, produced = limits.raw_produce(settings, seconds=seconds * 0.1)
        consume_rate = limits.raw_consume(settings, topic, produced)
        dynamodb_rate, dynamodb_concurrency = limits.run_raw_dynamodb(
            settings, seconds=seconds * 0.15
        )
        measured = ingest(settings, seconds)
        acknowledged, backlog = measured.pop("acknowledged_votes"), measured.pop("backlog")
        stack.start_services(["worker"])
        decided_rate = worker_rate(settings, backlog, seconds=seconds * 0.3)
    figures: dict[str, Any] = {
        "benchmark": "write",
        "seconds": seconds,
        "machine": machine(),
        **{k: rounded(v) for k, v in measured.items()},
        "worker_votes_per_s": rounded(decided_rate),
        "raw_produce_per_s": rounded(produce_rate),
        "raw_consume_per_s": rounded(consume_rate),
        "raw_dynamodb_writes_per_s": rounded(dynamodb_rate),
        "raw_dynamodb_concurrency": dynamodb_concurrency,
        "acknowledged_votes": acknowledged,
    }
    figures["ratios"] = {
        "ingest_bulk_to_raw_produce": rounded(
            measured["ingest_bulk_votes_per_s"] / max(produce_rate, 1), 3
        ),
        "ingest_unary_to_raw_produce": rounded(
            measured["ingest_unary_votes_per_s"] / max(produce_rate, 1), 3
        ),
        "worker_to_raw_dynamodb": rounded(decided_rate / max(dynamodb_rate, 1), 3),
        "worker_to_raw_consume": rounded(decided_rate / max(consume_rate, 1), 3),
    }
    figures["json"] = str(write_json(figures, json_path))
    return figures
