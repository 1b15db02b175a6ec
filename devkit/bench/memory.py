"""``devkit bench memory``: Redis bytes per vote for what is kept per vote, and the budget
at the design's rate.

Two things are stored per vote in Redis: the shared request id (written by the command
service's own :class:`SharedRequests`) and the vote's status for GetVoteStatus (the
projector's key format and encoding, with its TTL). N of each are written into a
private Redis; ``used_memory`` before and after gives the bytes per vote, and the budget
is bytes x votes/s x the configured TTL.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path
from typing import Any

import redis
import redis.asyncio as aioredis

from command_svc.idempotency import Ack, SharedRequests
from devkit.bench.environment import machine, private_stack, write_json
from devkit.bench.stats import rounded
from voting.config import Settings
from voting.readmodel import DEFAULT_NAMESPACE, Keys, VoteStatus
from voting.v1 import vote_pb2

VOTES_PER_S = 250_000
BATCH = 1000


def _used(client: redis.Redis) -> int:
    return int(client.info("memory")["used_memory"])


async def _request_ids(url: str, votes: int, ttl_s: float) -> None:
    client = aioredis.from_url(url)
    shared = SharedRequests(client, ttl_s=ttl_s, claim_ttl_s=15)
    now = int(time.time() * 1000)
    for start in range(0, votes, BATCH):
        acks = [
            Ack(str(uuid.uuid4()), i % 64, 10_000_000 + i, now, "o1", "poll")
            for i in range(start, min(start + BATCH, votes))
        ]
        await shared.complete(acks)
    await client.aclose()


def _statuses(client: redis.Redis, votes: int, ttl_s: int) -> None:
    keys = Keys(DEFAULT_NAMESPACE)
    now = int(time.time() * 1000)
    for start in range(0, votes, BATCH):
        pipe = client.pipeline(transaction=False)
        for _ in range(start, min(start + BATCH, votes)):
            status = VoteStatus(
                vote_pb2.VOTE_STATE_ACCEPTED,
                option_id="o1",
                decided_at_ms=now,
                voter_key=uuid.uuid4().hex,
                poll_id="poll-1796186646971-0",
            )
            pipe.set(keys.vote_status(str(uuid.uuid4())), status.encode(), ex=ttl_s)
        pipe.execute()


def run(*, votes: int = 200_000, json_path: Path | None = None) -> dict[str, Any]:
    settings = Settings.from_env()
    request_ttl_s = settings.command.idempotency_ttl_s
    status_ttl_s = settings.projector.vote_status_ttl_s
    with private_stack() as stack:
        url = stack.settings().redis.url
        client = redis.Redis.from_url(url)
        client.flushdb()
        before = _used(client)
        asyncio.run(_request_ids(url, votes, request_ttl_s))
        request_bytes = (_used(client) - before) / votes
        client.flushdb()
        before = _used(client)
        _statuses(client, votes, status_ttl_s)
        status_bytes = (_used(client) - before) / votes
        client.close()
    gib = 1024**3
    figures: dict[str, Any] = {
        "benchmark": "memory",
        "machine": machine(),
        "votes": votes,
        "request_id_bytes_per_vote": rounded(request_bytes),
        "status_bytes_per_vote": rounded(status_bytes),
        "request_id_ttl_s": request_ttl_s,
        "status_ttl_s": status_ttl_s,
        "votes_per_s": VOTES_PER_S,
        "request_ids_gib_at_rate": rounded(request_bytes * VOTES_PER_S * request_ttl_s / gib),
        "statuses_gib_at_rate": rounded(status_bytes * VOTES_PER_S * status_ttl_s / gib),
        "status_writes_per_s_at_rate": VOTES_PER_S,
    }
    figures["json"] = str(write_json(figures, json_path))
    return figures
