"""``devkit bench recount --votes N``: how long the recount of a closed poll takes.

N accepted votes are loaded straight into the DynamoDB ``votes`` table (BatchWriteItem,
many in flight: loading is not what is measured), the poll is marked closed and drained
in the read model, and the recount runs: one strongly consistent Query per ledger shard,
in parallel, then the finalization in Redis.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path
from typing import Any

from devkit.bench.environment import machine, private_stack, write_json
from devkit.bench.stats import rounded
from projector.recount import Recount
from projector.recount_source import DynamoDBRecountSource
from projector.store import ReadModelWriter
from voting import dynamodb
from voting import redis as redis_clients
from voting.config import Settings
from voting.dynamodb import ledger_shard, vote_pk
from voting.polls import CLOSED, PollModel
from voting.readmodel import DEFAULT_NAMESPACE, Keys, drained_field

OPTIONS = ("a", "b", "c", "d")


async def load(
    settings: Settings, poll_id: str, votes: int, shards: int, *, concurrency: int = 32
) -> float:
    started = time.monotonic()
    slots = asyncio.Semaphore(concurrency)
    async with dynamodb.client(settings.dynamodb) as ddb:

        async def batch(start: int) -> None:
            items = []
            for i in range(start, min(start + 25, votes)):
                voter_key = f"{i:032x}"
                items.append(
                    {
                        "PutRequest": {
                            "Item": {
                                "pk": {"S": vote_pk(poll_id, ledger_shard(voter_key, shards))},
                                "voter_key": {"S": voter_key},
                                "poll_id": {"S": poll_id},
                                "vote_id": {"S": str(uuid.uuid4())},
                                "option_id": {"S": OPTIONS[i % len(OPTIONS)]},
                            }
                        }
                    }
                )
            async with slots:
                request: dict[str, Any] = {settings.dynamodb.votes_table: items}
                while request:
                    reply = await ddb.batch_write_item(RequestItems=request)
                    request = reply.get("UnprocessedItems") or {}

        await asyncio.gather(*(batch(s) for s in range(0, votes, 25)))
    return time.monotonic() - started


async def prepare(settings: Settings, poll_id: str, shards: int) -> None:
    now = time.time_ns() // 1_000_000
    poll = PollModel(
        poll_id=poll_id,
        title="recount bench",
        options=tuple((o, o.upper()) for o in OPTIONS),
        status=CLOSED,
        created_at_ms=now,
        ledger_shards=shards,
        create_request_id=poll_id,
        closed_at_ms=now,
        created_published=True,
        closed_published=True,
    )
    async with dynamodb.client(settings.dynamodb) as ddb:
        await ddb.put_item(TableName=settings.dynamodb.polls_table, Item=poll.to_item())
    client = redis_clients.client(settings.redis)
    keys = Keys(DEFAULT_NAMESPACE)
    partitions = settings.topics.partitions
    await client.set(keys.poll(poll_id), poll.to_proto(now).SerializeToString())
    await client.hset(
        keys.meta(poll_id),
        mapping={
            "partitions": str(partitions),
            **{drained_field(p): "1" for p in range(partitions)},
        },
    )
    await client.aclose()


async def recount(settings: Settings, poll_id: str) -> tuple[float, dict[str, int]]:
    client = redis_clients.client(settings.redis, timeout_s=30)
    try:
        async with dynamodb.client(settings.dynamodb) as ddb:
            started = time.monotonic()
            writer = ReadModelWriter(
                client, Keys(DEFAULT_NAMESPACE), log_id="", status_ttl_s=3600, notify=False
            )
            recount = Recount(DynamoDBRecountSource(ddb, settings.dynamodb), writer)
            outcome = await recount.run(poll_id, drain_timeout_s=0)
            return time.monotonic() - started, outcome.counts
    finally:
        await client.aclose()


def run(*, votes: int, json_path: Path | None) -> dict[str, Any]:
    with private_stack() as stack:
        settings = stack.settings()
        shards = settings.dynamodb.ledger_shards
        poll_id = f"recount-{int(time.time())}"
        asyncio.run(prepare(settings, poll_id, shards))
        load_seconds = asyncio.run(load(settings, poll_id, votes, shards))
        seconds, counts = asyncio.run(recount(settings, poll_id))
    assert sum(counts.values()) == votes, f"recount found {sum(counts.values())} of {votes} votes"
    figures: dict[str, Any] = {
        "benchmark": "recount",
        "votes": votes,
        "ledger_shards": shards,
        "machine": machine(),
        "recount_seconds": rounded(seconds, 2),
        "recount_votes_per_s": rounded(votes / seconds),
        "load_seconds": rounded(load_seconds, 1),
        "load_votes_per_s": rounded(votes / load_seconds),
    }
    figures["json"] = str(write_json(figures, json_path))
    return figures
