"""Polls as the DynamoDB ``polls`` table holds them: the source of truth for what a poll is
and who may see it, shared by the command side (validation) and the query side (access).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from voting.errors import InfrastructureError, VotingError
from voting.v1 import poll_pb2

OPEN = "OPEN"
CLOSED = "CLOSED"
PUBLIC = "PUBLIC"
PRIVATE = "PRIVATE"


@dataclass(frozen=True, slots=True)
class PollModel:
    poll_id: str
    title: str
    options: tuple[tuple[str, str], ...]  # (option_id, label), in display order
    status: str
    created_at_ms: int
    ledger_shards: int
    create_request_id: str
    opens_at_ms: int | None = None
    closes_at_ms: int | None = None
    closed_at_ms: int | None = None
    close_request_id: str = ""
    created_published: bool = False
    closed_published: bool = False
    visibility: str = PUBLIC

    def same_definition(self, other: PollModel) -> bool:
        """Whether ``other`` asks for this poll: same title, options, schedule and
        visibility (status, times of creation and bookkeeping aside)."""
        return (
            self.title,
            self.options,
            self.opens_at_ms,
            self.closes_at_ms,
            self.visibility,
        ) == (other.title, other.options, other.opens_at_ms, other.closes_at_ms, other.visibility)

    @property
    def private(self) -> bool:
        return self.visibility == PRIVATE

    @property
    def option_ids(self) -> frozenset[str]:
        return frozenset(o for o, _ in self.options)

    def state_at(self, now_ms: int) -> int:
        if self.status == CLOSED or (self.closes_at_ms is not None and now_ms >= self.closes_at_ms):
            return poll_pb2.POLL_STATUS_CLOSED
        if self.opens_at_ms is not None and now_ms < self.opens_at_ms:
            return poll_pb2.POLL_STATUS_SCHEDULED
        return poll_pb2.POLL_STATUS_OPEN

    def to_proto(self, now_ms: int) -> poll_pb2.Poll:
        poll = poll_pb2.Poll(
            poll_id=self.poll_id,
            title=self.title,
            options=[poll_pb2.PollOption(option_id=o, label=label) for o, label in self.options],
            status=self.state_at(now_ms),  # type: ignore[arg-type]
            visibility=poll_pb2.VISIBILITY_PRIVATE if self.private else poll_pb2.VISIBILITY_PUBLIC,
        )
        poll.created_at.FromMilliseconds(self.created_at_ms)
        for name in ("opens_at", "closes_at", "closed_at"):
            value = getattr(self, f"{name}_ms")
            if value is not None:
                getattr(poll, name).FromMilliseconds(value)
        return poll

    def to_item(self) -> dict[str, Any]:
        item: dict[str, Any] = {
            "poll_id": {"S": self.poll_id},
            "title": {"S": self.title},
            "options": {
                "L": [
                    {"M": {"option_id": {"S": o}, "label": {"S": label}}}
                    for o, label in self.options
                ]
            },
            "status": {"S": self.status},
            "created_at": {"N": str(self.created_at_ms)},
            "ledger_shards": {"N": str(self.ledger_shards)},
            "create_request_id": {"S": self.create_request_id},
            "created_published": {"BOOL": self.created_published},
            "closed_published": {"BOOL": self.closed_published},
            "visibility": {"S": self.visibility},
        }
        for name in ("opens_at", "closes_at", "closed_at"):
            value = getattr(self, f"{name}_ms")
            if value is not None:
                item[name] = {"N": str(value)}
        if self.close_request_id:
            item["close_request_id"] = {"S": self.close_request_id}
        return item

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> PollModel:
        def number(name: str) -> int | None:
            return int(item[name]["N"]) if name in item else None

        return cls(
            poll_id=item["poll_id"]["S"],
            title=item["title"]["S"],
            options=tuple(
                (o["M"]["option_id"]["S"], o["M"]["label"]["S"]) for o in item["options"]["L"]
            ),
            status=item["status"]["S"],
            created_at_ms=int(item["created_at"]["N"]),
            ledger_shards=int(item["ledger_shards"]["N"]),
            create_request_id=item["create_request_id"]["S"],
            opens_at_ms=number("opens_at"),
            closes_at_ms=number("closes_at"),
            closed_at_ms=number("closed_at"),
            close_request_id=item.get("close_request_id", {}).get("S", ""),
            created_published=item.get("created_published", {}).get("BOOL", False),
            closed_published=item.get("closed_published", {}).get("BOOL", False),
            visibility=item.get("visibility", {}).get("S", PUBLIC),
        )


@dataclass(slots=True)
class _Entry:
    poll: PollModel | None
    fresh_until: float
    stale_until: float
    retry_at: float = 0.0


class PollCache:
    """Polls as a service validates against: at most ``ttl_s`` stale while the store
    answers, and at most ``max_staleness_s`` while it does not.

    Misses for one poll share one read (a burst of votes for a new poll costs one
    GetItem), and unknown polls are cached too, so a flood of votes for made-up poll ids
    cannot turn into a flood of reads. When a refresh fails (the store is down or too
    slow: ``load`` bounds its own wait), the last known model is served, and the store
    is asked again at most once a second: writes and reads go on from what was known.
    """

    def __init__(
        self,
        load: Callable[[str], Awaitable[PollModel | None]],
        *,
        ttl_s: float,
        max_staleness_s: float = 60.0,
    ) -> None:
        self._load = load
        self._ttl_s = ttl_s
        self._max_staleness_s = max(max_staleness_s, ttl_s)
        self._entries: dict[str, _Entry] = {}
        self._loading: dict[str, asyncio.Future[PollModel | None]] = {}

    async def get(self, poll_id: str, *, recheck_unknown: bool = False) -> PollModel | None:
        """The poll, or None if the store does not have it. ``recheck_unknown`` reads a
        poll cached as unknown again (one read shared by concurrent callers): a poll
        created a moment ago is then found."""
        entry = self._entries.get(poll_id)
        now = time.monotonic()
        if (
            entry is not None
            and not (recheck_unknown and entry.poll is None)
            and (entry.fresh_until > now or (entry.retry_at > now and entry.stale_until > now))
        ):
            return entry.poll
        try:
            return await self._refresh(poll_id)
        except VotingError:
            if entry is None or entry.stale_until <= now:
                raise
            entry.retry_at = now + 1.0
            return entry.poll

    async def _refresh(self, poll_id: str) -> PollModel | None:
        pending = self._loading.get(poll_id)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[PollModel | None] = asyncio.get_running_loop().create_future()
        self._loading[poll_id] = future
        try:
            poll = await self._load(poll_id)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: waiters get it, nobody logs "never retrieved"
            raise
        finally:
            self._loading.pop(poll_id, None)
        self.put(poll, poll_id)
        future.set_result(poll)
        return poll

    def put(self, poll: PollModel | None, poll_id: str | None = None) -> None:
        key = poll_id if poll is None else poll.poll_id
        assert key is not None
        if len(self._entries) > 100_000:
            self._entries.clear()
        now = time.monotonic()
        self._entries[key] = _Entry(poll, now + self._ttl_s, now + self._max_staleness_s)


async def read_poll(
    ddb: Any, table: str, poll_id: str, *, timeout_s: float = 2.0
) -> PollModel | None:
    """The poll as stored now (strongly consistent read), or None."""
    try:
        reply = await asyncio.wait_for(
            ddb.get_item(TableName=table, Key={"poll_id": {"S": poll_id}}, ConsistentRead=True),
            timeout_s,
        )
    except (ClientError, BotoCoreError) as exc:
        raise InfrastructureError(f"the poll store is unavailable: {exc}") from exc
    except TimeoutError as exc:
        raise InfrastructureError(f"the poll store did not answer in {timeout_s}s") from exc
    item = reply.get("Item")
    return PollModel.from_item(item) if item else None


def now_ms() -> int:
    return time.time_ns() // 1_000_000
