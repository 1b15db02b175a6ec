"""``devkit bench restore --records N``: how long a worker takes to restore a partition
whose changelog holds N records, from the start and from a checkpoint.

The changelog is filled as a long-lived partition's would be: polls opened, voted in,
closed (their voters tombstoned), one after another, and one poll still open with
``live`` voters. The local broker never compacts, so the first restore reads all N
records, as a worker without checkpoints always did. Then the live state is rewritten at
the end of the log, as a worker's commit does once the log has grown well past what is
live, and the restore starts from that checkpoint instead.
"""

from __future__ import annotations

import os
import struct
import time
from pathlib import Path
from typing import Any

from command_svc.worker.partition import Checkpoint, PartitionProcessor
from devkit.bench.environment import cpu_seconds, machine, private_stack, write_json
from devkit.bench.stats import rounded
from voting.kafka import KafkaClients

_OFFSET = struct.Struct(">q")
SEP = "\x1f"
VOTERS_PER_POLL = 50_000


def run(
    *, records: int = 10_000_000, live: int = 100_000, json_path: Path | None = None
) -> dict[str, Any]:
    with private_stack(partitions=1) as stack:
        settings = stack.settings()
        kafka = KafkaClients(settings.kafka, settings.topics)
        topic = settings.topics.dedup_changelog
        started = time.monotonic()
        written, committed = _fill(kafka, topic, records, live)
        fill_s = time.monotonic() - started
        full = _restore(kafka, settings, committed, None)
        state = full.pop("state")
        start = _rewrite(kafka, topic, state)
        checkpointed = _restore(kafka, settings, committed, Checkpoint(start, committed))
        checkpointed.pop("state")
    result = {
        "benchmark": "restore",
        "machine": machine(),
        "changelog_records": written,
        "live_voters": live,
        "fill_seconds": rounded(fill_s),
        "from_start": full,
        "from_checkpoint": checkpointed,
        "speedup": rounded(full["seconds"] / max(checkpointed["seconds"], 1e-6)),
    }
    result["json"] = str(write_json(result, json_path))
    return result


def _fill(kafka: KafkaClients, topic: str, records: int, live: int) -> tuple[int, int]:
    """Closed polls until about ``records`` records, then the live poll; returns how many
    records were written and an input offset every one of them is below."""
    producer = kafka.producer(client_id="bench-restore", **{"linger.ms": 50})
    offset = 0
    written = 0
    poll = 0

    def put(key: str, value: bytes | None) -> None:
        nonlocal written
        while True:
            try:
                producer.produce(topic, value, key.encode(), partition=0)
                break
            except BufferError:
                producer.poll(0.05)
        written += 1

    # Each closed poll costs a voter record and a tombstone per voter, plus its marker.
    while written + 2 * VOTERS_PER_POLL + 1 + live <= records:
        poll_id = f"closed-{poll}"
        for voter in range(VOTERS_PER_POLL):
            put(f"{poll_id}{SEP}{voter:032x}", _OFFSET.pack(offset) + b"v" * 36)
            offset += 1
        put(f"\x00closed{SEP}{poll_id}", _OFFSET.pack(offset))
        offset += 1
        for voter in range(VOTERS_PER_POLL):
            put(f"{poll_id}{SEP}{voter:032x}", None)
        poll += 1
    for voter in range(live):
        put(f"open{SEP}{voter:032x}", _OFFSET.pack(offset) + b"v" * 36)
        offset += 1
    assert producer.flush(120) == 0
    return written, offset + 1


def _restore(
    kafka: KafkaClients, settings: Any, committed: int, checkpoint: Checkpoint | None
) -> dict[str, Any]:
    proc = PartitionProcessor(
        partition=0, kafka=kafka, topics=settings.topics, group_id="bench-restore"
    )
    cpu = cpu_seconds(os.getpid())
    started = time.monotonic()
    proc.restore(committed, checkpoint)
    seconds = time.monotonic() - started
    return {
        "seconds": rounded(seconds),
        "cpu_seconds": rounded(cpu_seconds(os.getpid()) - cpu),
        "records_read": proc.since_checkpoint,
        "records_per_s": rounded(proc.since_checkpoint / seconds) if seconds else None,
        "voters": len(proc.state),
        "closed_polls": proc.state.entries - len(proc.state),
        "state": proc.state,
    }


def _rewrite(kafka: KafkaClients, topic: str, state: Any) -> int:
    """Writes the live state at the end of the log, as a checkpointing commit does;
    returns the offset of its first record."""
    producer = kafka.producer(client_id="bench-restore-rewrite", **{"linger.ms": 50})
    first: list[int] = []

    def remember(err: Any, msg: Any) -> None:
        if err is None and not first:
            first.append(msg.offset())

    for index, (key, value) in enumerate(state.rewrite()):
        while True:
            try:
                if index == 0:
                    producer.produce(topic, value, key, partition=0, on_delivery=remember)
                else:
                    producer.produce(topic, value, key, partition=0)
                break
            except BufferError:
                producer.poll(0.05)
        if index == 0:
            producer.flush(30)
    assert producer.flush(120) == 0
    return first[0]
