"""Writes accepted votes to the DynamoDB ``votes`` table, the source of truth.

Every write is conditional: ``attribute_not_exists(pk) OR (vote_id = :vote_id AND
option_id = :option_id)``. Replaying a vote (after a crash or an aborted transaction)
rewrites the same item; a second vote for the same voter and poll can never be stored,
and a stored vote's option never changes (a request id reused for another option keeps
its vote id, so the vote id alone does not say it is the same vote). If the table
already holds another vote for the voter (the worker's state was lost), the table wins
and the worker rejects the new vote as a duplicate of the stored one, or as a repeat of
it when the vote id is the same.

Two ways to send them, chosen by VOTING_LEDGER_WRITES:

``transact`` (default)  TransactWriteItems of up to 100 conditional puts. Far fewer
                        requests: on DynamoDB Local ~8x the rate of single puts. A
                        conflict cancels its chunk; the cancellation reasons say which
                        items conflicted, and the rest are written again.
``put``                 one conditional PutItem per vote, many in flight. On AWS this
                        costs half the write capacity of a transaction per item.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from botocore.exceptions import BotoCoreError, ClientError

from command_svc.worker.errors import LedgerUnavailable
from voting.dynamodb import error_code, vote_pk

WriteMode = Literal["transact", "put"]
CHUNK = 100  # TransactWriteItems' limit
_CONDITION = "attribute_not_exists(pk) OR (vote_id = :vote_id AND option_id = :option_id)"
BATCH_GET = 100  # BatchGetItem's limit


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

    def key(self) -> dict[str, Any]:
        return {"pk": {"S": vote_pk(self.poll_id, self.shard)}, "voter_key": {"S": self.voter_key}}

    def values(self) -> dict[str, Any]:
        return {":vote_id": {"S": self.vote_id}, ":option_id": {"S": self.option_id}}

    def item(self, decided_at_ms: int) -> dict[str, Any]:
        return {
            "pk": {"S": vote_pk(self.poll_id, self.shard)},
            "voter_key": {"S": self.voter_key},
            "poll_id": {"S": self.poll_id},
            "vote_id": {"S": self.vote_id},
            "option_id": {"S": self.option_id},
            "cast_at": {"N": str(self.cast_at_ms)},
            "decided_at": {"N": str(decided_at_ms)},
            "source_partition": {"N": str(self.partition)},
            "source_offset": {"N": str(self.offset)},
        }


class DynamoDBVoteLedger:
    """The VoteLedger port on the DynamoDB ``votes`` table."""

    def __init__(
        self,
        ddb: Any,
        table: str,
        *,
        concurrency: int,
        mode: WriteMode = "transact",
        barrier: tuple[str, str] | None = None,
    ) -> None:
        """``barrier``: (table, key) of an item written after each batch of transactions
        (see VOTING_LEDGER_BARRIER)."""
        self._ddb = ddb
        self._table = table
        self._mode = mode
        self._slots = asyncio.Semaphore(concurrency)
        self._barrier = barrier

    async def record(self, entries: Sequence[LedgerEntry], decided_at_ms: int) -> dict[int, str]:
        """Writes every entry; returns {index: stored vote id} for voters who already had
        another vote. Entries not in the result are durably stored."""
        try:
            if self._mode == "put":
                stored = await asyncio.gather(*(self._put(e, decided_at_ms) for e in entries))
                return {i: s for i, s in enumerate(stored) if s is not None}
            chunks = [range(i, min(i + CHUNK, len(entries))) for i in range(0, len(entries), CHUNK)]
            conflicts: dict[int, str] = {}
            for found in await asyncio.gather(
                *(self._transact(entries, c, decided_at_ms) for c in chunks)
            ):
                conflicts.update(found)
            if self._barrier is not None:
                await self._confirm(decided_at_ms)
            return conflicts
        except BotoCoreError as exc:
            raise LedgerUnavailable(str(exc)) from exc

    async def _confirm(self, decided_at_ms: int) -> None:
        """A PutItem after the transactions: once it is acknowledged, DynamoDB Local has
        written them to disk too (it applies writes in order)."""
        assert self._barrier is not None
        table, key = self._barrier
        try:
            await self._ddb.put_item(
                TableName=table,
                Item={"name": {"S": key}, "at": {"N": str(decided_at_ms)}},
            )
        except ClientError as exc:
            raise LedgerUnavailable(f"ledger barrier failed: {exc}") from exc

    async def _transact(
        self, entries: Sequence[LedgerEntry], chunk: range, decided_at_ms: int
    ) -> dict[int, str]:
        pending = list(chunk)
        conflicts: dict[int, str] = {}
        for attempt in range(8):
            if not pending:
                break
            puts = [
                {
                    "Put": {
                        "TableName": self._table,
                        "Item": entries[i].item(decided_at_ms),
                        "ConditionExpression": _CONDITION,
                        "ExpressionAttributeValues": entries[i].values(),
                        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                    }
                }
                for i in pending
            ]
            async with self._slots:
                try:
                    await self._ddb.transact_write_items(TransactItems=puts)
                    return conflicts
                except ClientError as exc:
                    if error_code(exc) != "TransactionCanceledException":
                        raise LedgerUnavailable(str(exc)) from exc
                    reasons = exc.response.get("CancellationReasons", [])
            if len(reasons) != len(pending):
                # Without one reason per item we cannot tell what was written: nothing was
                # (a cancelled transaction writes nothing), so the chunk is retried whole.
                await asyncio.sleep(0.05 * 2**attempt)
                continue
            retry = []
            for index, reason in zip(pending, reasons, strict=True):
                if reason.get("Code") == "ConditionalCheckFailed":
                    stored = reason.get("Item", {}).get("vote_id", {}).get("S")
                    conflicts[index] = (
                        str(stored) if stored else await self._stored_vote(entries[index])
                    )
                else:
                    retry.append(index)  # cancelled alongside a conflict, or a transient conflict
            if len(retry) == len(pending):
                await asyncio.sleep(0.05 * 2**attempt)  # e.g. TransactionConflict: back off
            pending = retry
        if pending:
            raise LedgerUnavailable(f"{len(pending)} votes could not be written after retries")
        return conflicts

    async def _put(self, entry: LedgerEntry, decided_at_ms: int) -> str | None:
        async with self._slots:
            try:
                await self._ddb.put_item(
                    TableName=self._table,
                    Item=entry.item(decided_at_ms),
                    ConditionExpression=_CONDITION,
                    ExpressionAttributeValues=entry.values(),
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
            except ClientError as exc:
                if error_code(exc) != "ConditionalCheckFailedException":
                    raise LedgerUnavailable(str(exc)) from exc
                stored = exc.response.get("Item", {}).get("vote_id", {}).get("S")
                return str(stored) if stored else await self._stored_vote(entry)
        return None

    async def _stored_vote(self, entry: LedgerEntry) -> str:
        reply = await self._ddb.get_item(
            TableName=self._table, Key=entry.key(), ConsistentRead=True
        )
        return str(reply["Item"]["vote_id"]["S"])

    async def stored_votes(self, entries: Sequence[LedgerEntry]) -> dict[tuple[str, str], str]:
        """(poll, voter) -> the vote id stored for the voter ("" for none), read strongly
        consistently: what decides a vote that came after its poll closed."""
        found: dict[tuple[str, str], str] = {(e.poll_id, e.voter_key): "" for e in entries}
        unique = list({(e.poll_id, e.voter_key): e for e in entries}.values())
        try:
            for start in range(0, len(unique), BATCH_GET):
                keys = [e.key() for e in unique[start : start + BATCH_GET]]
                for _ in range(10):
                    async with self._slots:
                        reply = await self._ddb.batch_get_item(
                            RequestItems={
                                self._table: {
                                    "Keys": keys,
                                    "ConsistentRead": True,
                                    "ProjectionExpression": "poll_id, voter_key, vote_id",
                                }
                            }
                        )
                    for item in reply.get("Responses", {}).get(self._table, []):
                        found[(item["poll_id"]["S"], item["voter_key"]["S"])] = item["vote_id"]["S"]
                    keys = reply.get("UnprocessedKeys", {}).get(self._table, {}).get("Keys", [])
                    if not keys:
                        break
                    await asyncio.sleep(0.05)
                else:
                    raise LedgerUnavailable("stored votes could not be read after retries")
        except ClientError as exc:
            raise LedgerUnavailable(str(exc)) from exc
        except BotoCoreError as exc:
            raise LedgerUnavailable(str(exc)) from exc
        return found
