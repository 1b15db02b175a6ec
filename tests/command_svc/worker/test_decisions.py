"""The worker's decisions on the in-memory ledger: the ledger wins after the state was
lost, and decides the votes that come after a poll's close. No broker, no DynamoDB."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest

from command_svc.worker.decisions import decide_and_record
from command_svc.worker.errors import LedgerUnavailable
from command_svc.worker.ledger import LedgerEntry
from command_svc.worker.memory import InMemoryVoteLedger
from command_svc.worker.partition import Batch, PartitionProcessor
from tests.records import Log
from voting import events
from voting.config import Settings
from voting.kafka import KafkaClients
from voting.v1 import events_pb2, vote_pb2

pytestmark = pytest.mark.unit

SETTINGS = Settings.from_env({})


def vote(voter: str, vote_id: str, option: str = "a", poll: str = "p") -> events_pb2.VoteCast:
    return events_pb2.VoteCast(
        vote_id=vote_id, poll_id=poll, voter_key=voter, option_id=option, ledger_shard=0
    )


def close(poll: str = "p") -> events_pb2.PollClosed:
    return events_pb2.PollClosed(poll_id=poll, partition=0, partition_count=1)


def processor() -> PartitionProcessor:
    return PartitionProcessor(
        partition=0,
        kafka=KafkaClients(SETTINGS.kafka, SETTINGS.topics),
        topics=SETTINGS.topics,
        group_id="unit",
    )


def decide(
    proc: PartitionProcessor, ledger: Any, evts: Sequence[events.Event], *, timeout_s: float = 5
) -> Batch:
    log = Log(start=proc.next_offset)  # offsets carry on from where the processor is
    for event in evts:
        log.append(event, topic=SETTINGS.topics.votes)
    records: list[Any] = log.records
    batch = asyncio.run(decide_and_record(proc, records, ledger, timeout_s=timeout_s))
    # As a commit would: the state moves on.
    proc.state.apply(batch.staged)
    proc.next_offset = batch.next_offset
    return batch


def outcomes(batch: Batch) -> list[tuple[str, int]]:
    found = []
    for _, value, headers in batch.outputs:
        event = events.decode(value, headers)
        if isinstance(event, events_pb2.VoteAccepted):
            found.append((event.vote_id, 0))
        elif isinstance(event, events_pb2.VoteRejected):
            found.append((event.vote_id, int(event.reason)))
    return found


def stored(ledger: InMemoryVoteLedger) -> dict[str, tuple[str, str]]:
    return {entry.voter_key: (entry.vote_id, entry.option_id) for entry in ledger.items.values()}


def test_first_votes_are_accepted_and_in_the_ledger_before_anything_commits() -> None:
    ledger = InMemoryVoteLedger()
    batch = decide(processor(), ledger, [vote("ada", "v1"), vote("bob", "v2"), vote("ada", "v3")])
    assert outcomes(batch) == [("v1", 0), ("v2", 0), ("v3", vote_pb2.REJECT_REASON_DUPLICATE)]
    assert stored(ledger) == {"ada": ("v1", "a"), "bob": ("v2", "a")}


def test_after_the_state_was_lost_the_ledger_wins() -> None:
    ledger = InMemoryVoteLedger()
    decide(processor(), ledger, [vote("ada", "v1", "a")])
    fresh = processor()  # a worker that restored nothing
    batch = decide(fresh, ledger, [vote("ada", "v9", "b"), vote("ada", "v1", "b")])
    assert outcomes(batch) == [
        ("v9", vote_pb2.REJECT_REASON_DUPLICATE),
        ("v1", vote_pb2.REJECT_REASON_REPEATED),  # same vote id, another option: not counted
    ]
    assert stored(ledger) == {"ada": ("v1", "a")}


def test_after_the_close_a_late_retry_of_the_counted_vote_is_repeated() -> None:
    ledger = InMemoryVoteLedger()
    proc = processor()
    decide(proc, ledger, [vote("ada", "v1"), close()])
    assert len(proc.state) == 0  # the closed poll's voters are gone from the state
    batch = decide(proc, ledger, [vote("ada", "v1"), vote("ada", "v2"), vote("bob", "v3")])
    assert outcomes(batch) == [
        ("v1", vote_pb2.REJECT_REASON_REPEATED),
        ("v2", vote_pb2.REJECT_REASON_CLOSED),
        ("v3", vote_pb2.REJECT_REASON_CLOSED),
    ]
    assert batch.ledger == []


def test_a_ledger_that_fails_or_does_not_answer_fails_the_batch() -> None:
    ledger = InMemoryVoteLedger()
    ledger.unavailable = True
    with pytest.raises(LedgerUnavailable):
        decide(processor(), ledger, [vote("ada", "v1")])

    class Stuck(InMemoryVoteLedger):
        async def record(
            self, entries: Sequence[LedgerEntry], decided_at_ms: int
        ) -> dict[int, str]:
            await asyncio.sleep(60)
            return {}

    with pytest.raises(LedgerUnavailable, match="did not answer"):
        decide(processor(), Stuck(), [vote("ada", "v1")], timeout_s=0.05)
