"""The recount: makes a closed poll's results strongly consistent.

1. Wait until the pipeline has drained for the poll: the projector has applied the
   poll's close marker from every partition. The worker writes a partition's accepted
   votes to DynamoDB before it forwards that partition's marker, so by then DynamoDB
   holds every vote counted before the close. No broker end offsets are involved.
2. Count the poll's accepted votes in DynamoDB, shard by shard. A poll's votes live
   under ``<poll>#<shard>`` partition keys: one strongly consistent Query per shard reads
   exactly this poll's items, in parallel, and never touches other polls' votes. (A
   Scan, even in parallel segments, would read the whole table, hundreds of millions of
   items, for every poll; an index on poll id would put a hot poll's writes on one
   index partition.) Each shard's count is saved in the ``results`` table as it
   completes, so a recount killed midway resumes where it stopped.
3. Write the tally to ``results``, compare it with the live count, and finalize the read
   model: counts replaced by the recount, the comparison recorded, marked FINAL, and
   watchers notified (their streams end with this snapshot).

Running it twice is safe: the second run finds the results final and changes nothing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from dataclasses import dataclass
from importlib import resources
from typing import Any

import redis.asyncio as aioredis
from botocore.exceptions import BotoCoreError, ClientError

from projector.errors import NotDrained, PollNotClosed, ProjectorError
from projector.metrics import RECOUNT_MISMATCHES, RECOUNTS
from voting.config import DynamoDBSettings
from voting.dynamodb import vote_pk
from voting.readmodel import CHANGES_CHANNEL, Keys, change_message, drained_field
from voting.redis import raw as as_bytes
from voting.redis import text
from voting.v1 import poll_pb2, results_pb2

log = logging.getLogger(__name__)

_FINALIZE = resources.files("projector").joinpath("finalize.lua").read_text()
SHARD_CONCURRENCY = 16


@dataclass(frozen=True)
class RecountOutcome:
    poll_id: str
    counts: dict[str, int]
    live: dict[str, int]
    matched: bool
    finalized: bool  # False when the results were already final


class Recount:
    def __init__(
        self,
        ddb: Any,
        settings: DynamoDBSettings,
        client: aioredis.Redis,
        keys: Keys,
        *,
        notify: bool = True,
    ) -> None:
        self._ddb = ddb
        self._settings = settings
        self._redis = client
        self.keys = keys
        self._notify = notify
        self._finalize = client.register_script(_FINALIZE)
        self.mismatches = 0

    async def drained(self, poll_id: str) -> bool:
        """Every partition has passed the poll's close point (its marker was applied)."""
        meta = self.keys.meta(poll_id)
        partitions = int(text(await self._redis.hget(meta, "partitions")) or "0")
        if partitions == 0:
            return False
        flags = await self._redis.hmget(meta, [drained_field(p) for p in range(partitions)])
        return all(text(flag) == "1" for flag in flags)

    async def run(self, poll_id: str, *, drain_timeout_s: float = 60.0) -> RecountOutcome:
        poll, shards = await self._poll(poll_id)
        deadline = time.monotonic() + drain_timeout_s
        while not await self.drained(poll_id):
            if time.monotonic() > deadline:
                raise NotDrained(
                    f"poll {poll_id!r} has not passed its close point in every partition yet"
                )
            await asyncio.sleep(0.2)
        counts = await self._count(poll_id, shards)
        options = [o.option_id for o in poll.options]
        counts = {o: counts.get(o, 0) for o in options}
        raw_live = await self._redis.hgetall(self.keys.counts(poll_id))
        live = {o: int(raw_live.get(o.encode(), 0)) for o in options}
        matched = live == counts
        now_ms = time.time_ns() // 1_000_000
        report = results_pb2.RecountReport(
            live_counts=[results_pb2.OptionCount(option_id=o, votes=live[o]) for o in options],
            live_total=sum(live.values()),
            matched=matched,
        )
        report.recounted_at.FromMilliseconds(now_ms)
        await self._store(poll_id, counts, live, matched, now_ms)
        args: list[str | int | bytes] = [now_ms, report.SerializeToString()]
        for option_id, count in counts.items():
            args += [option_id, count]
        finalized, version = await self._finalize(
            keys=[self.keys.counts(poll_id), self.keys.meta(poll_id)], args=args
        )
        await self._redis.srem(self.keys.closing, poll_id)
        if finalized:
            RECOUNTS.labels("matched" if matched else "mismatched").inc()
            if not matched:
                RECOUNT_MISMATCHES.inc()
        if finalized and self._notify:
            await self._redis.publish(CHANGES_CHANNEL, change_message(poll_id, int(version)))
            if not matched:
                self.mismatches += 1
                log.warning(
                    "recount differs from the live count; read model repaired",
                    extra={"poll_id": poll_id, "recount": counts, "live": live},
                )
            log.info(
                "poll results are final",
                extra={"poll_id": poll_id, "counts": counts, "matched": matched},
            )
        return RecountOutcome(poll_id, counts, live, matched, bool(finalized))

    async def pending(self) -> list[str]:
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

    async def _poll(self, poll_id: str) -> tuple[poll_pb2.Poll, int]:
        raw = await self._redis.get(self.keys.poll(poll_id))
        if raw is None:
            raise ProjectorError(f"poll {poll_id!r} is not in the read model")
        poll = poll_pb2.Poll.FromString(as_bytes(raw))
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
        return poll, int(item["ledger_shards"]["N"])

    async def _count(self, poll_id: str, shards: int) -> dict[str, int]:
        await self._ddb.update_item(
            TableName=self._settings.results_table,
            Key={"poll_id": {"S": poll_id}},
            UpdateExpression="SET shards = if_not_exists(shards, :empty)",
            ExpressionAttributeValues={":empty": {"M": {}}},
        )
        done = await self._progress(poll_id)
        slots = asyncio.Semaphore(SHARD_CONCURRENCY)

        async def shard(index: int) -> Counter[str]:
            if index in done:
                return done[index]
            async with slots:
                counted = await self._count_shard(poll_id, index)
            await self._save_shard(poll_id, index, counted)
            return counted

        total: Counter[str] = Counter()
        for counted in await asyncio.gather(*(shard(s) for s in range(shards))):
            total.update(counted)
        return dict(total)

    async def _count_shard(self, poll_id: str, shard: int) -> Counter[str]:
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

    async def _progress(self, poll_id: str) -> dict[int, Counter[str]]:
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

    async def _save_shard(self, poll_id: str, shard: int, counted: Counter[str]) -> None:
        value = {"M": {o: {"N": str(n)} for o, n in counted.items()}}
        await self._ddb.update_item(
            TableName=self._settings.results_table,
            Key={"poll_id": {"S": poll_id}},
            UpdateExpression="SET shards.#s = :counted",
            ExpressionAttributeNames={"#s": str(shard)},
            ExpressionAttributeValues={":counted": value},
        )

    async def _store(
        self, poll_id: str, counts: dict[str, int], live: dict[str, int], matched: bool, now_ms: int
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
