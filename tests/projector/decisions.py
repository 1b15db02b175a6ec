"""The worker's decisions, as the projector reads them from ``vote-results``."""

from __future__ import annotations

from google.protobuf.timestamp_pb2 import Timestamp

from tests.records import Log
from voting.v1 import consistency_pb2, events_pb2, poll_pb2, vote_pb2

POLLS = "polls"


def at_ms(ms: int) -> Timestamp:
    stamp = Timestamp()
    stamp.FromMilliseconds(ms)
    return stamp


def _source(partition: int, offset: int) -> consistency_pb2.PartitionOffset:
    return consistency_pb2.PartitionOffset(partition=partition, offset=offset)


def accepted(
    poll_id: str,
    option_id: str,
    *,
    src: int = 0,
    at: int,
    vote_id: str = "",
    cast_at_ms: int = 1_000,
    decided_at_ms: int = 2_000,
) -> events_pb2.VoteAccepted:
    return events_pb2.VoteAccepted(
        event_id=f"accepted-{src}-{at}",
        occurred_at=at_ms(decided_at_ms),
        vote_id=vote_id or f"vote-{src}-{at}",
        poll_id=poll_id,
        option_id=option_id,
        source=_source(src, at),
        cast_at=at_ms(cast_at_ms),
    )


def rejected(
    poll_id: str,
    reason: vote_pb2.RejectReason,
    *,
    src: int = 0,
    at: int,
    vote_id: str = "",
    accepted_vote_id: str = "",
    cast_at_ms: int = 1_000,
    decided_at_ms: int = 2_000,
) -> events_pb2.VoteRejected:
    return events_pb2.VoteRejected(
        event_id=f"rejected-{src}-{at}",
        occurred_at=at_ms(decided_at_ms),
        vote_id=vote_id or f"vote-{src}-{at}",
        poll_id=poll_id,
        reason=reason,
        accepted_vote_id=accepted_vote_id,
        source=_source(src, at),
        cast_at=at_ms(cast_at_ms),
    )


def drained(poll_id: str, *, src: int, at: int) -> events_pb2.PollClosed:
    return events_pb2.PollClosed(
        event_id=f"closed-{src}-{at}",
        occurred_at=at_ms(5_000),
        poll_id=poll_id,
        partition=src,
        partition_count=8,
        source=_source(src, at),
    )


def definition(poll_id: str, log: Log) -> None:
    """Appends the PollCreated of a poll with options a and b to ``polls``."""
    poll = poll_pb2.Poll(
        poll_id=poll_id,
        title="t",
        options=[poll_pb2.PollOption(option_id=o, label=o) for o in ("a", "b")],
    )
    poll.created_at.CopyFrom(at_ms(1_000))
    log.append(events_pb2.PollCreated(poll=poll), topic=POLLS)
