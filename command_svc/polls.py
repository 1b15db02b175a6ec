"""The command side's writes to the ``polls`` table: one winner per poll id, per close.

The table is also the outbox of poll events: ``created_published`` / ``closed_published``
stay false until the matching event is acknowledged by the broker, and the lifecycle
sweeper re-publishes whatever a crashed command process left unpublished.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any, TypeVar

from botocore.exceptions import BotoCoreError, ClientError

from command_svc.errors import Unavailable
from command_svc.ports import PublishedFlag
from voting.dynamodb import error_code
from voting.errors import InfrastructureError, PollNotFound
from voting.polls import CLOSED, OPEN, PollModel, read_poll

T = TypeVar("T")


class DynamoDBPollStore:
    """The PollStore port on DynamoDB: conditional writes, one winner per poll id and close.

    Every call waits at most ``timeout_s`` (retries included), then fails with
    UNAVAILABLE: a DynamoDB that does not answer must not hold commands to their deadline.
    """

    def __init__(self, ddb: Any, table: str, *, timeout_s: float = 2.0) -> None:
        self._ddb = ddb
        self._table = table
        self._timeout_s = timeout_s

    async def _call(self, call: Awaitable[T]) -> T:
        try:
            return await asyncio.wait_for(call, self._timeout_s)
        except TimeoutError as exc:
            raise Unavailable(f"the poll store did not answer in {self._timeout_s}s") from exc

    async def create(self, poll: PollModel) -> tuple[PollModel, bool]:
        """Stores ``poll`` unless its id exists; returns the stored poll and whether it is new."""
        try:
            await self._call(
                self._ddb.put_item(
                    TableName=self._table,
                    Item=poll.to_item(),
                    ConditionExpression="attribute_not_exists(poll_id)",
                )
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
            reply = await self._call(
                self._ddb.update_item(
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

    async def mark_published(self, poll_id: str, flag: PublishedFlag) -> None:
        try:
            await self._call(
                self._ddb.update_item(
                    TableName=self._table,
                    Key={"poll_id": {"S": poll_id}},
                    UpdateExpression=f"SET {flag} = :true",
                    ExpressionAttributeValues={":true": {"BOOL": True}},
                )
            )
        except (ClientError, BotoCoreError) as exc:
            raise _unavailable(exc) from exc

    async def get(self, poll_id: str) -> PollModel | None:
        try:
            return await read_poll(self._ddb, self._table, poll_id, timeout_s=self._timeout_s)
        except InfrastructureError as exc:
            raise Unavailable(str(exc)) from exc

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
                page = await self._call(self._ddb.scan(**kwargs))
                found.extend(PollModel.from_item(i) for i in page.get("Items", []))
                if "LastEvaluatedKey" not in page:
                    return found
                kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        except (ClientError, BotoCoreError) as exc:
            raise _unavailable(exc) from exc


def _unavailable(exc: Exception) -> Unavailable:
    return Unavailable(f"the poll store is unavailable: {exc}")
