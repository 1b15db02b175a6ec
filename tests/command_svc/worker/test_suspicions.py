"""Answers the stores can give that the worker must not misread (no processes started)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from botocore.exceptions import ClientError
from confluent_kafka import KafkaError, TopicPartition

from command_svc.worker.errors import LedgerUnavailable, WorkerError
from command_svc.worker.ledger import DynamoDBVoteLedger, LedgerEntry
from command_svc.worker.partition import committed_offset

pytestmark = pytest.mark.unit


class ShortReasonsOnce:
    """A TransactWriteItems that is cancelled once with fewer reasons than items (as a
    DynamoDB front end may answer), then succeeds; remembers what was really written."""

    def __init__(self) -> None:
        self.calls = 0
        self.written: set[str] = set()

    async def transact_write_items(self, TransactItems: list[dict[str, Any]]) -> dict[str, Any]:
        self.calls += 1
        if self.calls == 1:
            raise ClientError(
                {
                    "Error": {"Code": "TransactionCanceledException", "Message": "cancelled"},
                    "CancellationReasons": [{"Code": "None"}],
                },
                "TransactWriteItems",
            )
        self.written |= {item["Put"]["Item"]["vote_id"]["S"] for item in TransactItems}
        return {}


def _entry(i: int) -> LedgerEntry:
    return LedgerEntry(
        poll_id="p",
        shard=0,
        voter_key=f"k{i}",
        vote_id=f"v{i}",
        option_id="a",
        cast_at_ms=0,
        partition=0,
        offset=i,
    )


def test_a_cancellation_with_too_few_reasons_never_counts_unwritten_votes_as_written() -> None:
    client = ShortReasonsOnce()
    ledger = DynamoDBVoteLedger(client, "votes", concurrency=1)
    entries = [_entry(i) for i in range(3)]
    try:
        conflicts = asyncio.run(ledger.record(entries, 0))
    except LedgerUnavailable:
        return  # refusing the batch is fine: it is retried whole
    assert conflicts == {}
    assert client.written == {"v0", "v1", "v2"}, "votes reported written that were not"


def test_a_committed_offset_is_used_as_it_is() -> None:
    assert committed_offset(TopicPartition("votes", 0, 42), earliest=0) == 42


def test_no_committed_offset_starts_from_the_beginning_of_a_whole_log() -> None:
    assert committed_offset(TopicPartition("votes", 0, -1001), earliest=0) == 0


def test_no_committed_offset_on_a_trimmed_log_is_refused() -> None:
    """Re-deciding from the first retained record with an empty state would accept votes
    whose first vote or close marker is gone."""
    with pytest.raises(WorkerError, match="trimmed"):
        committed_offset(TopicPartition("votes", 0, -1001), earliest=500)


def test_an_error_reading_the_committed_offset_is_not_read_as_zero() -> None:
    failed = TopicPartition("votes", 0, -1001)
    with pytest.raises(WorkerError, match="committed offset"):
        committed_offset(failed, earliest=0, error=KafkaError(KafkaError.COORDINATOR_NOT_AVAILABLE))
