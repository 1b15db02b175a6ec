"""Turns a batch of records into one update of the read model (pure: no I/O).

Decisions are folded into deltas per (poll, source partition). Each delta carries the
highest source offset it includes; the read model applies it only if its guard for that
poll and partition is still where the projector last saw it, so a record is counted at
most once however often it is delivered (redeliveries, replays, and the aborted
transactions the local broker shows to read_committed readers).
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field

from confluent_kafka import Message
from opentelemetry.context import Context

from voting import events, telemetry
from voting.errors import EventError
from voting.readmodel import VoteStatus, drained_field
from voting.v1 import events_pb2, vote_pb2

log = logging.getLogger(__name__)


@dataclass(slots=True)
class PollDelta:
    poll_id: str
    partition: int
    last_offset: int
    counts: Counter[str] = field(default_factory=Counter)
    meta: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class PollDefinition:
    poll: bytes  # serialized voting.v1.Poll
    created_at_ms: int


@dataclass(slots=True)
class Update:
    deltas: dict[tuple[str, int], PollDelta] = field(default_factory=dict)
    statuses: list[tuple[str, VoteStatus]] = field(default_factory=list)
    definitions: dict[str, PollDefinition] = field(default_factory=dict)
    closes: dict[str, int] = field(default_factory=dict)  # poll -> closed_at ms
    reflected: dict[int, int] = field(default_factory=dict)  # partition -> cast_at ms
    positions: dict[tuple[str, int], int] = field(default_factory=dict)  # (topic, p) -> next
    undecodable: list[tuple[Message, str]] = field(default_factory=list)
    drained: set[str] = field(default_factory=set)  # polls that got a close marker
    traced: list[Context] = field(default_factory=list)  # sampled decisions' trace contexts
    cast_ms: list[int] = field(default_factory=list)  # cast times of the decisions applied
    records: int = 0

    def polls_changed(self) -> set[str]:
        return {d.poll_id for d in self.deltas.values()} | set(self.definitions) | set(self.closes)


def fold(records: list[Message], guards: dict[tuple[str, int], int], *, polls_topic: str) -> Update:
    """Folds ``records`` into an update, skipping decisions at or below their guard."""
    update = Update()
    for msg in records:
        topic = msg.topic() or ""
        partition = msg.partition() or 0
        offset = msg.offset() or 0
        update.positions[(topic, partition)] = offset + 1
        update.records += 1
        headers = events.header_items(msg.headers())
        try:
            event = events.decode(msg.value(), headers)
        except EventError as exc:
            update.undecodable.append((msg, str(exc)))
            continue
        if topic == polls_topic:
            _poll_event(update, event)
            continue
        source = getattr(event, "source", None)
        if source is None or not isinstance(
            event, events_pb2.VoteAccepted | events_pb2.VoteRejected | events_pb2.PollClosed
        ):
            update.undecodable.append((msg, f"unexpected {type(event).__name__}"))
            continue
        key = (event.poll_id, source.partition)
        if source.offset <= guards.get(key, -1):
            continue  # already applied
        delta = update.deltas.get(key)
        if delta is None:
            delta = update.deltas[key] = PollDelta(event.poll_id, source.partition, source.offset)
        elif source.offset <= delta.last_offset:
            continue  # a second copy within the batch (an aborted transaction's)
        delta.last_offset = source.offset
        traced = telemetry.extract(headers)
        if traced is not None:
            update.traced.append(traced)
        if isinstance(event, events_pb2.VoteAccepted | events_pb2.VoteRejected):
            update.cast_ms.append(event.cast_at.ToMilliseconds())
        if isinstance(event, events_pb2.VoteAccepted):
            delta.counts[event.option_id] += 1
            update.statuses.append(
                (
                    event.vote_id,
                    VoteStatus(
                        vote_pb2.VOTE_STATE_ACCEPTED,
                        option_id=event.option_id,
                        decided_at_ms=event.occurred_at.ToMilliseconds(),
                        voter_key=event.voter_key,
                        poll_id=event.poll_id,
                    ),
                )
            )
            _reflect(update, source.partition, event.cast_at.ToMilliseconds())
        elif isinstance(event, events_pb2.VoteRejected):
            if event.reason != vote_pb2.REJECT_REASON_REPEATED:
                update.statuses.append(
                    (
                        event.vote_id,
                        VoteStatus(
                            vote_pb2.VOTE_STATE_REJECTED,
                            reason=event.reason,
                            accepted_vote_id=event.accepted_vote_id,
                            decided_at_ms=event.occurred_at.ToMilliseconds(),
                            voter_key=event.voter_key,
                            poll_id=event.poll_id,
                        ),
                    )
                )
            _reflect(update, source.partition, event.cast_at.ToMilliseconds())
        else:
            delta.meta[drained_field(source.partition)] = "1"
            delta.meta["partitions"] = str(event.partition_count)
            update.drained.add(event.poll_id)
    return update


def _reflect(update: Update, partition: int, cast_at_ms: int) -> None:
    if cast_at_ms > update.reflected.get(partition, 0):
        update.reflected[partition] = cast_at_ms


def _poll_event(update: Update, event: events.Event) -> None:
    if isinstance(event, events_pb2.PollCreated):
        update.definitions[event.poll.poll_id] = PollDefinition(
            event.poll.SerializeToString(), event.poll.created_at.ToMilliseconds()
        )
    elif isinstance(event, events_pb2.PollClosed):
        update.closes[event.poll_id] = event.occurred_at.ToMilliseconds()
