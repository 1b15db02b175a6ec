"""Reads the Redis read model the projector writes (layout in ``voting.readmodel``)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any, cast

import redis.asyncio as aioredis
from google.protobuf.message import DecodeError
from redis.exceptions import RedisError

from query_svc.errors import ReadModelUnavailable
from voting.errors import PollNotFound
from voting.readmodel import ACTIVE_KEY, DEFAULT_NAMESPACE, Keys, VoteStatus, guard_field
from voting.redis import raw as as_bytes
from voting.redis import text
from voting.v1 import consistency_pb2, poll_pb2, results_pb2

_NAMESPACE_TTL_S = 1.0


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A results snapshot, serialized once for every subscriber that receives it."""

    results: results_pb2.Results
    payload: bytes
    # Read once here rather than from the message by every subscriber.
    version: int
    final: bool
    updated_at_s: float


class ReadModelReader:
    def __init__(self, client: aioredis.Redis, *, partitions: int) -> None:
        self._redis = client
        self._partitions = partitions
        self._keys = Keys(DEFAULT_NAMESPACE)
        self._log_id = ""
        self._checked_at = 0.0

    async def keys(self) -> tuple[Keys, str]:
        """The live namespace and log id, re-read at most once a second (or on a switch)."""
        if time.monotonic() - self._checked_at > _NAMESPACE_TTL_S:
            active = await self._redis.get(ACTIVE_KEY)
            keys = Keys(text(active) or DEFAULT_NAMESPACE)
            self._keys, self._log_id = keys, text(await self._redis.get(keys.log))
            self._checked_at = time.monotonic()
        return self._keys, self._log_id

    def namespace_switched(self) -> None:
        self._checked_at = 0.0

    async def poll(self, poll_id: str) -> poll_pb2.Poll:
        try:
            keys, _ = await self.keys()
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.get(keys.poll(poll_id))
                pipe.hmget(keys.meta(poll_id), ["closed_at", "final"])
                raw, (closed_at, _final) = await pipe.execute()
        except (RedisError, OSError) as exc:
            raise ReadModelUnavailable(str(exc)) from exc
        if raw is None:
            raise _unknown(poll_id)
        return _poll(raw, closed_at)

    async def list_polls(
        self, *, limit: int, before: tuple[int, str] | None
    ) -> tuple[list[poll_pb2.Poll], tuple[int, str] | None]:
        """Polls newest first, after the cursor (created_at ms, poll id) of the last page."""
        try:
            keys, _ = await self.keys()
            top = "+inf" if before is None else before[0]
            raw = await self._redis.zrevrangebyscore(
                keys.polls, top, "-inf", start=0, num=limit + 51, withscores=True
            )
            entries = [
                (int(score), text(member)) for member, score in cast(list[tuple[Any, float]], raw)
            ]
            if before is not None:
                entries = [e for e in entries if e < before]
            entries = entries[: limit + 1]
            ids = [poll_id for _, poll_id in entries]
            async with self._redis.pipeline(transaction=False) as pipe:
                for poll_id in ids:
                    pipe.get(keys.poll(poll_id))
                    pipe.hget(keys.meta(poll_id), "closed_at")
                values = await pipe.execute()
        except (RedisError, OSError) as exc:
            raise ReadModelUnavailable(str(exc)) from exc
        polls = [
            _poll(values[2 * i], values[2 * i + 1])
            for i in range(len(ids))
            if values[2 * i] is not None
        ]
        cursor = None
        if len(entries) > limit:
            cursor = entries[limit - 1]
            polls = polls[:limit]
        return polls, cursor

    async def snapshot(self, poll_id: str) -> Snapshot:
        """The poll's current results, built and serialized once."""
        from voting.v1 import query_service_pb2  # noqa: PLC0415 - avoids an import cycle at load

        results = await self.results(poll_id)
        payload = query_service_pb2.WatchResultsResponse(results=results).SerializeToString()
        updated = results.updated_at.seconds + results.updated_at.nanos / 1e9
        return Snapshot(results, payload, results.version, results.final, updated)

    async def results(self, poll_id: str) -> results_pb2.Results:
        try:
            keys, log_id = await self.keys()
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.get(keys.poll(poll_id))
                pipe.hgetall(keys.counts(poll_id))
                pipe.hgetall(keys.meta(poll_id))
                pipe.hgetall(keys.progress)
                raw, counts, meta, progress = await pipe.execute()
        except (RedisError, OSError) as exc:
            raise ReadModelUnavailable(str(exc)) from exc
        if raw is None:
            raise _unknown(poll_id)
        raw_meta = {k.decode(): v for k, v in meta.items()}
        meta = {k: v.decode() for k, v in raw_meta.items() if k != "recount"}
        poll = _poll(raw, meta.get("closed_at"))
        results = results_pb2.Results(
            poll_id=poll_id,
            version=int(meta.get("version", 0)),
            final=meta.get("final") == "1",
            status=poll.status,
        )
        total = 0
        for option in poll.options:
            votes = int(counts.get(option.option_id.encode(), 0))
            total += votes
            results.counts.add(option_id=option.option_id, votes=votes)
        results.total = total
        prefix = f"o:{log_id}:"
        for name, value in meta.items():
            if name.startswith(prefix):
                results.watermark.add(partition=int(name[len(prefix) :]), offset=int(value))
        results.watermark.sort(key=lambda w: w.partition)
        if "updated_at" in meta:
            results.updated_at.FromMilliseconds(int(meta["updated_at"]))
        now_ms = time.time_ns() // 1_000_000
        # A partition with no progress entry has never carried a decision (the local
        # broker signals no end-of-partition for an empty one): it holds nothing to miss.
        reflected = [
            int(v) for p in range(self._partitions) if (v := progress.get(str(p).encode()))
        ]
        if results.final:
            if "recount" in raw_meta:
                results.recount.ParseFromString(raw_meta["recount"])
        else:
            results.staleness.FromMilliseconds(max(0, now_ms - min(reflected)) if reflected else 0)
        return results

    async def applied_offset(self, poll_id: str, partition: int) -> int:
        """The highest ``votes`` offset of ``partition`` whose decision on this poll is applied."""
        try:
            keys, log_id = await self.keys()
            value = await self._redis.hget(keys.meta(poll_id), guard_field(log_id, partition))
        except (RedisError, OSError) as exc:
            raise ReadModelUnavailable(str(exc)) from exc
        return int(value) if value is not None else -1

    async def wait_for(
        self, poll_id: str, token: consistency_pb2.ConsistencyToken, *, timeout_s: float
    ) -> bool:
        """Waits until the projection of ``poll_id`` has applied the token's position."""
        deadline = time.monotonic() + timeout_s
        delay = 0.005
        position = token.position
        while True:
            if await self.applied_offset(poll_id, position.partition) >= position.offset:
                return True
            if time.monotonic() + delay > deadline:
                return False
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.05)

    async def vote_status(self, vote_id: str) -> VoteStatus | None:
        try:
            keys, _ = await self.keys()
            raw = await self._redis.get(keys.vote_status(vote_id))
        except (RedisError, OSError) as exc:
            raise ReadModelUnavailable(str(exc)) from exc
        return VoteStatus.decode(as_bytes(raw)) if raw is not None else None


def _poll(raw: bytes, closed_at: bytes | str | None) -> poll_pb2.Poll:
    try:
        poll = poll_pb2.Poll.FromString(raw)
    except DecodeError as exc:  # pragma: no cover - only the projector writes it
        raise ReadModelUnavailable(f"corrupt poll definition: {exc}") from exc
    now_ms = time.time_ns() // 1_000_000
    if closed_at is not None:
        poll.status = poll_pb2.POLL_STATUS_CLOSED
        poll.closed_at.FromMilliseconds(int(closed_at))
    elif poll.HasField("closes_at") and poll.closes_at.ToMilliseconds() <= now_ms:
        poll.status = poll_pb2.POLL_STATUS_CLOSED
    elif poll.HasField("opens_at") and poll.opens_at.ToMilliseconds() > now_ms:
        poll.status = poll_pb2.POLL_STATUS_SCHEDULED
    else:
        poll.status = poll_pb2.POLL_STATUS_OPEN
    return poll


def _unknown(poll_id: str) -> PollNotFound:
    # The read model may lag behind the polls table (eventually consistent): say where.
    return PollNotFound(poll_id, f"poll {poll_id!r} is not known to the read model")
