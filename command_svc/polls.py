"""The command side's model of polls: the DynamoDB ``polls`` table and a bounded-staleness cache.

The table is also the outbox of poll events: ``created_published`` / ``closed_published``
stay false until the matching event is acknowledged by the broker, and the lifecycle
sweeper re-publishes whatever a crashed command process left unpublished.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from command_svc.errors import PollNotFound, Unavailable
from voting.dynamodb import error_code
from voting.v1 import poll_pb2

OPEN = "OPEN"
CLOSED = "CLOSED"


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
        )


class PollStore:
    """Conditional writes on the ``polls`` table: one winner per poll id, per close."""

    def __init__(self, ddb: Any, table: str) -> None:
        self._ddb = ddb
        self._table = table

    async def create(self, poll: PollModel) -> tuple[PollModel, bool]:
        """Stores ``poll`` unless its id exists; returns the stored poll and whether it is new."""
        try:
            await self._ddb.put_item(
                TableName=self._table,
                Item=poll.to_item(),
                ConditionExpression="attribute_not_exists(poll_id)",
            )
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise _unavailable(exc) from exc
            existing = await self.get(poll.poll_id)
            if existing is None:  # deleted in between: not something this system does
                raise Unavailable("poll changed concurrently, retry") from exc
            return existing, False
        except BotoCoreError as exc:
            raise _unavailable(exc) from exc
        return poll, True

    async def close(self, poll_id: str, request_id: str, now_ms: int) -> tuple[PollModel, bool]:
        """Marks the poll closed; returns it and whether this call closed it."""
        try:
            reply = await self._ddb.update_item(
                TableName=self._table,
                Key={"poll_id": {"S": poll_id}},
                UpdateExpression=(
                    "SET #status = :closed, closed_at = :now, close_request_id = :req, "
                    "closed_published = :false"
                ),
                ConditionExpression="attribute_exists(poll_id) AND #status = :open",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={
                    ":closed": {"S": CLOSED},
                    ":open": {"S": OPEN},
                    ":now": {"N": str(now_ms)},
                    ":req": {"S": request_id},
                    ":false": {"BOOL": False},
                },
                ReturnValues="ALL_NEW",
            )
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise _unavailable(exc) from exc
            existing = await self.get(poll_id)
            if existing is None:
                raise PollNotFound(poll_id) from exc
            return existing, False
        except BotoCoreError as exc:
            raise _unavailable(exc) from exc
        return PollModel.from_item(reply["Attributes"]), True

    async def mark_published(self, poll_id: str, flag: str) -> None:
        try:
            await self._ddb.update_item(
                TableName=self._table,
                Key={"poll_id": {"S": poll_id}},
                UpdateExpression=f"SET {flag} = :true",
                ExpressionAttributeValues={":true": {"BOOL": True}},
            )
        except (ClientError, BotoCoreError) as exc:
            raise _unavailable(exc) from exc

    async def get(self, poll_id: str) -> PollModel | None:
        try:
            reply = await self._ddb.get_item(
                TableName=self._table, Key={"poll_id": {"S": poll_id}}, ConsistentRead=True
            )
        except (ClientError, BotoCoreError) as exc:
            raise _unavailable(exc) from exc
        item = reply.get("Item")
        return PollModel.from_item(item) if item else None

    async def needing_attention(self, now_ms: int) -> list[PollModel]:
        """Polls with an unpublished event, or open past their closing time."""
        found: list[PollModel] = []
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "FilterExpression": (
                "created_published = :false OR (#status = :closed AND closed_published = :false) "
                "OR (#status = :open AND closes_at <= :now)"
            ),
            "ExpressionAttributeNames": {"#status": "status"},
            "ExpressionAttributeValues": {
                ":false": {"BOOL": False},
                ":closed": {"S": CLOSED},
                ":open": {"S": OPEN},
                ":now": {"N": str(now_ms)},
            },
        }
        try:
            while True:
                page = await self._ddb.scan(**kwargs)
                found.extend(PollModel.from_item(i) for i in page.get("Items", []))
                if "LastEvaluatedKey" not in page:
                    return found
                kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        except (ClientError, BotoCoreError) as exc:
            raise _unavailable(exc) from exc


class PollCache:
    """Polls as the command side validates against: at most ``ttl_s`` stale.

    Misses for one poll share one read (a burst of votes for a new poll costs one
    GetItem), and unknown polls are cached too, so a flood of votes for made-up poll ids
    cannot turn into a flood of reads.
    """

    def __init__(self, load: Callable[[str], Awaitable[PollModel | None]], *, ttl_s: float) -> None:
        self._load = load
        self._ttl_s = ttl_s
        self._entries: dict[str, tuple[float, PollModel | None]] = {}
        self._loading: dict[str, asyncio.Future[PollModel | None]] = {}

    async def get(self, poll_id: str) -> PollModel | None:
        entry = self._entries.get(poll_id)
        now = time.monotonic()
        if entry is not None and entry[0] > now:
            return entry[1]
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
        if len(self._entries) > 100_000:
            self._entries.clear()
        self._entries[poll_id] = (now + self._ttl_s, poll)
        future.set_result(poll)
        return poll

    def put(self, poll: PollModel) -> None:
        self._entries[poll.poll_id] = (time.monotonic() + self._ttl_s, poll)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def _unavailable(exc: Exception) -> Unavailable:
    return Unavailable(f"the poll store is unavailable: {exc}")
