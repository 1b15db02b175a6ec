"""One input partition of the dedup worker: its transactional producer, state and position.

Each partition has its own transactional id, ``<group>-votes-<partition>``, whoever owns
it. The new owner's ``init_transactions`` aborts whatever the previous owner left open
(a crashed worker's transaction, or commits the local broker parked behind it) before
anything is read; then the committed input offset is read, and the state restored from
the changelog up to that offset. A worker that dies for good therefore never blocks its
partitions: the next owner heals them. (One producer per worker would not.)

The changelog is restored from the partition's latest *checkpoint*: when the records
since the last one far outnumber what is live (closed polls' voters, tombstones), a
commit first rewrites the whole live state, and the offset of that rewrite, once
committed, is saved (``checkpoints``) as where the next restore starts. So a restore
reads about as much as is live, however long the changelog has grown, on any broker
(the local one never compacts).
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from confluent_kafka import (
    OFFSET_INVALID,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)

from command_svc.worker.errors import PartitionLost, WorkerError
from command_svc.worker.ledger import LedgerEntry
from command_svc.worker.state import (
    ACCEPT,
    CLOSED,
    DUPLICATE,
    REPEATED,
    Decision,
    DedupState,
    Staged,
)
from command_svc.worker.tracing import BatchTrace
from voting import events, faults, telemetry
from voting.config import TopicSettings
from voting.errors import EventError
from voting.identity import stable_id
from voting.kafka import KafkaClients, take_batch
from voting.v1 import consistency_pb2, events_pb2

log = logging.getLogger(__name__)

TIMEOUT_S = 30.0
# A restore that reads nothing for this long (the broker is away) gives up, to be retried.
RESTORE_STALL_S = 30.0
_FENCED = {KafkaError._FENCED, KafkaError.PRODUCER_FENCED, KafkaError.INVALID_PRODUCER_EPOCH}
# Refused because this member is no longer (or not yet again) the partition's owner in
# the group. librdkafka reports these on TxnOffsetCommit as abortable, not fenced: the
# partition is lost all the same, and re-fencing it would fence its legitimate owner.
_NOT_OWNER = {
    KafkaError.ILLEGAL_GENERATION,
    KafkaError.UNKNOWN_MEMBER_ID,
    KafkaError.REBALANCE_IN_PROGRESS,
    KafkaError.FENCED_INSTANCE_ID,
}
_ACCEPTED_HEADERS = events.headers_for(events_pb2.VoteAccepted)
_REJECTED_HEADERS = events.headers_for(events_pb2.VoteRejected)
_CLOSED_HEADERS = events.headers_for(events_pb2.PollClosed)
_OUTCOMES = {ACCEPT: "accepted", DUPLICATE: "duplicate", CLOSED: "closed", REPEATED: "repeated"}


@dataclass(slots=True)
class Batch:
    """The outcome of deciding a run of records, ready to commit."""

    next_offset: int
    staged: Staged = field(default_factory=Staged)
    outputs: list[tuple[bytes, bytes, events.Headers]] = field(default_factory=list)
    dead_letters: list[tuple[bytes | None, bytes | None, events.Headers]] = field(
        default_factory=list
    )
    ledger: list[LedgerEntry] = field(default_factory=list)
    decided: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    cast_ms: list[int] = field(default_factory=list)
    trace: BatchTrace = field(default_factory=lambda: BatchTrace(telemetry.now_ns()))
    # Votes for closed polls whose voter the state no longer knows: DynamoDB says whether
    # each is the voter's counted vote again (REPEATED) or not (CLOSED).
    lookups: list[LedgerEntry] = field(default_factory=list)


# Fetches from a missing offset that must show the same gap before it is taken as the log's.
GAP_REFETCHES = 3


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A committed rewrite of a partition's state: restore from ``start`` onwards."""

    start: int  # changelog offset of the rewrite's first record
    input_offset: int  # the input offset committed with it


class PartitionProcessor:
    def __init__(
        self,
        *,
        partition: int,
        kafka: KafkaClients,
        topics: TopicSettings,
        group_id: str,
        rewrite_min: int = 100_000,
    ) -> None:
        self.partition = partition
        self._kafka = kafka
        self._topics = topics
        self._transactional_id = f"{group_id}-votes-{partition}"
        self.state = DedupState()
        self.next_offset = 0
        self._producer: Producer | None = None
        self.cancelled = False  # revoked: a restore in progress stops
        # Changelog records a restore from the latest checkpoint would read.
        self.since_checkpoint = 0
        self.rewrite_min = rewrite_min
        self.checkpoint_due: Checkpoint | None = None  # committed, not yet saved
        self._gap: tuple[int, int] | None = None  # (expected offset, first fetched past it)
        self._gap_seen = 0

    # -- ownership (blocking: run on the consumer's thread) -------------------------------

    def fence(self) -> None:
        """Takes the partition's transactional id, aborting what a previous owner left open
        (on the local broker this also releases offset commits parked behind it)."""
        producer = self._kafka.transactional_producer(transactional_id=self._transactional_id)
        producer.init_transactions(TIMEOUT_S)
        self._producer = producer

    def restore(self, committed: int, checkpoint: Checkpoint | None = None) -> int:
        """Restores the state as of the committed input offset (read AFTER fencing), from
        the checkpoint if it is one this commit covers, else from the changelog's start."""
        started = time.monotonic()
        faults.point("worker.restore")
        self.next_offset = committed
        start = 0
        if checkpoint is not None and checkpoint.input_offset <= committed:
            start = checkpoint.start
        self.state, read = self._restore(committed, start)
        self.since_checkpoint = read
        log.info(
            "partition opened",
            extra={
                "partition": self.partition,
                "committed": committed,
                "voters": len(self.state),
                "from": start,
                "read": read,
                "seconds": round(time.monotonic() - started, 3),
            },
        )
        return self.next_offset

    def _restore(self, committed: int, start: int) -> tuple[DedupState, int]:
        state = DedupState()
        if committed <= 0:
            return state, 0
        reader = self._kafka.reader(client_id=f"{self._transactional_id}-restore")
        read = 0
        try:
            reader.assign([TopicPartition(self._topics.dedup_changelog, self.partition, start)])
            progress_at = time.monotonic()
            while not self.cancelled:
                batch = take_batch(reader, max_records=10_000, wait_s=0.5)
                if batch:
                    progress_at = time.monotonic()
                elif time.monotonic() - progress_at > RESTORE_STALL_S:
                    raise WorkerError(
                        f"changelog restore of partition {self.partition} made no progress "
                        f"for {RESTORE_STALL_S:.0f}s"
                    )
                for msg in batch:
                    err = msg.error()
                    if err is not None:
                        if err.code() == KafkaError._PARTITION_EOF:
                            return state, read
                        raise WorkerError(f"changelog restore failed: {err.str()}")
                    read += 1
                    key = msg.key()
                    if key is not None:
                        state.restore(key, msg.value(), committed)
            raise WorkerError(f"restore of partition {self.partition} cancelled: revoked")
        finally:
            reader.close()

    def close(self) -> None:
        self.cancelled = True
        self._producer = None  # nothing is left open between batches

    # -- deciding (pure: no I/O) -----------------------------------------------------------

    def contiguous(self, records: list[Message]) -> tuple[list[Message], bool]:
        """The records to decide: those from ``next_offset`` on, up to the first gap; and
        whether there was one (the caller then fetches again from ``next_offset``).

        A decision past a record never seen commits an offset beyond it, and the vote is
        lost for good. librdkafka can hand out records past a seek's offset (it does
        when a seek races a fetch in flight; its maintainers' advice is to check each
        offset and seek again), and a local broker may misbehave. A gap that is still
        there after GAP_REFETCHES fetches from exactly the missing offset is one the log
        itself has (a transaction marker, retention), and is passed.
        """
        expected = self.next_offset
        kept: list[Message] = []
        for msg in records:
            offset = msg.offset() or 0
            if offset < expected:
                continue  # fetched before a rewind
            if offset > expected:
                gap = (expected, offset)
                self._gap_seen = self._gap_seen + 1 if gap == self._gap else 1
                self._gap = gap
                if self._gap_seen <= GAP_REFETCHES:
                    log.warning(
                        "records fetched past a missing offset; fetching again from it",
                        extra={"partition": self.partition, "missing": expected, "got": offset},
                    )
                    return kept, True
                log.info(
                    "offsets missing from the log itself; passed",
                    extra={"partition": self.partition, "from": expected, "to": offset},
                )
            kept.append(msg)
            expected = offset + 1
        if kept:
            self._gap, self._gap_seen = None, 0
        return kept, False

    def decide(
        self,
        records: list[Message],
        truths: dict[tuple[str, str], str] | None = None,
        *,
        after_close: dict[tuple[str, str], str] | None = None,
        received_ns: int = 0,
    ) -> Batch:
        """Decides ``records`` (offset order). ``truths`` are votes found in DynamoDB that
        the state did not know (after state loss): the table wins. ``after_close`` is
        what DynamoDB holds for voters of closed polls (see ``Batch.lookups``)."""
        batch = Batch(
            next_offset=self.next_offset, trace=BatchTrace(received_ns or telemetry.now_ns())
        )
        decide_started = telemetry.now_ns()
        staged = batch.staged
        state = self.state
        now_ms = time.time_ns() // 1_000_000
        for (poll_id, voter_key), vote_id in (truths or {}).items():
            state.stage_voter(staged, poll_id, voter_key, vote_id, self.next_offset)
        for msg in records:
            offset = msg.offset() or 0
            if offset < self.next_offset:
                continue  # fetched before a rewind
            batch.next_offset = offset + 1
            batch.decided += 1
            headers = events.header_items(msg.headers())
            try:
                event = events.decode(msg.value(), headers)
            except EventError as exc:
                self._dead_letter(batch, msg, str(exc))
                continue
            parent = telemetry.extract(headers)
            traced = (
                batch.trace.consume(parent, self._topics.votes, self.partition, offset)
                if parent is not None
                else []
            )
            if isinstance(event, events_pb2.VoteCast):
                decision = state.decide_vote(
                    staged,
                    event.poll_id,
                    event.voter_key,
                    event.vote_id,
                    offset,
                    after_close=after_close,
                )
                if decision.unknown:
                    batch.lookups.append(_entry(event, self.partition, offset))
                self._output_vote(batch, event, decision, offset, now_ms=now_ms, traced=traced)
            elif isinstance(event, events_pb2.PollClosed):
                state.stage_close(staged, event.poll_id, offset)
                event.source.CopyFrom(
                    consistency_pb2.PartitionOffset(partition=self.partition, offset=offset)
                )
                batch.outputs.append(
                    (event.poll_id.encode(), event.SerializeToString(), _CLOSED_HEADERS)
                )
            else:
                self._dead_letter(
                    batch, msg, f"unexpected {type(event).__name__} on {self._topics.votes}"
                )
        batch.trace.step("decide", decide_started, telemetry.now_ns())
        return batch

    def _output_vote(
        self,
        batch: Batch,
        vote: events_pb2.VoteCast,
        decision: Decision,
        offset: int,
        *,
        now_ms: int,
        traced: events.Headers,
    ) -> None:
        source = consistency_pb2.PartitionOffset(partition=self.partition, offset=offset)
        event_id = stable_id("decision", str(self.partition), str(offset), vote.vote_id)
        if decision.outcome == ACCEPT:
            out: events_pb2.VoteAccepted | events_pb2.VoteRejected = events_pb2.VoteAccepted(
                event_id=event_id,
                vote_id=vote.vote_id,
                poll_id=vote.poll_id,
                option_id=vote.option_id,
                source=source,
                cast_at=vote.occurred_at,
                voter_key=vote.voter_key,
            )
            headers = _ACCEPTED_HEADERS
            batch.ledger.append(_entry(vote, self.partition, offset))
        else:
            out = events_pb2.VoteRejected(
                event_id=event_id,
                vote_id=vote.vote_id,
                poll_id=vote.poll_id,
                reason=decision.outcome,  # type: ignore[arg-type]
                accepted_vote_id=decision.accepted_vote_id,
                source=source,
                cast_at=vote.occurred_at,
                voter_key=vote.voter_key,
            )
            headers = _REJECTED_HEADERS
        out.occurred_at.FromMilliseconds(now_ms)
        batch.outcomes[_OUTCOMES[decision.outcome]] += 1
        batch.cast_ms.append(vote.occurred_at.ToMilliseconds())
        batch.outputs.append(
            (
                vote.poll_id.encode(),
                out.SerializeToString(),
                headers + traced if traced else headers,
            )
        )

    def _dead_letter(self, batch: Batch, msg: Message, reason: str) -> None:
        # A record of the votes log that cannot be decided is a vote nobody will count:
        # it must be seen, not only counted in a metric.
        log.warning(
            "record sent to the dead-letter topic",
            extra={"partition": self.partition, "offset": msg.offset(), "reason": reason},
        )
        headers: events.Headers = list(events.header_items(msg.headers()))
        headers += [
            ("dlq-reason", reason.encode()),
            ("dlq-source", f"{msg.topic()}/{msg.partition()}/{msg.offset()}".encode()),
        ]
        batch.dead_letters.append((msg.key(), msg.value(), headers))

    # -- committing (blocking: run on a worker thread) -------------------------------------

    def commit(self, batch: Batch, group_metadata: object) -> None:
        """Outputs, changelog and the input offset in one transaction; then the state.

        When the changelog has grown well past what is live, the transaction first
        rewrites the live state (as committed before this batch): once it commits, the
        rewrite's first offset is the partition's new checkpoint.
        """
        producer = self._producer
        if producer is None:
            raise PartitionLost(f"partition {self.partition} is not open")
        topics = self._topics
        started = telemetry.now_ns()
        live = self.state.entries
        rewrite = self.since_checkpoint > max(self.rewrite_min, 2 * live)
        first_rewritten: list[int] = []
        try:
            producer.begin_transaction()
            for key, value, headers in batch.outputs:
                producer.produce(
                    topics.vote_results, value, key, partition=self.partition, headers=headers
                )
            if rewrite:
                for index, (key, value) in enumerate(self.state.rewrite()):
                    if index == 0:
                        producer.produce(
                            topics.dedup_changelog,
                            value,
                            key,
                            partition=self.partition,
                            on_delivery=_remember_offset(first_rewritten),
                        )
                    else:
                        producer.produce(
                            topics.dedup_changelog, value, key, partition=self.partition
                        )
            for key, changed in batch.staged.changelog:
                producer.produce(topics.dedup_changelog, changed, key, partition=self.partition)
            for dl_key, dl_value, headers in batch.dead_letters:
                producer.produce(topics.dead_letters, dl_value, dl_key, headers=headers)
            producer.send_offsets_to_transaction(
                [TopicPartition(topics.votes, self.partition, batch.next_offset)],
                group_metadata,
                TIMEOUT_S,
            )
            producer.flush(TIMEOUT_S)
            faults.point("worker.before-commit")
            producer.commit_transaction(TIMEOUT_S)
        except KafkaException as exc:
            err = exc.args[0]
            code = err.code() if isinstance(err, KafkaError) else None
            if code in _FENCED or code in _NOT_OWNER:
                self._abandon(producer, fenced=code in _FENCED)
                raise PartitionLost(
                    f"partition {self.partition} was taken over: {err.str()}"
                ) from exc
            self._abandon(producer, fenced=False)
            raise WorkerError(f"transaction on partition {self.partition} failed: {exc}") from exc
        batch.trace.step(f"{topics.vote_results} publish", started, telemetry.now_ns())
        self.state.apply(batch.staged)
        self.next_offset = batch.next_offset
        if rewrite and first_rewritten:
            self.since_checkpoint = live + len(batch.staged.changelog)
            self.checkpoint_due = Checkpoint(first_rewritten[0], batch.next_offset)
        else:
            self.since_checkpoint += len(batch.staged.changelog)

    def _abandon(self, producer: Producer, *, fenced: bool) -> None:
        """Gives up the producer after a failed transaction, aborting it first unless it
        was fenced (the new owner's init_transactions aborts it then)."""
        self._producer = None
        if fenced:
            return
        try:
            producer.abort_transaction(5.0)
        except KafkaException as exc:
            log.debug("abort after a failed transaction failed", extra={"error": str(exc)})


def committed_offset(tp: TopicPartition, *, earliest: int, error: KafkaError | None = None) -> int:
    """Where a partition's decisions resume: its committed input offset.

    No committed offset means nothing of the partition was ever committed by this group
    (or its offsets expired): deciding from the start with an empty state is then exact
    only if the log still starts at offset 0. On a trimmed log the first votes and close
    markers are gone, and re-deciding would accept what was once rejected: refused.
    """
    failure = error if error is not None else tp.error
    if failure is not None:
        raise WorkerError(
            f"cannot read the committed offset of partition {tp.partition}: {failure}"
        )
    if tp.offset >= 0:
        return int(tp.offset)
    if tp.offset != OFFSET_INVALID:
        raise WorkerError(f"unexpected committed offset {tp.offset} for partition {tp.partition}")
    if earliest > 0:
        raise WorkerError(
            f"partition {tp.partition} has no committed offset but its log was trimmed "
            f"(it starts at {earliest}): re-deciding it would be wrong; restore the group's "
            "offsets (kafka-consumer-groups --reset-offsets) before starting the worker"
        )
    return 0


def _entry(vote: events_pb2.VoteCast, partition: int, offset: int) -> LedgerEntry:
    return LedgerEntry(
        poll_id=vote.poll_id,
        shard=vote.ledger_shard,
        voter_key=vote.voter_key,
        vote_id=vote.vote_id,
        option_id=vote.option_id,
        cast_at_ms=vote.occurred_at.ToMilliseconds(),
        partition=partition,
        offset=offset,
    )


def _remember_offset(into: list[int]) -> Callable[[KafkaError | None, Message], None]:
    def on_delivery(err: KafkaError | None, msg: Message) -> None:
        if err is None:
            into.append(msg.offset() or 0)

    return on_delivery
