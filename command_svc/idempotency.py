"""Remembers the acknowledgement of every vote command that carried a request id.

A retried command (same poll, voter and request id, hence the same vote id) gets the
first acknowledgement back and appends nothing; the same request id with another option
is refused. Two tiers answer it:

- :class:`RequestLedger`, this process's memory: bounded (size and age), and where a
  concurrent duplicate waits for the first attempt's outcome;
- :class:`SharedRequests`, in Redis, so a retry that reaches another process gets the
  same answer: a request is claimed there (``SET NX``; a batch in one script call)
  before it is appended and holds its acknowledgement afterwards. When Redis does not
  answer, each process falls back to its own memory for a few seconds: a retry
  elsewhere is then appended again under the SAME vote id, which the dedup worker
  recognises (nothing is counted twice, and a stored vote's option never changes).

Claims are settled by the task that appends, never by the RPC that started it: a caller
that gives up (its deadline passed) leaves the append to finish and its retry to find
the acknowledgement.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from command_svc.errors import RequestIdReused

log = logging.getLogger(__name__)

FALLBACK_S = 5.0
_PREFIX = "idem:"


@dataclass(frozen=True, slots=True)
class Ack:
    vote_id: str
    partition: int
    offset: int
    received_at_ms: int
    option_id: str
    poll_id: str

    def encode(self) -> str:
        return f"d|{self.option_id}|{self.partition}|{self.offset}|{self.received_at_ms}"


@dataclass(frozen=True, slots=True)
class Pending:
    """Another process claimed the request and has not settled it yet."""

    option_id: str


def decode(vote_id: str, poll_id: str, raw: bytes | str) -> Ack | Pending:
    text = raw.decode() if isinstance(raw, bytes) else raw
    kind, option_id, *rest = text.split("|")
    if kind == "p":
        return Pending(option_id)
    partition, offset, received = rest
    return Ack(vote_id, int(partition), int(offset), int(received), option_id, poll_id)


class RequestLedger:
    def __init__(self, *, ttl_s: float, capacity: int) -> None:
        self._ttl_s = ttl_s
        self._capacity = capacity
        self._done: OrderedDict[str, tuple[float, Ack]] = OrderedDict()
        self._in_flight: dict[str, tuple[str, asyncio.Future[Ack | None]]] = {}

    def done(self, vote_id: str, option_id: str, request_id: str) -> Ack | None:
        """The acknowledgement of this request if this process has it; raises
        RequestIdReused if it was for another option."""
        entry = self._done.get(vote_id)
        if entry is None:
            return None
        expires, ack = entry
        if expires <= time.monotonic():
            del self._done[vote_id]
            return None
        if ack.option_id != option_id:
            raise RequestIdReused(request_id)
        return ack

    def claim(
        self, vote_id: str, option_id: str, request_id: str
    ) -> Ack | asyncio.Future[Ack | None] | None:
        """Never waits. None: the caller now owns the request and must :meth:`complete` or
        :meth:`release` it. An Ack: the earlier acknowledgement. A future: the request is
        in flight in this process; it resolves to its Ack, or None if that attempt failed."""
        ack = self.done(vote_id, option_id, request_id)
        if ack is not None:
            return ack
        flight = self._in_flight.get(vote_id)
        if flight is None:
            future: asyncio.Future[Ack | None] = asyncio.get_running_loop().create_future()
            self._in_flight[vote_id] = (option_id, future)
            return None
        if flight[0] != option_id:
            raise RequestIdReused(request_id)
        return flight[1]

    def complete(self, ack: Ack) -> None:
        flight = self._in_flight.pop(ack.vote_id, None)
        self.remember(ack)
        if flight is not None and not flight[1].done():
            flight[1].set_result(ack)

    def remember(self, ack: Ack) -> None:
        self._done[ack.vote_id] = (time.monotonic() + self._ttl_s, ack)
        self._done.move_to_end(ack.vote_id)
        while len(self._done) > self._capacity:
            self._done.popitem(last=False)

    def release(self, vote_id: str) -> None:
        flight = self._in_flight.pop(vote_id, None)
        if flight is not None and not flight[1].done():
            flight[1].set_result(None)


# One call per batch, not one command per vote: the per-command work of the client
# (building, packing and parsing each command) was the largest cost of a CastVotes.
# KEYS are the votes' keys; they must live on one Redis primary (no Cluster slots
# across them), as the deployment has it.
_CLAIM = """
local out = {}
for i, key in ipairs(KEYS) do
  out[i] = redis.call('SET', key, ARGV[i + 1], 'NX', 'PX', ARGV[1], 'GET')
end
return out
"""
_COMPLETE = """
for i, key in ipairs(KEYS) do
  redis.call('SET', key, ARGV[i + 1], 'PX', ARGV[1])
end
return #KEYS
"""


class SharedRequests:
    """Request ids shared by every command process through Redis.

    ``idem:<vote id>`` holds ``p|<option>`` while a process appends the vote (expiring
    after ``claim_ttl_s``, so a process that died mid-append does not block the request
    for long) and ``d|<option>|<partition>|<offset>|<received ms>`` afterwards, for
    ``ttl_s``. Memory: about 200 bytes x votes/s x ``ttl_s`` (``devkit bench memory``).
    A batch's claims are one script call, its completions another.
    """

    def __init__(self, client: aioredis.Redis | None, *, ttl_s: float, claim_ttl_s: float) -> None:
        self._redis = client
        self._ttl_ms = int(ttl_s * 1000)
        self._claim_ttl_ms = int(claim_ttl_s * 1000)
        self._down_until = 0.0
        self._claim = client.register_script(_CLAIM) if client is not None else None
        self._complete = client.register_script(_COMPLETE) if client is not None else None

    @property
    def available(self) -> bool:
        return self._redis is not None and time.monotonic() >= self._down_until

    async def claim(
        self, votes: Sequence[tuple[str, str, str]]
    ) -> list[Ack | Pending | None] | None:
        """Claims each (vote id, poll id, option id): None where this call claimed it, else
        what was there. None overall when Redis did not answer (nothing is known)."""
        if not votes:
            return []
        script = self._claim
        replies = await self._run(
            lambda client: script(  # type: ignore[misc]
                keys=[_PREFIX + v for v, _, _ in votes],
                args=[self._claim_ttl_ms, *(f"p|{o}" for _, _, o in votes)],
                client=client,
            )
        )
        if replies is None:
            return None
        return [
            None if raw is None else decode(v, p, raw)
            for (v, p, _), raw in zip(votes, replies, strict=True)
        ]

    async def lookup(self, votes: Sequence[tuple[str, str]]) -> list[Ack | Pending | None] | None:
        """What is known of each (vote id, poll id), without claiming it."""
        if not votes:
            return []
        replies = await self._run(lambda client: client.mget([_PREFIX + v for v, _ in votes]))
        if replies is None:
            return None
        return [
            None if raw is None else decode(v, p, raw)
            for (v, p), raw in zip(votes, replies, strict=True)
        ]

    async def complete(self, acks: Sequence[Ack]) -> None:
        if not acks:
            return
        script = self._complete
        await self._run(
            lambda client: script(  # type: ignore[misc]
                keys=[_PREFIX + a.vote_id for a in acks],
                args=[self._ttl_ms, *(a.encode() for a in acks)],
                client=client,
            )
        )

    async def release(self, vote_ids: Sequence[str]) -> None:
        if vote_ids:
            await self._run(lambda client: client.delete(*(_PREFIX + v for v in vote_ids)))

    async def _run(self, call: Callable[[aioredis.Redis], Awaitable[Any]]) -> Any:
        if not self.available or self._redis is None:
            return None
        try:
            return await call(self._redis)
        except (RedisError, OSError) as exc:
            log.warning(
                "request ids fall back to this process: Redis unavailable",
                extra={"error": str(exc)},
            )
            self._down_until = time.monotonic() + FALLBACK_S
            return None
