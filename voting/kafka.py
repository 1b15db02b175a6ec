"""The one place Kafka clients are built, and topics created.

Every producer, consumer and admin client comes from :class:`KafkaClients`, so settings
that must agree across the system (group timeouts, isolation level, partitioner,
security options) are decided once.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import (
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicCollection,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from voting import events
from voting.config import KafkaSettings, TopicSettings
from voting.errors import ConfigError, DeliveryError, InfrastructureError

log = logging.getLogger(__name__)


class KafkaClients:
    def __init__(self, settings: KafkaSettings, topics: TopicSettings) -> None:
        self.settings = settings
        self.topics = topics

    def _common(self, client_id: str) -> dict[str, Any]:
        return {
            "bootstrap.servers": self.settings.bootstrap_servers,
            "client.id": client_id,
            "error_cb": _log_client_error,
            "logger": _librdkafka_log,
            **self.settings.client_config,
        }

    def producer(self, *, client_id: str, **overrides: Any) -> Producer:
        """An idempotent producer: acks=all, no duplicates or reordering on retry."""
        config = {
            **self._common(client_id),
            "enable.idempotence": True,
            "acks": "all",
            # murmur2 is what the Java client uses: a key lands on the same partition
            # whichever language produced it.
            "partitioner": "murmur2_random",
            "linger.ms": 5,
            "compression.type": "lz4",
            "queue.buffering.max.messages": 500_000,
            **overrides,
        }
        return Producer(config)

    def transactional_producer(self, *, transactional_id: str, **overrides: Any) -> Producer:
        return self.producer(
            client_id=transactional_id,
            **{
                "transactional.id": transactional_id,
                "linger.ms": 20,
                "batch.size": 1_000_000,
                "transaction.timeout.ms": 60_000,
                **overrides,
            },
        )

    def consumer(self, *, group_id: str, client_id: str, **overrides: Any) -> Consumer:
        """A group consumer that commits nothing by itself and reads committed data only.

        On the local broker, records of aborted transactions are still visible: every
        consumer must be idempotent on its own.
        """
        config = {
            **self._common(client_id),
            "group.id": group_id,
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest",
            "partition.assignment.strategy": "range",
            "session.timeout.ms": self.settings.session_timeout_ms,
            "heartbeat.interval.ms": self.settings.heartbeat_interval_ms,
            "max.poll.interval.ms": self.settings.max_poll_interval_ms,
            "fetch.wait.max.ms": self.settings.fetch_wait_max_ms,
            **overrides,
        }
        return Consumer(config)

    def reader(self, *, client_id: str, **overrides: Any) -> Consumer:
        """A consumer outside any group, for assign()-and-read (changelogs, tools)."""
        return self.consumer(
            group_id=f"{client_id}-reader",
            client_id=client_id,
            **{"enable.partition.eof": True, **overrides},
        )

    def admin(self) -> AdminClient:
        return AdminClient(self._common("voting-admin"))

    def log_incarnation(self, names: Sequence[str], *, timeout_s: float = 10.0) -> str:
        """A short id of the topics' incarnation, from their topic ids: it changes if any
        of them is deleted and re-created (offsets then start again at zero)."""
        admin = self.admin()  # must outlive the futures below
        described = admin.describe_topics(TopicCollection(list(names)), request_timeout=timeout_s)
        ids = []
        for name in names:
            try:
                ids.append(str(described[name].result().topic_id))
            except KafkaException as exc:
                raise InfrastructureError(f"cannot describe topic {name}: {exc}") from exc
        return hashlib.blake2b("/".join(ids).encode(), digest_size=4).hexdigest()

    def topic_specs(self) -> list[TopicSpec]:
        t = self.topics
        compact = {"cleanup.policy": "compact"}
        return [
            TopicSpec(t.votes, t.partitions),
            TopicSpec(t.vote_results, t.partitions),
            TopicSpec(t.dedup_changelog, t.partitions, compact),
            TopicSpec(t.polls, t.polls_partitions),
            TopicSpec(t.dead_letters, 1),
        ]

    def ensure_topics(self, *, timeout_s: float = 30.0) -> None:
        """Creates missing topics; fails if an existing one has the wrong partition count.

        Topics are created explicitly because producing to a missing topic auto-creates
        it with the broker's default partition count on some brokers.
        """
        admin = self.admin()
        specs = self.topic_specs()
        existing = admin.list_topics(timeout=timeout_s).topics
        missing = [s for s in specs if s.name not in existing]
        if missing:
            rf = self.settings.replication_factor
            new = [
                NewTopic(
                    s.name,
                    num_partitions=s.partitions,
                    replication_factor=rf,
                    config={**s.config, **({"min.insync.replicas": "2"} if rf >= 3 else {})},
                )
                for s in missing
            ]
            for name, future in admin.create_topics(new, operation_timeout=timeout_s).items():
                try:
                    future.result()
                except KafkaException as exc:
                    if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                        raise InfrastructureError(f"cannot create topic {name}: {exc}") from exc
        self.verify_topics(timeout_s=timeout_s, admin=admin)

    def verify_topics(
        self,
        *,
        timeout_s: float = 30.0,
        admin: AdminClient | None = None,
        unreachable_ok: bool = False,
    ) -> bool:
        """Fails unless every topic exists with the partition count the settings say.

        Every service checks this at start: close markers go to each partition of
        ``votes`` the settings name, so a process with the wrong count would leave polls
        that never drain. With ``unreachable_ok``, a broker that does not answer (yet) is
        not a reason to refuse to start: it returns False, having checked nothing.
        """
        admin = admin or self.admin()
        try:
            existing = admin.list_topics(timeout=timeout_s).topics
        except KafkaException as exc:
            if unreachable_ok:
                log.warning(
                    "the broker does not answer: topics not checked", extra={"error": str(exc)}
                )
                return False
            raise InfrastructureError(f"cannot list topics: {exc}") from exc
        for spec in self.topic_specs():
            if spec.name not in existing:
                raise ConfigError(f"topic {spec.name} does not exist; run `voting init`")
            actual = len(existing[spec.name].partitions)
            if actual != spec.partitions:
                raise ConfigError(
                    f"topic {spec.name} has {actual} partitions, settings say {spec.partitions}; "
                    "set VOTING_PARTITIONS to match (partition counts never change)"
                )
        return True


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    config: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Delivered:
    partition: int
    offset: int


@dataclass(frozen=True, slots=True)
class Outgoing:
    topic: str
    value: bytes
    key: bytes | None = None
    headers: list[tuple[str, str | bytes | None]] | None = None
    partition: int | None = None


class AsyncProducer:
    """An idempotent producer for asyncio code.

    ``send_batch`` resolves when the broker has acknowledged every record of the batch
    (acks=all): the caller may only then acknowledge its own client. Delivery reports
    are served by one thread and handed to the event loop once per poll, not once per
    record. A fatal producer error (e.g. UNKNOWN_PRODUCER_ID after a broker restart)
    replaces the producer; records in flight then fail as retriable.
    """

    def __init__(self, factory: Callable[[], Producer], *, timeout_s: float) -> None:
        self._factory = factory
        self._producer = factory()
        self._timeout_s = timeout_s
        self._loop = asyncio.get_running_loop()
        self._reports: list[tuple[_Batch, int, KafkaError | None, int, int]] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="kafka-delivery", daemon=True)
        self._thread.start()

    async def send_batch(self, records: Sequence[Outgoing]) -> list[Delivered | DeliveryError]:
        """Produces ``records``; one result per record, in order, once all are settled."""
        if not records:
            return []
        batch = _Batch(self._loop, len(records))
        producer = self._producer
        for index, record in enumerate(records):
            callback = batch.callback(index, self._report)
            while True:
                try:
                    kwargs: dict[str, Any] = {"on_delivery": callback}
                    if record.partition is not None:
                        kwargs["partition"] = record.partition
                    producer.produce(
                        record.topic, record.value, record.key, headers=record.headers, **kwargs
                    )
                    break
                except BufferError:
                    await asyncio.sleep(0.005)  # local queue full: let deliveries drain
                except KafkaException as exc:
                    batch.settle(index, DeliveryError(str(exc), retriable=_retriable(exc)))
                    break
        try:
            return await asyncio.wait_for(batch.future, timeout=self._timeout_s + 5)
        except TimeoutError:
            return batch.timed_out()

    async def send(self, record: Outgoing) -> Delivered:
        result = (await self.send_batch([record]))[0]
        if isinstance(result, DeliveryError):
            raise result
        return result

    def _report(self, batch: _Batch, index: int, err: KafkaError | None, msg: Message) -> None:
        with self._lock:
            self._reports.append((batch, index, err, msg.partition() or 0, msg.offset() or 0))

    def _serve(self) -> None:
        while not self._stopping.is_set():
            producer = self._producer
            try:
                producer.poll(0.05)
            except KafkaException as exc:  # pragma: no cover - poll raises only on fatal errors
                log.error("producer poll failed: %s", exc)
            with self._lock:
                reports, self._reports = self._reports, []
            if reports:
                fatal = any(err is not None and err.fatal() for _, _, err, _, _ in reports)
                if fatal:
                    log.error("fatal producer error, recreating the producer")
                    self._producer = self._factory()
                self._loop.call_soon_threadsafe(_deliver, reports)

    async def close(self) -> None:
        producer = self._producer
        await asyncio.to_thread(producer.flush, self._timeout_s)
        self._stopping.set()
        await asyncio.to_thread(self._thread.join, 2.0)


class _Batch:
    __slots__ = ("future", "pending", "results")

    def __init__(self, loop: asyncio.AbstractEventLoop, size: int) -> None:
        self.future: asyncio.Future[list[Delivered | DeliveryError]] = loop.create_future()
        self.results: list[Delivered | DeliveryError | None] = [None] * size
        self.pending = size

    def callback(
        self, index: int, report: Callable[[_Batch, int, KafkaError | None, Message], None]
    ) -> Callable[[KafkaError | None, Message], None]:
        def on_delivery(err: KafkaError | None, msg: Message) -> None:
            report(self, index, err, msg)

        return on_delivery

    def settle(self, index: int, result: Delivered | DeliveryError) -> None:
        if self.results[index] is not None:
            return
        self.results[index] = result
        self.pending -= 1
        if self.pending == 0 and not self.future.done():
            self.future.set_result(self.results)  # type: ignore[arg-type]

    def timed_out(self) -> list[Delivered | DeliveryError]:
        return [
            r if r is not None else DeliveryError("no delivery report in time", retriable=True)
            for r in self.results
        ]


def _deliver(reports: list[tuple[_Batch, int, KafkaError | None, int, int]]) -> None:
    for batch, index, err, partition, offset in reports:
        if err is None:
            batch.settle(index, Delivered(partition, offset))
        else:
            batch.settle(index, DeliveryError(err.str(), retriable=err.retriable() or err.fatal()))


def _retriable(exc: KafkaException) -> bool:
    err = exc.args[0] if exc.args else None
    return bool(isinstance(err, KafkaError) and (err.retriable() or err.fatal()))


_librdkafka_log = logging.getLogger("librdkafka")


def _log_client_error(err: KafkaError) -> None:
    # Connection errors repeat every few ms while a broker is away; librdkafka retries
    # them by itself. Only "every broker is down" and fatal errors deserve attention.
    if err.fatal():
        log.error("kafka client fatal error: %s", err.str())
    elif err.code() == KafkaError._ALL_BROKERS_DOWN:
        log.warning("kafka client error: %s", err.str())
    else:
        log.debug("kafka client error: %s", err.str())


@dataclass(frozen=True, slots=True)
class LogRecord:
    """A record as read back by tools and checkers."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]

    def event(self) -> events.Event:
        """The event it holds (raises EventError if it holds none this version reads)."""
        return events.decode(self.value, self.headers)


def read_log(
    clients: KafkaClients, topic: str, partitions: int, *, timeout_s: float = 120.0
) -> list[LogRecord]:
    """Every record of ``topic`` (read_committed, so on the local broker aborted ones too),
    up to the end of each partition. The end is where the broker says end-of-partition:
    its "latest offset" answer cannot be trusted on the local broker (it is the start of
    the partition's last batch plus one)."""
    reader = clients.reader(client_id=f"read-{topic}-{threading.get_ident()}")
    reader.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    records: list[LogRecord] = []
    at_end: set[int] = set()
    deadline = time.monotonic() + timeout_s
    try:
        while len(at_end) < partitions:
            if time.monotonic() > deadline:
                raise InfrastructureError(f"did not reach the end of {topic} in {timeout_s}s")
            for msg in reader.consume(5000, timeout=0.5):
                err = msg.error()
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        at_end.add(msg.partition() or 0)
                    continue
                headers = events.header_items(msg.headers())
                records.append(
                    LogRecord(
                        topic,
                        msg.partition() or 0,
                        msg.offset() or 0,
                        msg.key(),
                        msg.value(),
                        headers,
                    )
                )
    finally:
        reader.close()
    return records


def take_batch(consumer: Consumer, *, max_records: int, wait_s: float) -> list[Message]:
    """Waits up to ``wait_s`` for one record, then takes what is already fetched, up to
    ``max_records``: low latency when traffic is light, large batches when it is heavy.
    (``consume(n, timeout)`` alone would wait the whole timeout unless n records came.)
    """
    first = consumer.poll(wait_s)
    if first is None:
        return []
    if max_records <= 1:
        return [first]
    return [first, *consumer.consume(max_records - 1, timeout=0)]
