"""The dedup worker's loop: consume votes, decide, record, commit; partition by partition.

Each batch goes through four steps, and the order is what makes it exactly-once:

1. Decide every record of each partition against the partition's state (pure; changes
   are staged, not applied). Votes that came after their poll's close point, from
   voters the state no longer holds, are decided with what DynamoDB holds for them.
2. Write the accepted votes to DynamoDB, idempotently, BEFORE anything commits. A crash
   after this step replays the same decisions, which rewrite the same items.
3. Per partition, one transaction: the decisions to ``vote-results``, the state changes
   to the changelog, and the input offset. It commits all or nothing.
4. Only then apply the staged state.

Any failure rewinds the affected partitions to their committed offset with their
committed state; no transaction is ever left open between batches, so a rebalance
(which happens inside ``consume``) only ever sees settled partitions.

Owning a partition: an assigned partition stays paused until it is *open*: fenced (its
transactional id taken), its committed offset read, its state restored, in that order.
The restore runs beside the loop, which keeps polling, so however long it takes the
worker stays in its group. A partition whose commit is refused because another worker
took it is paused and dropped; librdkafka keeps that pause across revoke and re-assign,
so every assignment sets the pause explicitly and every open ends with a resume. If no
rebalance takes it away within a grace period (a zombie fenced us, and the group still
says it is ours), the worker opens it again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from confluent_kafka import OFFSET_INVALID, Consumer, KafkaException, Message, TopicPartition

from command_svc.worker.decisions import decide_and_record
from command_svc.worker.errors import LedgerUnavailable, PartitionLost, WorkerError
from command_svc.worker.metrics import DEAD_LETTERS, DECISION_LAG, DECISIONS, STAGE_SECONDS
from command_svc.worker.partition import Batch, PartitionProcessor, committed_offset
from command_svc.worker.ports import Checkpoints, VoteLedger
from voting import faults, telemetry
from voting.config import Settings
from voting.kafka import KafkaClients, take_batch

log = logging.getLogger(__name__)

RETRY_OPEN_S = 1.0


class DedupWorker:
    def __init__(
        self,
        settings: Settings,
        ledger: VoteLedger,
        checkpoints: Checkpoints,
        *,
        instance_id: str,
    ) -> None:
        self._settings = settings
        self._kafka = KafkaClients(settings.kafka, settings.topics)
        self._ledger = ledger
        self._checkpoints = checkpoints
        self._group_id = settings.worker.group_id
        self._consumer: Consumer = self._kafka.consumer(
            group_id=self._group_id, client_id=f"dedup-worker-{instance_id}"
        )
        # DynamoDB answers within this or the batch is retried: the loop must poll again
        # well inside max.poll.interval, or the group would evict the worker.
        self._ledger_timeout_s = settings.kafka.max_poll_interval_ms / 2000
        self._lost_grace_s = 2 * settings.kafka.session_timeout_ms / 1000
        self._processors: dict[int, PartitionProcessor] = {}  # open: restored and resumed
        self._assigned: set[int] = set()  # what the group gave us, as of the last callback
        self._to_open: dict[int, float] = {}  # partition -> when it may be opened
        self._opening: dict[int, PartitionProcessor] = {}
        self._open_tasks: set[asyncio.Task[None]] = set()
        # Every consumer call (and so every rebalance callback) runs on this one thread.
        self._consumer_thread = ThreadPoolExecutor(1, thread_name_prefix="votes-consumer")
        self._restorer = ThreadPoolExecutor(4, thread_name_prefix="restore")
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
                    self._start_opening()
                    if records:
                        await self._process(records)
        finally:
            for task in list(self._open_tasks):
                task.cancel()
            # Leaving the group revokes every partition: their producers close with no
            # transaction open, and the survivors take over at once.
            await self._on_consumer_thread(self._consumer.close)
            self._consumer_thread.shutdown(wait=True)
            self._restorer.shutdown(wait=False, cancel_futures=True)

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
        # Records of a partition that is not open are dropped: opening it seeks back.
        work = []
        refetch = []  # partitions whose records skipped an offset: fetched again from it
        for p, recs in by_partition.items():
            proc = self._processors.get(p)
            if proc is None:
                continue
            kept, gap = proc.contiguous(recs)
            if gap:
                refetch.append(proc)
            if kept:
                work.append((proc, kept))
        try:
            await self._decide_and_commit(work)
        finally:
            # After the commit: next_offset is then the first offset not yet decided.
            await self._rewind([proc for proc in refetch if not proc.cancelled])

    async def _decide_and_commit(
        self, work: list[tuple[PartitionProcessor, list[Message]]]
    ) -> None:
        if not work:
            return
        received_ns = telemetry.now_ns()
        try:
            batches = await asyncio.gather(
                *(
                    decide_and_record(
                        proc,
                        recs,
                        self._ledger,
                        timeout_s=self._ledger_timeout_s,
                        received_ns=received_ns,
                    )
                    for proc, recs in work
                )
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
        saves = []
        for (proc, _), batch, outcome in zip(work, batches, outcomes, strict=True):
            if isinstance(outcome, PartitionLost):
                log.warning(
                    "partition taken over; paused until a rebalance says who owns it",
                    extra={"partition": proc.partition, "error": str(outcome)},
                )
                batch.trace.finish(ok=False, error=str(outcome))
                await self._drop(proc, retry_in_s=self._lost_grace_s)
            elif isinstance(outcome, BaseException):
                batch.trace.finish(ok=False, error=str(outcome))
                log.error(
                    "commit failed, reopening the partition",
                    extra={"partition": proc.partition, "error": str(outcome)},
                )
                await self._drop(proc, retry_in_s=RETRY_OPEN_S)
            else:
                self.decided += batch.decided
                batch.trace.finish(ok=True)
                _observe(batch)
                if proc.checkpoint_due is not None:
                    saves.append(self._save_checkpoint(proc))
        if saves:
            await asyncio.gather(*saves)

    async def _save_checkpoint(self, proc: PartitionProcessor) -> None:
        due = proc.checkpoint_due
        if due is not None and await self._checkpoints.save(proc.partition, due):
            if proc.checkpoint_due is due:
                proc.checkpoint_due = None
            log.info(
                "checkpoint saved",
                extra={"partition": proc.partition, "start": due.start, "input": due.input_offset},
            )

    def positions(self) -> dict[int, int]:
        """Next offset to decide, per owned partition (for the lag probe)."""
        return {p: proc.next_offset for p, proc in list(self._processors.items())}

    async def _rewind(self, procs: list[PartitionProcessor]) -> None:
        for proc in procs:
            try:
                await self._on_consumer_thread(
                    self._consumer.seek,
                    TopicPartition(self._settings.topics.votes, proc.partition, proc.next_offset),
                )
            except KafkaException as exc:
                # Where it would fetch from is unknown now: open it again from its commit.
                log.warning(
                    "seek refused; reopening the partition",
                    extra={"partition": proc.partition, "error": str(exc)},
                )
                await self._drop(proc, retry_in_s=RETRY_OPEN_S)

    async def _drop(self, proc: PartitionProcessor, *, retry_in_s: float) -> None:
        """Stops working a partition (paused, no state) and opens it again later if the
        group still says it is ours then."""
        partition = proc.partition
        if self._processors.get(partition) is proc:
            del self._processors[partition]
        proc.close()
        await self._on_consumer_thread(
            self._consumer.pause, [TopicPartition(self._settings.topics.votes, partition)]
        )
        if partition in self._assigned:
            self._to_open[partition] = time.monotonic() + retry_in_s

    # -- opening partitions: fence, committed offset, restore, resume ----------------------

    def _start_opening(self) -> None:
        now = time.monotonic()
        due = [
            p
            for p, at in self._to_open.items()
            if at <= now and p in self._assigned and p not in self._opening
        ]
        if not due:
            return
        for partition in due:
            del self._to_open[partition]
        task = asyncio.create_task(self._open(sorted(due)), name=f"open-{due}")
        self._open_tasks.add(task)
        task.add_done_callback(self._open_tasks.discard)

    async def _open(self, partitions: list[int]) -> None:
        """Fences every partition, then reads the committed offsets, then restores: in that
        order (on the local broker a fence also releases offset commits parked behind the
        previous owner's transaction). Partitions fence and restore in parallel: a
        rebalance costs one round of each, not one per partition."""
        rewrite_min = self._settings.worker.changelog_rewrite_min
        procs = {
            p: PartitionProcessor(
                partition=p,
                kafka=self._kafka,
                topics=self._settings.topics,
                group_id=self._group_id,
                rewrite_min=rewrite_min,
            )
            for p in partitions
        }
        self._opening.update(procs)
        loop = asyncio.get_running_loop()
        try:
            await asyncio.gather(*(asyncio.to_thread(proc.fence) for proc in procs.values()))
            committed = await self._on_consumer_thread(self._committed, partitions)
            checkpoints = await self._checkpoints.load(partitions)
            restored = await asyncio.gather(
                *(
                    loop.run_in_executor(
                        self._restorer, proc.restore, committed[p], checkpoints.get(p)
                    )
                    for p, proc in procs.items()
                ),
                return_exceptions=True,
            )
        except (KafkaException, WorkerError) as exc:
            restored = [exc] * len(procs)
        ready = []
        for (partition, proc), outcome in zip(procs.items(), restored, strict=True):
            if self._opening.get(partition) is not proc:
                continue  # revoked while opening
            del self._opening[partition]
            if isinstance(outcome, BaseException):
                log.warning(
                    "could not open partition; retrying",
                    extra={"partition": partition, "error": str(outcome)},
                )
                proc.close()
                self._to_open[partition] = time.monotonic() + RETRY_OPEN_S
                continue
            ready.append(proc)
        if ready:
            await self._on_consumer_thread(self._resume, ready)

    def _committed(self, partitions: list[int]) -> dict[int, int]:
        topic = self._settings.topics.votes
        found = self._consumer.committed([TopicPartition(topic, p) for p in partitions], 30)
        offsets = {}
        for tp in found:
            earliest = 0
            if tp.error is None and tp.offset == OFFSET_INVALID:
                earliest, _ = self._consumer.get_watermark_offsets(
                    TopicPartition(topic, tp.partition), timeout=10, cached=False
                )
            offsets[tp.partition] = committed_offset(tp, earliest=earliest)
        return offsets

    def _resume(self, procs: list[PartitionProcessor]) -> None:
        """On the consumer thread: each partition fetches again from its committed offset."""
        topic = self._settings.topics.votes
        for proc in procs:
            if proc.partition not in self._assigned or proc.cancelled:
                continue
            try:
                self._consumer.seek(TopicPartition(topic, proc.partition, proc.next_offset))
            except KafkaException as exc:
                # Right after an assignment librdkafka may refuse a seek until the
                # partition's fetcher has started: open it again in a moment.
                log.info(
                    "seek refused; retrying", extra={"partition": proc.partition, "error": str(exc)}
                )
                proc.close()
                self._to_open[proc.partition] = time.monotonic() + 0.2
                continue
            self._processors[proc.partition] = proc
            self._consumer.resume([TopicPartition(topic, proc.partition)])
        log.info("working", extra={"partitions": self.partitions})

    # -- rebalance callbacks: called inside consume(), on the consumer thread ---------------

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        consumer.assign(partitions)
        consumer.pause(partitions)  # until each one is open
        for tp in partitions:
            self._assigned.add(tp.partition)
            self._to_open[tp.partition] = 0.0
        log.info("assigned", extra={"partitions": [tp.partition for tp in partitions]})

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        for tp in partitions:
            self._assigned.discard(tp.partition)
            self._to_open.pop(tp.partition, None)
            for table in (self._processors, self._opening):
                proc = table.pop(tp.partition, None)
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
