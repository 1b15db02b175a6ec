"""Folding a batch of records into one read-model update: each decision counted once."""

from __future__ import annotations

from collections import Counter
from typing import cast

import pytest
from confluent_kafka import Message

from projector.projection import PollDefinition, PollDelta, fold
from tests.projector.decisions import accepted, at_ms, drained, rejected
from tests.records import RESULTS, FakeMessage, Log
from voting import events
from voting.readmodel import VoteStatus, drained_field
from voting.v1 import events_pb2, poll_pb2, vote_pb2

pytestmark = pytest.mark.unit

POLLS = "polls"


def test_accepted_votes_are_counted_per_poll_and_source_partition() -> None:
    log = Log()
    log.append(accepted("p", "yes", src=0, at=0))
    log.append(accepted("p", "yes", src=0, at=1))
    log.append(accepted("p", "no", src=0, at=4))
    log.append(accepted("p", "no", src=1, at=0), partition=1)
    log.append(accepted("q", "yes", src=0, at=7))

    update = fold(log.records, {}, polls_topic=POLLS)

    assert set(update.deltas) == {("p", 0), ("p", 1), ("q", 0)}
    assert update.deltas[("p", 0)] == PollDelta("p", 0, 4, Counter(yes=2, no=1))
    assert update.deltas[("p", 1)] == PollDelta("p", 1, 0, Counter(no=1))
    assert update.deltas[("q", 0)] == PollDelta("q", 0, 7, Counter(yes=1))
    assert update.polls_changed() == {"p", "q"}
    assert update.records == 5
    assert update.undecodable == []


def test_an_accepted_vote_gets_an_accepted_status() -> None:
    log = Log()
    log.append(accepted("p", "yes", at=3, vote_id="v-1", decided_at_ms=2_500))

    update = fold(log.records, {}, polls_topic=POLLS)

    assert update.statuses == [
        (
            "v-1",
            VoteStatus(
                vote_pb2.VOTE_STATE_ACCEPTED, option_id="yes", decided_at_ms=2_500, poll_id="p"
            ),
        )
    ]


def test_decisions_at_or_below_the_guard_are_skipped() -> None:
    log = Log()
    for at in range(8):
        log.append(accepted("p", "yes", src=2, at=at))
    log.append(accepted("p", "no", src=3, at=0))

    update = fold(log.records, {("p", 2): 5, ("q", 3): 100}, polls_topic=POLLS)

    assert update.deltas[("p", 2)] == PollDelta("p", 2, 7, Counter(yes=2))
    assert update.deltas[("p", 3)].counts == Counter(no=1)  # guards are per poll and partition
    assert [vote_id for vote_id, _ in update.statuses] == ["vote-2-6", "vote-2-7", "vote-3-0"]
    assert update.positions == {(RESULTS, 0): 9}  # skipped records still advance the position
    assert update.records == 9


def test_a_batch_entirely_below_the_guard_changes_nothing_but_positions() -> None:
    log = Log()
    log.append(accepted("p", "yes", at=0))
    log.append(rejected("p", vote_pb2.REJECT_REASON_DUPLICATE, at=1))
    log.append(drained("p", src=0, at=2))

    update = fold(log.records, {("p", 0): 2}, polls_topic=POLLS)

    assert update.deltas == {}
    assert update.statuses == []
    assert update.reflected == {}
    assert update.positions == {(RESULTS, 0): 3}


def test_a_second_copy_of_a_decision_in_one_batch_is_counted_once() -> None:
    # The local broker shows an aborted transaction's records to read_committed readers;
    # the retried transaction then writes the same decisions again.
    log = Log()
    log.append(accepted("p", "yes", at=10, vote_id="v-10"))
    log.append(accepted("p", "no", at=11, vote_id="v-11"))
    log.append(accepted("p", "yes", at=10, vote_id="v-10"))
    log.append(accepted("p", "no", at=11, vote_id="v-11"))
    log.append(accepted("p", "no", at=12, vote_id="v-12"))

    update = fold(log.records, {}, polls_topic=POLLS)

    assert update.deltas[("p", 0)] == PollDelta("p", 0, 12, Counter(yes=1, no=2))
    assert [vote_id for vote_id, _ in update.statuses] == ["v-10", "v-11", "v-12"]
    assert update.positions == {(RESULTS, 0): 5}


def test_a_duplicate_rejection_gets_a_rejected_status_and_no_count() -> None:
    log = Log()
    log.append(
        rejected(
            "p",
            vote_pb2.REJECT_REASON_DUPLICATE,
            at=4,
            vote_id="v-2",
            accepted_vote_id="v-1",
            decided_at_ms=3_000,
        )
    )

    update = fold(log.records, {}, polls_topic=POLLS)

    assert update.statuses == [
        (
            "v-2",
            VoteStatus(
                vote_pb2.VOTE_STATE_REJECTED,
                reason=vote_pb2.REJECT_REASON_DUPLICATE,
                accepted_vote_id="v-1",
                decided_at_ms=3_000,
                poll_id="p",
            ),
        )
    ]
    assert update.deltas[("p", 0)] == PollDelta("p", 0, 4)
    assert sum(update.deltas[("p", 0)].counts.values()) == 0


def test_a_closed_rejection_gets_a_rejected_status() -> None:
    log = Log()
    log.append(rejected("p", vote_pb2.REJECT_REASON_CLOSED, at=0, vote_id="late"))

    update = fold(log.records, {}, polls_topic=POLLS)

    ((vote_id, status),) = update.statuses
    assert vote_id == "late"
    assert status.state == vote_pb2.VOTE_STATE_REJECTED
    assert status.reason == vote_pb2.REJECT_REASON_CLOSED


def test_a_repeated_rejection_updates_no_status() -> None:
    # The counted vote's own status (ACCEPTED) must not be overwritten by its retry.
    log = Log()
    log.append(accepted("p", "yes", at=0, vote_id="v-1"))
    log.append(
        rejected("p", vote_pb2.REJECT_REASON_REPEATED, at=1, vote_id="v-1", accepted_vote_id="v-1")
    )

    update = fold(log.records, {}, polls_topic=POLLS)

    assert [(v, s.state) for v, s in update.statuses] == [("v-1", vote_pb2.VOTE_STATE_ACCEPTED)]
    assert update.deltas[("p", 0)] == PollDelta("p", 0, 1, Counter(yes=1))


def test_cast_times_are_reflected_per_source_partition_as_the_latest() -> None:
    log = Log()
    log.append(accepted("p", "yes", src=0, at=0, cast_at_ms=7_000))
    log.append(rejected("p", vote_pb2.REJECT_REASON_REPEATED, src=0, at=1, cast_at_ms=9_000))
    log.append(accepted("p", "yes", src=0, at=2, cast_at_ms=8_000))
    log.append(accepted("q", "yes", src=1, at=0, cast_at_ms=3_000), partition=1)

    update = fold(log.records, {}, polls_topic=POLLS)

    assert update.reflected == {0: 9_000, 1: 3_000}


def test_a_poll_closed_on_vote_results_marks_its_partition_drained() -> None:
    log = Log()
    log.append(accepted("p", "yes", src=3, at=0), partition=3)
    log.append(drained("p", src=3, at=1), partition=3)

    update = fold(log.records, {}, polls_topic=POLLS)

    delta = update.deltas[("p", 3)]
    assert delta.meta[drained_field(3)] == "1"
    assert drained_field(3) == "drained:3"
    assert not any(f.startswith("drained:") and f != "drained:3" for f in delta.meta)
    assert delta.last_offset == 1
    assert delta.counts == Counter(yes=1)
    assert update.closes == {}  # the poll's close itself comes from the polls topic


def test_a_drained_marker_below_the_guard_is_skipped() -> None:
    log = Log()
    log.append(drained("p", src=3, at=1), partition=3)

    update = fold(log.records, {("p", 3): 1}, polls_topic=POLLS)

    assert update.deltas == {}


def test_poll_events_on_the_polls_topic_define_and_close_polls() -> None:
    poll = poll_pb2.Poll(
        poll_id="p",
        title="Which?",
        options=[poll_pb2.PollOption(option_id="yes", label="Yes")],
        created_at=at_ms(1_234),
    )
    log = Log()
    log.append(events_pb2.PollCreated(event_id="c", poll=poll), topic=POLLS)
    log.append(
        events_pb2.PollClosed(event_id="x", poll_id="p", occurred_at=at_ms(9_876)), topic=POLLS
    )

    update = fold(log.records, {}, polls_topic=POLLS)

    assert update.definitions == {"p": PollDefinition(poll.SerializeToString(), 1_234)}
    assert poll_pb2.Poll.FromString(update.definitions["p"].poll) == poll
    assert update.closes == {"p": 9_876}
    assert update.deltas == {}
    assert update.polls_changed() == {"p"}
    assert update.positions == {(POLLS, 0): 2}


@pytest.mark.parametrize(
    ("value", "headers", "reason"),
    [
        (b"\xff\xff", events.headers_for(events_pb2.VoteAccepted), "VoteAccepted"),
        (b"", [("event-type", b"voting.v1.Nope"), ("schema-version", b"1")], "unknown"),
        (b"", [("event-type", b"voting.v1.VoteAccepted"), ("schema-version", b"9")], "schema"),
        (b"", None, "unknown event type"),
    ],
    ids=["garbage", "unknown-type", "unknown-version", "no-headers"],
)
def test_undecodable_records_are_reported_not_raised(
    value: bytes, headers: events.RecordHeaders, reason: str
) -> None:
    log = Log()
    log.append(accepted("p", "yes", at=0))
    bad = log.raw(value, headers)
    log.append(accepted("p", "yes", at=1))

    update = fold(log.records, {}, polls_topic=POLLS)

    assert len(update.undecodable) == 1
    msg, why = update.undecodable[0]
    assert msg is bad
    assert reason in why
    assert update.deltas[("p", 0)].counts == Counter(yes=2)
    assert update.positions == {(RESULTS, 0): 3}
    assert update.records == 3


def test_events_that_do_not_belong_on_vote_results_are_reported() -> None:
    log = Log()
    cast_event = events_pb2.VoteCast(vote_id="v", poll_id="p", voter_key="k", option_id="yes")
    log.append(cast_event)
    log.append(events_pb2.PollCreated(poll=poll_pb2.Poll(poll_id="p")))

    update = fold(log.records, {}, polls_topic=POLLS)

    assert [why for _, why in update.undecodable] == [
        "unexpected VoteCast",
        "unexpected PollCreated",
    ]
    assert update.deltas == {}
    assert update.definitions == {}


def test_positions_hold_the_next_offset_of_each_topic_partition() -> None:
    log = Log()
    for _ in range(3):
        log.append(accepted("p", "yes", src=0, at=len(log.records)), partition=0)
    log.append(accepted("p", "yes", src=5, at=0), partition=5)
    log.append(events_pb2.PollClosed(poll_id="p", occurred_at=at_ms(1)), topic=POLLS)
    log.append(events_pb2.PollClosed(poll_id="q", occurred_at=at_ms(1)), topic=POLLS)

    update = fold(log.records, {}, polls_topic=POLLS)

    assert update.positions == {(RESULTS, 0): 3, (RESULTS, 5): 1, (POLLS, 0): 2}


def test_positions_follow_the_records_not_the_source_offsets() -> None:
    msg = cast(
        Message,
        FakeMessage(RESULTS, 1, 41, *events.encode(accepted("p", "yes", src=1, at=1_000))),
    )

    update = fold([msg], {}, polls_topic=POLLS)

    assert update.positions == {(RESULTS, 1): 42}
    assert update.deltas[("p", 1)].last_offset == 1_000


def test_an_empty_batch_is_an_empty_update() -> None:
    update = fold([], {}, polls_topic=POLLS)

    assert update.records == 0
    assert update.deltas == {}
    assert update.positions == {}
    assert update.polls_changed() == set()
