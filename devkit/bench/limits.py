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

PAYLOAD = b"x" * 120  # about the size of a VoteCast record


def raw_produce(settings: Settings, *, seconds: float) -> tuple[float, str, int]:
    """Records/s an idempotent acks=all producer gets acknowledged; the topic and count."""
    kafka = KafkaClients(settings.kafka, settings.topics)
    topic = f"bench-raw-{uuid.uuid4().hex[:6]}"
    partitions = settings.topics.partitions
    admin = kafka.admin()
    for future in admin.create_topics([NewTopic(topic, partitions, 1)]).values():
        future.result()
    producer = kafka.producer(client_id="bench-raw")
    delivered = 0

    def on_delivery(err: KafkaError | None, _: object) -> None:
        nonlocal delivered
        if err is None:
            delivered += 1

    started = time.monotonic()
    sent = 0
    while time.monotonic() - started < seconds:
        for _ in range(1000):
            try:
                producer.produce(topic, PAYLOAD, str(sent).encode(), on_delivery=on_delivery)
                sent += 1
            except BufferError:
                producer.poll(0.01)
        producer.poll(0)
    producer.flush(60)
    elapsed = time.monotonic() - started
    return delivered / elapsed, topic, delivered


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


async def raw_dynamodb_writes(settings: Settings, *, seconds: float) -> tuple[float, int]:
    """Accepted-vote writes/s through the worker's own ledger (conditional, batched), at
    the best of a few concurrencies; returns (rate, concurrency)."""
    best = (0.0, 0)
    async with dynamodb.client(settings.dynamodb) as ddb:
        for concurrency in (4, 8, 16):
            ledger = DynamoDBVoteLedger(ddb, settings.dynamodb.votes_table, concurrency=concurrency)
            run = uuid.uuid4().hex[:8]
            written = 0
            started = time.monotonic()
            while time.monotonic() - started < seconds / 3:
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
                    for i in range(concurrency * 100)
                ]
                await ledger.record(entries, 0)
                written += len(entries)
            rate = written / (time.monotonic() - started)
            if rate > best[0]:
                best = (rate, concurrency)
    return best


def run_raw_dynamodb(settings: Settings, *, seconds: float) -> tuple[float, int]:
    return asyncio.run(raw_dynamodb_writes(settings, seconds=seconds))


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
