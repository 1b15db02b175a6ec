"""The dedup worker's loop: consume votes, decide, record, commit; partition by partition.

Each batch goes through four steps, and the order is what makes it exactly-once:

1. Decide every record of each partition against the partition's state (pure; changes
   are staged, not applied).
2. Write the accepted votes to DynamoDB, idempotently, BEFORE anything commits. A crash
   after this step replays the same decisions, which rewrite the same items.
3. Per partition, one transaction: the decisions to ``vote-results``, the state changes
   to the changelog, and the input offset. It commits all or nothing.
4. Only then apply the staged state.

Any failure rewinds the affected partitions to their committed offset with their
committed state; no transaction is ever left open between batches, so a rebalance
(which happens inside ``consume``) only ever sees settled partitions.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from confluent_kafka import Consumer, Message, TopicPartition

from command_svc.worker.errors import LedgerUnavailable, PartitionLost, WorkerError
from command_svc.worker.ledger import VoteLedger
from command_svc.worker.metrics import DEAD_LETTERS, DECISION_LAG, DECISIONS, STAGE_SECONDS
from command_svc.worker.partition import Batch, PartitionProcessor
from voting import faults, telemetry
from voting.config import Settings
from voting.kafka import KafkaClients, take_batch

log = logging.getLogger(__name__)


class DedupWorker:
    def __init__(self, settings: Settings, ledger: VoteLedger, *, instance_id: str) -> None:
        self._settings = settings
        self._kafka = KafkaClients(settings.kafka, settings.topics)
        self._ledger = ledger
        self._group_id = settings.worker.group_id
        self._consumer: Consumer = self._kafka.consumer(
            group_id=self._group_id, client_id=f"dedup-worker-{instance_id}"
        )
        self._processors: dict[int, PartitionProcessor] = {}
        # Every consumer call (and so every rebalance callback) runs on this one thread.
        self._consumer_thread = ThreadPoolExecutor(1, thread_name_prefix="votes-consumer")
        self.decided = 0

    @property
    def partitions(self) -> list[int]:
        return sorted(self._processors)

    async def run(self, stop: asyncio.Event) -> None:
        await self._on_consumer_thread(
            self._consumer.subscribe,
            [self._settings.topics.votes],
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_revoke,
        )
        try:
            while not stop.is_set():
                with telemetry.background():
                    records = await self._on_consumer_thread(
                        take_batch,
                        self._consumer,
                        max_records=self._settings.worker.batch_max,
                        wait_s=0.2,
                    )
                    if records:
                        await self._process(records)
        finally:
            # Leaving the group revokes every partition: their producers close with no
            # transaction open, and the survivors take over at once.
            await self._on_consumer_thread(self._consumer.close)
            self._consumer_thread.shutdown(wait=True)

    async def _on_consumer_thread(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._consumer_thread, lambda: fn(*args, **kwargs))

    async def _process(self, records: list[Message]) -> None:
        by_partition: dict[int, list[Message]] = defaultdict(list)
        for msg in records:
            if msg.error() is not None:
                log.warning("consumer error: %s", msg.error())
                continue
            by_partition[msg.partition() or 0].append(msg)
        work = [
            (self._processors[p], recs) for p, recs in by_partition.items() if p in self._processors
        ]
        if not work:
            return
        received_ns = telemetry.now_ns()
        try:
            batches = await asyncio.gather(
                *(self._decide_and_record(proc, recs, received_ns) for proc, recs in work)
            )
        except LedgerUnavailable as exc:
            log.warning("DynamoDB unavailable, retrying the batch", extra={"error": str(exc)})
            await self._rewind([proc for proc, _ in work])
            await asyncio.sleep(1.0)
            return
        faults.point("worker.after-ledger")
        metadata = await self._on_consumer_thread(self._consumer.consumer_group_metadata)
        outcomes = await asyncio.gather(
            *(
                asyncio.to_thread(proc.commit, batch, metadata)
                for (proc, _), batch in zip(work, batches, strict=True)
            ),
            return_exceptions=True,
        )
        for (proc, _), batch, outcome in zip(work, batches, outcomes, strict=True):
            if isinstance(outcome, PartitionLost):
                log.warning(
                    "partition taken over; pausing it until the rebalance",
                    extra={"partition": proc.partition},
                )
                batch.trace.finish(ok=False, error=str(outcome))
                await self._pause(proc.partition)
            elif isinstance(outcome, BaseException):
                batch.trace.finish(ok=False, error=str(outcome))
                log.error(
                    "commit failed, reopening the partition",
                    extra={"partition": proc.partition, "error": str(outcome)},
                )
                await self._reopen(proc)
            else:
                self.decided += batch.decided
                batch.trace.finish(ok=True)
                _observe(batch)

    async def _decide_and_record(
        self, proc: PartitionProcessor, records: list[Message], received_ns: int
    ) -> Batch:
        truths: dict[tuple[str, str], str] = {}
        for _ in range(10):
            batch = proc.decide(records, truths, received_ns=received_ns)
            if not batch.ledger:
                return batch
            started = telemetry.now_ns()
            try:
                conflicts = await self._ledger.record(batch.ledger, started // 1_000_000)
            except LedgerUnavailable as exc:
                batch.trace.finish(ok=False, error=str(exc))
                raise
            batch.trace.step("dynamodb write", started, telemetry.now_ns())
            if not conflicts:
                return batch
            batch.trace.finish(ok=False, error="decided again: DynamoDB knew other votes")
            # DynamoDB already holds another vote for these voters: it wins; decide again.
            for index, stored_vote_id in conflicts.items():
                entry = batch.ledger[index]
                truths[(entry.poll_id, entry.voter_key)] = stored_vote_id
            log.warning(
                "state disagreed with DynamoDB; re-deciding", extra={"conflicts": len(conflicts)}
            )
        raise WorkerError("decisions did not converge with DynamoDB")

    def positions(self) -> dict[int, int]:
        """Next offset to decide, per owned partition (for the lag probe)."""
        return {p: proc.next_offset for p, proc in list(self._processors.items())}

    async def _rewind(self, procs: list[PartitionProcessor]) -> None:
        tps = [
            TopicPartition(self._settings.topics.votes, p.partition, p.next_offset) for p in procs
        ]
        for tp in tps:
            await self._on_consumer_thread(self._consumer.seek, tp)

    async def _reopen(self, proc: PartitionProcessor) -> None:
        await self._on_consumer_thread(self._open, self._consumer, [proc])
        await self._on_consumer_thread(
            self._consumer.seek,
            TopicPartition(self._settings.topics.votes, proc.partition, proc.next_offset),
        )

    async def _pause(self, partition: int) -> None:
        self._processors.pop(partition, None)
        await self._on_consumer_thread(
            self._consumer.pause, [TopicPartition(self._settings.topics.votes, partition)]
        )

    # -- rebalance callbacks: called inside consume(), on the consumer thread ---------------

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        procs = [
            PartitionProcessor(
                partition=tp.partition,
                kafka=self._kafka,
                topics=self._settings.topics,
                group_id=self._group_id,
            )
            for tp in partitions
        ]
        self._open(consumer, procs)
        for tp, proc in zip(partitions, procs, strict=True):
            tp.offset = proc.next_offset
            self._processors[tp.partition] = proc
        consumer.assign(partitions)
        log.info("assigned", extra={"partitions": [tp.partition for tp in partitions]})

    def _open(self, consumer: Consumer, procs: list[PartitionProcessor]) -> None:
        """Fence every partition, then read the committed offsets, then restore: in that
        order, and on this (the consumer's) thread for the consumer calls. Partitions fence
        and restore in parallel: a rebalance costs one round of each, not one per partition.
        """
        workers = max(1, len(procs))
        with ThreadPoolExecutor(workers, thread_name_prefix="open") as pool:
            list(pool.map(PartitionProcessor.fence, procs))
            tps = [TopicPartition(self._settings.topics.votes, p.partition) for p in procs]
            committed = consumer.committed(tps, timeout=30)
            list(pool.map(PartitionProcessor.restore, procs, [tp.offset for tp in committed]))

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        for tp in partitions:
            proc = self._processors.pop(tp.partition, None)
            if proc is not None:
                proc.close()
        log.info("revoked", extra={"partitions": [tp.partition for tp in partitions]})


def _observe(batch: Batch) -> None:
    for outcome, count in batch.outcomes.items():
        DECISIONS.labels(outcome).inc(count)
    if batch.dead_letters:
        DEAD_LETTERS.labels("worker").inc(len(batch.dead_letters))
    for stage, (start, end) in batch.trace.steps.items():
        STAGE_SECONDS.labels(stage.rsplit(" ", 1)[-1]).observe((end - start) / 1e9)
    now_ms = time.time_ns() // 1_000_000
    for cast_ms in batch.cast_ms:
        DECISION_LAG.observe(max(0, now_ms - cast_ms) / 1000)
