"""``voting bench write``: the write side's figures beside the limits of its stores.

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

import grpc
from confluent_kafka import TopicPartition

from bench import limits
from bench.environment import machine, private_stack, write_json
from bench.stats import percentile, rounded
from voting.config import Settings
from voting.kafka import KafkaClients
from voting.v1 import command_service_pb2 as cmd
from voting.v1 import command_service_pb2_grpc, poll_pb2


class Acks:
    def __init__(self) -> None:
        self.count = 0
        self.next_offset: dict[int, int] = {}

    def add(self, response: cmd.CastVoteResponse) -> None:
        self.count += 1
        position = response.consistency_token.position
        self.next_offset[position.partition] = max(
            self.next_offset.get(position.partition, 0), position.offset + 1
        )


async def bulk(
    stub: Any, poll_id: str, acks: Acks, *, seconds: float, batch: int = 1000, in_flight: int = 4
) -> float:
    started = time.monotonic()
    counter = 0

    async def sender(lane: int) -> None:
        nonlocal counter
        while time.monotonic() - started < seconds:
            base = counter
            counter += batch
            requests = [
                cmd.CastVoteRequest(
                    poll_id=poll_id, voter_id=f"bulk-{lane}-{base + i}", option_id="abc"[i % 3]
                )
                for i in range(batch)
            ]
            reply = await stub.CastVotes(cmd.CastVotesRequest(requests=requests), timeout=60)
            for result in reply.results:
                if result.status.code == 0:
                    acks.add(result.response)

    before = acks.count
    await asyncio.gather(*(sender(lane) for lane in range(in_flight)))
    return (acks.count - before) / (time.monotonic() - started)


async def unary(
    stub: Any, poll_id: str, acks: Acks, *, seconds: float, in_flight: int = 64
) -> tuple[float, list[float]]:
    started = time.monotonic()
    latencies: list[float] = []
    counter = 0

    async def sender() -> None:
        nonlocal counter
        while time.monotonic() - started < seconds:
            counter += 1
            request = cmd.CastVoteRequest(
                poll_id=poll_id, voter_id=f"unary-{counter}", option_id="abc"[counter % 3]
            )
            sent = time.perf_counter()
            reply = await stub.CastVote(request, timeout=30)
            latencies.append((time.perf_counter() - sent) * 1000)
            acks.add(reply)

    await asyncio.gather(*(sender() for _ in range(in_flight)))
    return len(latencies) / (time.monotonic() - started), latencies


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


async def ingest(target: str, seconds: float) -> dict[str, Any]:
    async with grpc.aio.insecure_channel(target) as channel:
        stub: Any = command_service_pb2_grpc.CommandServiceStub(channel)
        poll_id = f"bench-{int(time.time())}"
        await stub.CreatePoll(
            cmd.CreatePollRequest(
                request_id=poll_id,
                poll_id=poll_id,
                title="bench",
                options=[poll_pb2.PollOption(option_id=o, label=o) for o in "abc"],
            ),
            timeout=30,
        )
        acks = Acks()
        await unary(stub, poll_id, acks, seconds=1.0)  # warm up caches and connections
        bulk_rate = await bulk(stub, poll_id, acks, seconds=seconds * 0.4)
        unary_rate, latencies = await unary(stub, poll_id, acks, seconds=seconds * 0.2)
    return {
        "acks": acks,
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
        measured = asyncio.run(ingest(settings.command.listen, seconds))
        acks: Acks = measured.pop("acks")
        backlog = sum(acks.next_offset.values())
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
        "acknowledged_votes": acks.count,
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
