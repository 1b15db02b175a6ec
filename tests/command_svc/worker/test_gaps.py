"""The worker never decides past a record it has not seen: a fetch that skips an offset
(librdkafka can hand out records past a seek's offset) is fetched again from the
missing one, and only a gap the log itself keeps showing is passed."""

from __future__ import annotations

from typing import Any

import pytest

from command_svc.worker.partition import GAP_REFETCHES, PartitionProcessor
from tests.records import Log
from voting.config import Settings
from voting.kafka import KafkaClients
from voting.v1 import events_pb2

pytestmark = pytest.mark.unit

SETTINGS = Settings.from_env({})


def processor(next_offset: int) -> PartitionProcessor:
    proc = PartitionProcessor(
        partition=0,
        kafka=KafkaClients(SETTINGS.kafka, SETTINGS.topics),
        topics=SETTINGS.topics,
        group_id="unit",
    )
    proc.next_offset = next_offset
    return proc


def records(offsets: list[int]) -> list[Any]:
    log = Log(start=0)
    for i in range(max(offsets) + 1):
        vote = events_pb2.VoteCast(vote_id=f"v{i}", poll_id="p", voter_key=f"k{i}", option_id="a")
        log.append(vote, topic=SETTINGS.topics.votes)
    by_offset = {r.offset(): r for r in log.records}
    return [by_offset[o] for o in offsets]


def offsets(kept: list[Any]) -> list[int]:
    return [r.offset() for r in kept]


def test_records_from_the_next_offset_on_are_all_decided() -> None:
    kept, gap = processor(10).contiguous(records([8, 9, 10, 11, 12]))
    assert (offsets(kept), gap) == ([10, 11, 12], False)


def test_a_batch_that_starts_past_the_next_offset_is_not_decided() -> None:
    # Before this guard the worker decided 12 and 13, committed 14, and vote 10 and 11
    # were never counted.
    proc = processor(10)
    kept, gap = proc.contiguous(records([12, 13]))
    assert (kept, gap) == ([], True)


def test_a_gap_inside_a_batch_stops_the_batch_before_it() -> None:
    kept, gap = processor(10).contiguous(records([10, 11, 13, 14]))
    assert (offsets(kept), gap) == ([10, 11], True)


def test_a_gap_the_log_keeps_showing_is_passed_after_the_refetches() -> None:
    proc = processor(10)
    for _ in range(GAP_REFETCHES):
        assert proc.contiguous(records([12, 13])) == ([], True)
    kept, gap = proc.contiguous(records([12, 13]))
    assert (offsets(kept), gap) == ([12, 13], False)


def test_a_refetch_that_brings_the_missing_record_resets_the_count() -> None:
    proc = processor(10)
    assert proc.contiguous(records([12]))[1]
    kept, gap = proc.contiguous(records([10, 11, 12]))
    assert (offsets(kept), gap) == ([10, 11, 12], False)
    proc.next_offset = 20
    assert proc.contiguous(records([22]))[1]  # a new gap starts counting again
