"""The limits each stage is bounded by, measured raw on the same stack in the same run."""

from __future__ import annotations

import asyncio
import time
import uuid

import redis
from confluent_kafka import KafkaError, TopicPartition
from confluent_kafka.admin import NewTopic  # type: ignore[attr-defined]

from command_svc.worker.ledger import DynamoDBVoteLedger, LedgerEntry
from voting import dynamodb
from voting.config import Settings
from voting.kafka import KafkaClients, take_batch


def bench_topic(settings: Settings) -> str:
    """A topic of its own (the votes topic's partitions) for records no worker decides."""
    kafka = KafkaClients(settings.kafka, settings.topics)
    topic = f"bench-raw-{uuid.uuid4().hex[:6]}"
    admin = kafka.admin()
    for future in admin.create_topics([NewTopic(topic, settings.topics.partitions, 1)]).values():
        future.result()
    return topic


def raw_consume(settings: Settings, topic: str, expected: int) -> float:
    """Records/s a read_committed consumer reads a topic from the start to its end."""
    kafka = KafkaClients(settings.kafka, settings.topics)
    reader = kafka.reader(client_id=f"bench-raw-{uuid.uuid4().hex[:6]}")
    partitions = settings.topics.partitions
    reader.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    seen = 0
    at_end: set[int] = set()
    started = time.monotonic()
    while len(at_end) < partitions and time.monotonic() - started < 120:
        for msg in take_batch(reader, max_records=10_000, wait_s=1.0):
            err = msg.error()
            if err is None:
                seen += 1
            elif err.code() == KafkaError._PARTITION_EOF:
                at_end.add(msg.partition() or 0)
    elapsed = time.monotonic() - started
    reader.close()
    return max(seen, 0) / elapsed if seen >= expected * 0.99 else 0.0


async def raw_dynamodb_writes(settings: Settings, *, seconds: float, batch: int) -> float:
    """Accepted-vote writes/s through the worker's own ledger, as the worker writes:
    its concurrency, batches of its size, conditional transactions of 100."""
    async with dynamodb.client(settings.dynamodb) as ddb:
        ledger = DynamoDBVoteLedger(
            ddb, settings.dynamodb.votes_table, concurrency=settings.worker.dynamodb_concurrency
        )
        run = uuid.uuid4().hex[:8]
        written = 0
        started = time.monotonic()
        while time.monotonic() - started < seconds:
            entries = [
                LedgerEntry(
                    f"bench-{run}",
                    i % 16,
                    f"{run}-{written + i}",
                    str(uuid.uuid4()),
                    "a",
                    0,
                    0,
                    written + i,
                )
                for i in range(batch)
            ]
            await ledger.record(entries, 0)
            written += len(entries)
        return written / (time.monotonic() - started)


def run_raw_dynamodb(settings: Settings, *, seconds: float, batch: int) -> float:
    return asyncio.run(raw_dynamodb_writes(settings, seconds=seconds, batch=batch))


def raw_redis(settings: Settings, *, seconds: float) -> float:
    """Counter increments/s on Redis, pipelined 1000 at a time (the projector's kind of
    write: many HINCRBYs per round trip)."""
    client = redis.Redis.from_url(settings.redis.url)
    key = f"bench:raw:{uuid.uuid4().hex[:6]}"
    done = 0
    started = time.monotonic()
    try:
        while time.monotonic() - started < seconds:
            pipe = client.pipeline(transaction=False)
            for i in range(1000):
                pipe.hincrby(key, f"o{i % 8}", 1)
            pipe.execute()
            done += 1000
        return done / (time.monotonic() - started)
    finally:
        client.delete(key)
        client.close()
