"""Reads the ``votes`` table, where the dedup worker stores each counted vote.

The command side asks it one thing: after a poll closed, was a retried request's vote
counted? If so, the vote's item holds everything its first acknowledgement said (vote
id, option, the position it was appended at, when it was received), so the retry gets
that same answer even in a process that never saw the request.
"""

from __future__ import annotations

import asyncio
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from command_svc.errors import Unavailable
from command_svc.idempotency import Ack
from voting.dynamodb import vote_pk


class DynamoDBCountedVotes:
    """The CountedVotes port on the DynamoDB ``votes`` table."""

    def __init__(self, ddb: Any, table: str, *, timeout_s: float) -> None:
        self._ddb = ddb
        self._table = table
        self._timeout_s = timeout_s

    async def find(self, poll_id: str, shard: int, voter_key: str) -> Ack | None:
        """The voter's counted vote in the poll, as its acknowledgement; None if none."""
        try:
            reply = await asyncio.wait_for(
                self._ddb.get_item(
                    TableName=self._table,
                    Key={"pk": {"S": vote_pk(poll_id, shard)}, "voter_key": {"S": voter_key}},
                    ConsistentRead=True,
                ),
                self._timeout_s,
            )
        except (ClientError, BotoCoreError, TimeoutError) as exc:
            raise Unavailable(f"the vote store is unavailable: {exc}") from exc
        item = reply.get("Item")
        if item is None:
            return None
        return Ack(
            vote_id=item["vote_id"]["S"],
            partition=int(item.get("source_partition", {"N": "0"})["N"]),
            offset=int(item.get("source_offset", {"N": "0"})["N"]),
            received_at_ms=int(item.get("cast_at", {"N": "0"})["N"]),
            option_id=item["option_id"]["S"],
            poll_id=poll_id,
        )
