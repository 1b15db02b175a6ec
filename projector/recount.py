"""The recount: makes a closed poll's results strongly consistent.

1. Wait until the pipeline has drained for the poll: the projector has applied the
   poll's close marker from every partition. The worker writes a partition's accepted
   votes to DynamoDB before it forwards that partition's marker, so by then DynamoDB
   holds every vote counted before the close. No broker end offsets are involved.
2. Count the poll's accepted votes in the source of truth, shard by shard, in parallel,
   saving each shard's count as it completes (``recount_source``), so a recount killed
   midway resumes where it stopped.
3. Store the tally, compare it with the live count, and finalize the read model: counts
   replaced by the recount, the comparison recorded, marked FINAL, and watchers notified
   (their streams end with this snapshot).

Running it twice is safe: the second run finds the results final and changes nothing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from dataclasses import dataclass

from projector.errors import NotDrained
from projector.metrics import RECOUNT_MISMATCHES, RECOUNTS
from projector.ports import FinalState, ReadModel, RecountSource
from voting.v1 import results_pb2

log = logging.getLogger(__name__)

SHARD_CONCURRENCY = 16


@dataclass(frozen=True)
class RecountOutcome:
    poll_id: str
    counts: dict[str, int]
    live: dict[str, int]  # the live count the first recount compared
    matched: bool
    finalized: bool  # False when the results were already final
    final: FinalState  # version, times, report and watermark of the FINAL results


class Recount:
    def __init__(self, source: RecountSource, read_model: ReadModel) -> None:
        self._source = source
        self._model = read_model
        self.mismatches = 0

    async def drained(self, poll_id: str) -> bool:
        return await self._model.drained(poll_id)

    async def pending(self) -> list[str]:
        return await self._source.not_final()

    async def run(self, poll_id: str, *, drain_timeout_s: float = 60.0) -> RecountOutcome:
        options = await self._model.poll_options(poll_id)
        shards = await self._source.closed_poll_shards(poll_id)
        deadline = time.monotonic() + drain_timeout_s
        while not await self._model.drained(poll_id):
            if time.monotonic() > deadline:
                raise NotDrained(
                    f"poll {poll_id!r} has not passed its close point in every partition yet"
                )
            await asyncio.sleep(0.2)
        counted = await self._count(poll_id, shards)
        counts = {o: counted.get(o, 0) for o in options}
        live = await self._model.live_counts(poll_id, options)
        matched = live == counts
        now_ms = time.time_ns() // 1_000_000
        report = results_pb2.RecountReport(
            live_counts=[results_pb2.OptionCount(option_id=o, votes=live[o]) for o in options],
            live_total=sum(live.values()),
            matched=matched,
        )
        report.recounted_at.FromMilliseconds(now_ms)
        await self._source.store_final(poll_id, counts, live, matched, now_ms)
        finalized, version = await self._model.finalize(poll_id, counts, report, now_ms)
        if finalized:
            RECOUNTS.labels("matched" if matched else "mismatched").inc()
            await self._model.notify({poll_id: version})
            if not matched:
                RECOUNT_MISMATCHES.inc()
                self.mismatches += 1
                log.warning(
                    "recount differs from the live count; read model repaired",
                    extra={"poll_id": poll_id, "recount": counts, "live": live},
                )
            log.info(
                "poll results are final",
                extra={"poll_id": poll_id, "counts": counts, "matched": matched},
            )
        final = await self._model.final_state(poll_id)
        if not finalized:  # a second run: the first one's comparison stands
            live = {c.option_id: int(c.votes) for c in final.report.live_counts} or live
            matched = final.report.matched
        return RecountOutcome(poll_id, counts, live, matched, finalized, final)

    async def _count(self, poll_id: str, shards: int) -> Counter[str]:
        done = await self._source.saved_counts(poll_id)
        slots = asyncio.Semaphore(SHARD_CONCURRENCY)

        async def shard(index: int) -> Counter[str]:
            if index in done:
                return done[index]
            async with slots:
                counted = await self._source.count_shard(poll_id, index)
            await self._source.save_counts(poll_id, index, counted)
            return counted

        total: Counter[str] = Counter()
        for counted in await asyncio.gather(*(shard(s) for s in range(shards))):
            total.update(counted)
        return total
