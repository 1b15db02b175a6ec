"""The recount's source of truth on DynamoDB (the RecountSource port).

A poll's votes live under ``<poll>#<shard>`` partition keys: one strongly consistent
Query per shard reads exactly this poll's items and never touches other polls' votes. (A
Scan, even in parallel segments, would read the whole table, hundreds of millions of
items, for every poll; an index on poll id would put a hot poll's writes on one index
partition.) Each shard's count is saved in the ``results`` table as it completes, so a
recount killed midway resumes where it stopped.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from projector.errors import PollNotClosed, ProjectorError
from voting.config import DynamoDBSettings
from voting.dynamodb import vote_pk


class DynamoDBRecountSource:
    def __init__(self, ddb: Any, settings: DynamoDBSettings) -> None:
        self._ddb = ddb
        self._settings = settings

    async def closed_poll_shards(self, poll_id: str) -> int:
        try:
            reply = await self._ddb.get_item(
                TableName=self._settings.polls_table,
                Key={"poll_id": {"S": poll_id}},
                ConsistentRead=True,
            )
        except (ClientError, BotoCoreError) as exc:
            raise ProjectorError(f"cannot read poll {poll_id!r}: {exc}") from exc
        item = reply.get("Item")
        if item is None or item["status"]["S"] != "CLOSED":
            raise PollNotClosed(f"poll {poll_id!r} is not closed")
        return int(item["ledger_shards"]["N"])

    async def saved_counts(self, poll_id: str) -> dict[int, Counter[str]]:
        await self._ddb.update_item(
            TableName=self._settings.results_table,
            Key={"poll_id": {"S": poll_id}},
            UpdateExpression="SET shards = if_not_exists(shards, :empty)",
            ExpressionAttributeValues={":empty": {"M": {}}},
        )
        reply = await self._ddb.get_item(
            TableName=self._settings.results_table,
            Key={"poll_id": {"S": poll_id}},
            ConsistentRead=True,
        )
        shards = reply.get("Item", {}).get("shards", {}).get("M", {})
        return {
            int(index): Counter({o: int(v["N"]) for o, v in counted["M"].items()})
            for index, counted in shards.items()
        }

    async def count_shard(self, poll_id: str, shard: int) -> Counter[str]:
        counted: Counter[str] = Counter()
        kwargs: dict[str, Any] = {
            "TableName": self._settings.votes_table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": vote_pk(poll_id, shard)}},
            "ProjectionExpression": "option_id",
            "ConsistentRead": True,
        }
        while True:
            page = await self._ddb.query(**kwargs)
            counted.update(item["option_id"]["S"] for item in page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return counted
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    async def save_counts(self, poll_id: str, shard: int, counted: Counter[str]) -> None:
        value = {"M": {o: {"N": str(n)} for o, n in counted.items()}}
        await self._ddb.update_item(
            TableName=self._settings.results_table,
            Key={"poll_id": {"S": poll_id}},
            UpdateExpression="SET shards.#s = :counted",
            ExpressionAttributeNames={"#s": str(shard)},
            ExpressionAttributeValues={":counted": value},
        )

    async def store_final(
        self,
        poll_id: str,
        counts: dict[str, int],
        live: dict[str, int],
        matched: bool,
        now_ms: int,
    ) -> None:
        def as_map(values: dict[str, int]) -> dict[str, Any]:
            return {"M": {o: {"N": str(n)} for o, n in values.items()}}

        await self._ddb.update_item(
            TableName=self._settings.results_table,
            Key={"poll_id": {"S": poll_id}},
            # A second run keeps the first run's report (it compared the original live count).
            UpdateExpression=(
                "SET counts = if_not_exists(counts, :counts), "
                "#total = if_not_exists(#total, :total), "
                "live_counts = if_not_exists(live_counts, :live), "
                "matched = if_not_exists(matched, :matched), "
                "recounted_at = if_not_exists(recounted_at, :now), #status = :final"
            ),
            ExpressionAttributeNames={"#total": "total", "#status": "status"},
            ExpressionAttributeValues={
                ":counts": as_map(counts),
                ":total": {"N": str(sum(counts.values()))},
                ":live": as_map(live),
                ":matched": {"BOOL": matched},
                ":now": {"N": str(now_ms)},
                ":final": {"S": "FINAL"},
            },
        )

    async def not_final(self) -> list[str]:
        """Closed polls whose results are not FINAL yet, from DynamoDB (the source of truth),
        so a sweep also finds polls whose close the read model never saw."""
        kwargs: dict[str, Any] = {
            "TableName": self._settings.polls_table,
            "ProjectionExpression": "poll_id",
            "FilterExpression": "#status = :closed",
            "ExpressionAttributeNames": {"#status": "status"},
            "ExpressionAttributeValues": {":closed": {"S": "CLOSED"}},
        }
        closed: list[str] = []
        while True:
            page = await self._ddb.scan(**kwargs)
            closed += [item["poll_id"]["S"] for item in page.get("Items", [])]
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        pending = []
        for poll_id in sorted(closed):
            reply = await self._ddb.get_item(
                TableName=self._settings.results_table,
                Key={"poll_id": {"S": poll_id}},
                ProjectionExpression="#status",
                ExpressionAttributeNames={"#status": "status"},
                ConsistentRead=True,
            )
            if reply.get("Item", {}).get("status", {}).get("S") != "FINAL":
                pending.append(poll_id)
        return pending
