"""Where each partition's changelog restore starts: the latest committed checkpoint.

One item per (worker group, changelog incarnation, partition) in the ``checkpoints``
table. It is written only after the transaction holding the rewrite committed, and only
forwards; a stale or missing item costs a longer restore, never a wrong one (reading from
an older offset reads a superset). The changelog's incarnation (from its topic id) is
part of the name, so a re-created topic never starts from an offset of the old one.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from command_svc.worker.partition import Checkpoint
from voting.dynamodb import error_code

log = logging.getLogger(__name__)

TIMEOUT_S = 3.0


class DynamoDBCheckpoints:
    """The Checkpoints port on the DynamoDB ``checkpoints`` table."""

    def __init__(self, ddb: Any, table: str, *, prefix: str) -> None:
        self._ddb = ddb
        self._table = table
        self._prefix = prefix

    def _name(self, partition: int) -> str:
        return f"{self._prefix}/{partition}"

    async def load(self, partitions: list[int]) -> dict[int, Checkpoint]:
        """The checkpoints of ``partitions`` that exist; none when DynamoDB does not answer
        in time (the restore then reads the whole changelog: slower, still exact)."""
        found: dict[int, Checkpoint] = {}
        try:
            replies = await asyncio.wait_for(
                asyncio.gather(
                    *(
                        self._ddb.get_item(
                            TableName=self._table,
                            Key={"name": {"S": self._name(p)}},
                            ConsistentRead=True,
                        )
                        for p in partitions
                    )
                ),
                TIMEOUT_S,
            )
        except (ClientError, BotoCoreError, TimeoutError) as exc:
            log.warning(
                "checkpoints unavailable; restoring from the start", extra={"error": str(exc)}
            )
            return found
        for partition, reply in zip(partitions, replies, strict=True):
            item = reply.get("Item")
            if item is not None:
                found[partition] = Checkpoint(
                    start=int(item["start"]["N"]), input_offset=int(item["input_offset"]["N"])
                )
        return found

    async def save(self, partition: int, checkpoint: Checkpoint) -> bool:
        """Records the checkpoint unless a later one is stored; False if DynamoDB failed."""
        try:
            await asyncio.wait_for(
                self._ddb.put_item(
                    TableName=self._table,
                    Item={
                        "name": {"S": self._name(partition)},
                        "start": {"N": str(checkpoint.start)},
                        "input_offset": {"N": str(checkpoint.input_offset)},
                    },
                    ConditionExpression="attribute_not_exists(#n) OR input_offset < :offset",
                    ExpressionAttributeNames={"#n": "name"},
                    ExpressionAttributeValues={":offset": {"N": str(checkpoint.input_offset)}},
                ),
                TIMEOUT_S,
            )
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return True  # a later checkpoint is stored already
            log.warning("checkpoint not saved", extra={"partition": partition, "error": str(exc)})
            return False
        except (BotoCoreError, TimeoutError) as exc:
            log.warning("checkpoint not saved", extra={"partition": partition, "error": str(exc)})
            return False
        return True
