"""Writes accepted votes to the DynamoDB ``votes`` table, the source of truth.

Each write is conditional: ``attribute_not_exists(pk) OR vote_id = :vote_id``. Replaying a
vote (after a crash or an aborted transaction) rewrites the same item; a second vote for
the same voter and poll can never be stored. If the table already holds another vote for
the voter (the worker's state was lost), the table wins and the worker rejects the new
vote as a duplicate of the stored one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from command_svc.worker.errors import LedgerUnavailable
from voting.dynamodb import error_code, vote_pk


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    poll_id: str
    shard: int
    voter_key: str
    vote_id: str
    option_id: str
    cast_at_ms: int
    partition: int
    offset: int


class VoteLedger:
    def __init__(self, ddb: Any, table: str, *, concurrency: int) -> None:
        self._ddb = ddb
        self._table = table
        self._slots = asyncio.Semaphore(concurrency)

    async def record(self, entries: Sequence[LedgerEntry], decided_at_ms: int) -> dict[int, str]:
        """Writes every entry; returns {index: stored vote id} for voters who already had one."""
        results = await asyncio.gather(*(self._put(e, decided_at_ms) for e in entries))
        return {i: stored for i, stored in enumerate(results) if stored is not None}

    async def _put(self, entry: LedgerEntry, decided_at_ms: int) -> str | None:
        item = {
            "pk": {"S": vote_pk(entry.poll_id, entry.shard)},
            "voter_key": {"S": entry.voter_key},
            "poll_id": {"S": entry.poll_id},
            "vote_id": {"S": entry.vote_id},
            "option_id": {"S": entry.option_id},
            "cast_at": {"N": str(entry.cast_at_ms)},
            "decided_at": {"N": str(decided_at_ms)},
            "source_partition": {"N": str(entry.partition)},
            "source_offset": {"N": str(entry.offset)},
        }
        async with self._slots:
            try:
                await self._ddb.put_item(
                    TableName=self._table,
                    Item=item,
                    ConditionExpression="attribute_not_exists(pk) OR vote_id = :vote_id",
                    ExpressionAttributeValues={":vote_id": {"S": entry.vote_id}},
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
            except ClientError as exc:
                if error_code(exc) != "ConditionalCheckFailedException":
                    raise LedgerUnavailable(str(exc)) from exc
                stored = exc.response.get("Item", {}).get("vote_id", {}).get("S")
                if stored is None:
                    stored = await self._stored_vote(entry)
                return str(stored)
            except BotoCoreError as exc:
                raise LedgerUnavailable(str(exc)) from exc
        return None

    async def _stored_vote(self, entry: LedgerEntry) -> str:
        reply = await self._ddb.get_item(
            TableName=self._table,
            Key={
                "pk": {"S": vote_pk(entry.poll_id, entry.shard)},
                "voter_key": {"S": entry.voter_key},
            },
            ConsistentRead=True,
        )
        return str(reply["Item"]["vote_id"]["S"])
