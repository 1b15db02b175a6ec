"""The projector's loop: decisions and poll events in, read model out.

Its read positions live in Redis, next to what they produced, not in Kafka: if Redis
loses its last writes (AOF fsyncs every second), the positions go back with them and
the projector re-reads exactly what was lost. Kafka commits are made too, but only so
lag can be watched.

When Redis is unreachable the projector pauses its partitions (staying in its group),
retries with backoff, then re-reads its positions and catches up. It does not wait for
the next record to find out that Redis lost data: once a second it checks that the
stored positions are still the ones it wrote. If Redis restarted empty, lost its last
second of AOF or failed over to a replica that was behind, they differ, and it re-reads
from the stored positions (from the start of the log if there are none): the read model,
FINAL results included (the recount runs again from DynamoDB), comes back by itself.
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Message, TopicPartition
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Link, SpanKind
from redis.exceptions import RedisError

from projector.errors import GuardMismatch
from projector.metrics import (
    BATCH_SECONDS,
    PROJECTION_LAG,
    RECORDS,
    STALENESS,
    UNDECODABLE,
)
from projector.projection import Update, fold
from projector.recount import Recount
from projector.store import ReadModelWriter
from voting import telemetry
from voting.config import Settings
from voting.kafka import KafkaClients, take_batch
from voting.readmodel import Keys

log = logging.getLogger(__name__)

MAX_BACKOFF_S = 5.0


class Projector:
    def __init__(
        self,
        settings: Settings,
        writer: ReadModelWriter,
        *,
        instance_id: str,
        recount: Recount | None = None,
    ) -> None:
        self._settings = settings
        self._writer = writer
        self._recount = recount
        self._recounts: dict[str, asyncio.Task[None]] = {}
        self._swept_at = 0.0
        self._namespace_checked_at = 0.0
        self._kafka = KafkaClients(settings.kafka, settings.topics)
        self._consumer: Consumer = self._kafka.consumer(
            group_id=settings.projector.group_id,
            client_id=f"projector-{instance_id}",
            **{"enable.partition.eof": True},
        )
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="projector-consumer")
        self._assigned: set[tuple[str, int]] = set()
        self._guards: dict[tuple[str, int], int] = {}
        self._positions: dict[str, int] = {}
        self._resync = True
        self._backoff_s = 0.0
        self._at_end: set[int] = set()
        self._reflected: dict[int, int] = {}
        self._heartbeat_at = 0.0
        self._verified_at = 0.0
        self.applied = 0

    async def run(self, stop: asyncio.Event) -> None:
        topics = self._settings.topics
        await self._call(
            self._consumer.subscribe,
            [topics.vote_results, topics.polls],
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_revoke,
        )
        try:
            with telemetry.background():
                await self._loop(stop)
        finally:
            await self._call(self._consumer.close)
            self._thread.shutdown(wait=True)

    async def _loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            if self._resync and not await self._try_resync():
                await asyncio.sleep(self._backoff_s)
                continue
            records = await self._call(
                take_batch,
                self._consumer,
                max_records=self._settings.projector.batch_max,
                wait_s=0.2,
            )
            if records:
                await self._handle(records)
            try:
                await self._verify_positions()
                await self._heartbeat()
                await self._sweep_closed_polls()
                await self._follow_namespace()
            except (RedisError, GuardMismatch, OSError) as exc:
                await self._lost_redis(exc)

    async def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(
            self._thread, lambda: fn(*args, **kwargs)
        )

    async def _handle(self, records: list[Message]) -> None:
        data: list[Message] = []
        results_topic = self._settings.topics.vote_results
        at_end: list[int] = []
        for msg in records:
            err = msg.error()
            if err is not None:
                if err.code() == KafkaError._PARTITION_EOF and msg.topic() == results_topic:
                    at_end.append(msg.partition() or 0)
                elif err.code() != KafkaError._PARTITION_EOF:
                    log.warning("consumer error: %s", err.str())
                continue
            if msg.topic() == results_topic:
                self._at_end.discard(msg.partition() or 0)
            name = f"{msg.topic()}:{msg.partition()}"
            if (msg.offset() or 0) >= self._positions.get(name, -1):
                data.append(msg)
        try:
            if data:
                await self._apply(data)
            self._at_end.update(at_end)
        except (RedisError, GuardMismatch, OSError) as exc:
            await self._lost_redis(exc)

    async def _lost_redis(self, exc: Exception) -> None:
        log.warning("read model unavailable or moved; pausing", extra={"error": str(exc)})
        self._resync = True
        self._backoff_s = 0.2
        await self._call(self._consumer.pause, self._tps())

    async def _verify_positions(self) -> None:
        """Once a second, checks that Redis still holds the positions this projector wrote;
        if not, Redis lost writes (or another process moved them): re-read from there."""
        now = time.monotonic()
        if self._resync or now - self._verified_at < 1.0:
            return
        self._verified_at = now
        names = sorted(self._positions)
        if not names:
            return
        stored = await self._writer.positions(names)
        if stored != {n: self._positions[n] for n in names}:
            lost = {n: (self._positions[n], stored.get(n)) for n in names}
            raise GuardMismatch(f"stored positions differ from ours: {lost}")

    async def _apply(self, records: list[Message]) -> None:
        polls_topic = self._settings.topics.polls
        update = fold(records, self._guards, polls_topic=polls_topic)
        unknown = [key for key in update.deltas if key not in self._guards]
        if unknown:
            loaded = await self._writer.guards(unknown)
            self._guards.update(loaded)
            if any(v >= 0 for v in loaded.values()):
                update = fold(records, self._guards, polls_topic=polls_topic)
        for msg, reason in update.undecodable:
            log.error(
                "undecodable record skipped",
                extra={
                    "topic": msg.topic(),
                    "partition": msg.partition(),
                    "offset": msg.offset(),
                    "reason": reason,
                },
            )
        started = telemetry.now_ns()
        await self._writer.apply(update, self._guards, self._positions)
        ended = telemetry.now_ns()
        self.applied += update.records
        _observe(update, started, ended)
        if update.traced:
            _trace(update.traced, self._settings.topics.vote_results, started, ended)
        for partition, cast_ms in update.reflected.items():
            self._reflected[partition] = max(self._reflected.get(partition, 0), cast_ms)
        for poll_id in update.drained:
            self._start_recount(poll_id)
        self._backoff_s = 0.0
        offsets = [TopicPartition(t, p, o) for (t, p), o in update.positions.items()]
        await self._call(self._consumer.commit, offsets=offsets, asynchronous=True)

    def _start_recount(self, poll_id: str) -> None:
        """Recounts a poll once its pipeline has drained (in the background)."""
        if self._recount is None or poll_id in self._recounts:
            return
        recount = self._recount

        async def run() -> None:
            try:
                if await recount.drained(poll_id):
                    await recount.run(poll_id, drain_timeout_s=0)
            except Exception as exc:  # retried by the next sweep
                log.warning(
                    "recount failed; will retry", extra={"poll_id": poll_id, "error": str(exc)}
                )
            finally:
                self._recounts.pop(poll_id, None)

        self._recounts[poll_id] = asyncio.create_task(run(), name=f"recount-{poll_id}")

    async def _sweep_closed_polls(self) -> None:
        """Every few seconds, recounts closed polls whose results are not final yet
        (a recount that failed, or one a crashed projector never finished)."""
        now = time.monotonic()
        if self._recount is None or self._resync or now - self._swept_at < 5.0:
            return
        self._swept_at = now
        for poll_id in await self._writer.closing():
            self._start_recount(poll_id)

    async def _follow_namespace(self) -> None:
        """Once a second, checks which read model is live; after a rebuild switched it,
        carries on in the new one from the positions the rebuild left there."""
        now = time.monotonic()
        if now - self._namespace_checked_at < 1.0:
            return
        self._namespace_checked_at = now
        active = await self._writer.active_namespace()
        if active == self._writer.keys.namespace:
            return
        log.info("read model switched; following it", extra={"namespace": active})
        self._writer.keys = Keys(active)  # the recount writes through this writer too
        self._resync = True
        await self._call(self._consumer.pause, self._tps())

    async def _heartbeat(self) -> None:
        """Twice a second, records that partitions with nothing left to apply are current."""
        now = time.monotonic()
        if self._resync or now - self._heartbeat_at < 0.5:
            return
        self._heartbeat_at = now
        now_ms = time.time_ns() // 1_000_000
        for topic, partition in self._assigned:
            if topic == self._settings.topics.vote_results:
                behind = (
                    0
                    if partition in self._at_end
                    else now_ms - self._reflected.get(partition, now_ms)
                )
                STALENESS.labels(str(partition)).set(max(0, behind) / 1000)
        if not self._at_end:
            return
        try:
            await self._writer.mark_caught_up(sorted(self._at_end))
        except (RedisError, OSError):
            self._at_end.clear()
            raise

    async def _try_resync(self) -> bool:
        """Re-reads positions from Redis and moves every assigned partition there."""
        try:
            await self._writer.claim_log()
            tps = self._tps()
            stored = await self._writer.positions(f"{t}:{p}" for t, p in sorted(self._assigned))
        except (RedisError, OSError) as exc:
            self._backoff_s = min(max(self._backoff_s * 2, 0.2), MAX_BACKOFF_S)
            log.warning(
                "waiting for Redis", extra={"error": str(exc), "retry_in_s": self._backoff_s}
            )
            await self._call(self._consumer.poll, 0.1)  # stay in the group
            return False
        for tp in tps:
            tp.offset = stored.get(f"{tp.topic}:{tp.partition}", OFFSET_BEGINNING)
            await self._call(self._seek_when_ready, tp)
        self._positions = stored
        self._guards.clear()
        await self._call(self._consumer.resume, tps)
        self._resync = False
        self._backoff_s = 0.0
        log.info("positions restored from the read model", extra={"positions": stored})
        return True

    def _seek_when_ready(self, tp: TopicPartition) -> None:
        # Right after an assignment librdkafka may refuse a seek until the partition's
        # fetcher has started; a short poll lets it start.
        for _ in range(50):
            try:
                self._consumer.seek(tp)
                return
            except Exception:
                self._consumer.pause([TopicPartition(tp.topic, tp.partition)])
                self._consumer.poll(0.05)
        self._consumer.seek(tp)

    def positions(self) -> dict[int, int]:
        """Next offset to read, per owned partition of vote-results (for the lag probe)."""
        prefix = f"{self._settings.topics.vote_results}:"
        return {
            int(n[len(prefix) :]): o
            for n, o in list(self._positions.items())
            if n.startswith(prefix)
        }

    def _tps(self) -> list[TopicPartition]:
        return [TopicPartition(t, p) for t, p in sorted(self._assigned)]

    # -- rebalance callbacks: on the consumer thread, inside consume() ----------------------

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._assigned = {(tp.topic, tp.partition) for tp in partitions}
        self._resync = True
        consumer.assign(partitions)
        consumer.pause(partitions)
        log.info("assigned", extra={"partitions": sorted(self._assigned)})

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._assigned -= {(tp.topic, tp.partition) for tp in partitions}
        self._at_end.clear()
        self._guards.clear()


def _observe(update: Update, started_ns: int, ended_ns: int) -> None:
    RECORDS.inc(update.records)
    BATCH_SECONDS.observe((ended_ns - started_ns) / 1e9)
    if update.undecodable:
        UNDECODABLE.inc(len(update.undecodable))
    now_ms = ended_ns // 1_000_000
    for cast_ms in update.cast_ms:
        PROJECTION_LAG.observe(max(0, now_ms - cast_ms) / 1000)


def _trace(traced: list[Context], topic: str, started_ns: int, ended_ns: int) -> None:
    """One span for the batch, linked to every sampled vote it applied, and one span in
    each of those votes' traces, linked to the batch."""
    links = [Link(trace.get_current_span(ctx).get_span_context()) for ctx in traced]
    batch = telemetry.span_at(
        f"{topic} apply batch",
        parent=None,
        start_ns=started_ns,
        end_ns=ended_ns,
        links=links,
        attributes={"messaging.batch.message_count": len(traced)},
    )
    for ctx in traced:
        telemetry.span_at(
            f"{topic} apply",
            parent=ctx,
            start_ns=started_ns,
            end_ns=ended_ns,
            kind=SpanKind.CONSUMER,
            links=[Link(batch.get_span_context())],
        )
