"""One input partition of the dedup worker: its transactional producer, state and position.

Each partition has its own transactional id, ``<group>-votes-<partition>``, whoever owns
it. The new owner's ``init_transactions`` aborts whatever the previous owner left open
(a crashed worker's transaction, or commits the local broker parked behind it) before
anything is read; then the committed input offset is read, and the state restored from
the changelog up to that offset. A worker that dies for good therefore never blocks its
partitions: the next owner heals them. (One producer per worker would not.)
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass, field

from confluent_kafka import (
    OFFSET_BEGINNING,
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
_FENCED = {KafkaError._FENCED, KafkaError.PRODUCER_FENCED, KafkaError.INVALID_PRODUCER_EPOCH}
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


class PartitionProcessor:
    def __init__(
        self, *, partition: int, kafka: KafkaClients, topics: TopicSettings, group_id: str
    ) -> None:
        self.partition = partition
        self._kafka = kafka
        self._topics = topics
        self._transactional_id = f"{group_id}-votes-{partition}"
        self.state = DedupState()
        self.next_offset = 0
        self._producer: Producer | None = None

    # -- ownership (blocking: run on the consumer's thread) -------------------------------

    def fence(self) -> None:
        """Takes the partition's transactional id, aborting what a previous owner left open
        (on the local broker this also releases offset commits parked behind it)."""
        producer = self._kafka.transactional_producer(transactional_id=self._transactional_id)
        producer.init_transactions(TIMEOUT_S)
        self._producer = producer

    def restore(self, committed: int) -> int:
        """Restores the state as of the committed input offset (read AFTER fencing)."""
        started = time.monotonic()
        self.next_offset = max(committed, 0)
        self.state = self._restore(self.next_offset)
        log.info(
            "partition opened",
            extra={
                "partition": self.partition,
                "committed": self.next_offset,
                "voters": len(self.state),
                "seconds": round(time.monotonic() - started, 3),
            },
        )
        return self.next_offset

    def _restore(self, committed: int) -> DedupState:
        state = DedupState()
        if committed <= 0:
            return state
        reader = self._kafka.reader(client_id=f"{self._transactional_id}-restore")
        try:
            reader.assign(
                [TopicPartition(self._topics.dedup_changelog, self.partition, OFFSET_BEGINNING)]
            )
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline:
                for msg in take_batch(reader, max_records=10_000, wait_s=0.5):
                    err = msg.error()
                    if err is not None:
                        if err.code() == KafkaError._PARTITION_EOF:
                            return state
                        raise WorkerError(f"changelog restore failed: {err.str()}")
                    key, value = msg.key(), msg.value()
                    if key is not None and value is not None:
                        state.restore(key, value, committed)
            raise WorkerError("changelog restore did not reach the end in 300s")
        finally:
            reader.close()

    def close(self) -> None:
        self._producer = None  # nothing is left open between batches

    # -- deciding (pure: no I/O) -----------------------------------------------------------

    def decide(
        self,
        records: list[Message],
        truths: dict[tuple[str, str], str] | None = None,
        *,
        received_ns: int = 0,
    ) -> Batch:
        """Decides ``records`` (offset order). ``truths`` are votes found in DynamoDB that
        the state did not know (after state loss): the table wins."""
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
                    staged, event.poll_id, event.voter_key, event.vote_id, offset
                )
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
            batch.ledger.append(
                LedgerEntry(
                    poll_id=vote.poll_id,
                    shard=vote.ledger_shard,
                    voter_key=vote.voter_key,
                    vote_id=vote.vote_id,
                    option_id=vote.option_id,
                    cast_at_ms=vote.occurred_at.ToMilliseconds(),
                    partition=self.partition,
                    offset=offset,
                )
            )
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
        headers: events.Headers = list(events.header_items(msg.headers()))
        headers += [
            ("dlq-reason", reason.encode()),
            ("dlq-source", f"{msg.topic()}/{msg.partition()}/{msg.offset()}".encode()),
        ]
        batch.dead_letters.append((msg.key(), msg.value(), headers))

    # -- committing (blocking: run on a worker thread) -------------------------------------

    def commit(self, batch: Batch, group_metadata: object) -> None:
        """Outputs, changelog and the input offset in one transaction; then the state."""
        producer = self._producer
        if producer is None:
            raise PartitionLost(f"partition {self.partition} is not open")
        topics = self._topics
        started = telemetry.now_ns()
        try:
            producer.begin_transaction()
            for key, value, headers in batch.outputs:
                producer.produce(
                    topics.vote_results, value, key, partition=self.partition, headers=headers
                )
            for key, value in batch.staged.changelog:
                producer.produce(topics.dedup_changelog, value, key, partition=self.partition)
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
            if isinstance(err, KafkaError) and err.code() in _FENCED:
                self._producer = None
                raise PartitionLost(
                    f"partition {self.partition} was taken over: {err.str()}"
                ) from exc
            raise WorkerError(f"transaction on partition {self.partition} failed: {exc}") from exc
        batch.trace.step(f"{topics.vote_results} publish", started, telemetry.now_ns())
        self.state.apply(batch.staged)
        self.next_offset = batch.next_offset
