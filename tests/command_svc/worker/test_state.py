"""The dedup state decides one vote per voter per poll, and survives a restore from its
changelog."""

from __future__ import annotations

import itertools
import struct
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from command_svc.worker.state import (
    ACCEPT,
    CLOSED,
    DUPLICATE,
    REPEATED,
    ChangelogRecord,
    Decision,
    DedupState,
    Staged,
)

pytestmark = pytest.mark.unit

_OFFSET = struct.Struct(">q")


@dataclass(frozen=True)
class Vote:
    poll_id: str
    voter_key: str
    vote_id: str


@dataclass(frozen=True)
class Close:
    poll_id: str


Record = Vote | Close


@dataclass
class Ledger(Mapping[tuple[str, str], str]):
    """What DynamoDB holds: each voter's accepted vote; "" for a voter with none."""

    votes: dict[tuple[str, str], str] = field(default_factory=dict)

    def __getitem__(self, key: tuple[str, str]) -> str:
        return self.votes.get(key, "")

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self.votes)

    def __len__(self) -> int:
        return len(self.votes)


def decide(
    state: DedupState,
    records: list[Record],
    first_offset: int,
    staged: Staged | None = None,
    ledger: Ledger | None = None,
) -> tuple[list[Decision | None], Staged]:
    """Decides ``records`` at consecutive offsets; a close has no decision (None). With a
    ``ledger``, votes for closed polls are decided as the worker does, from what DynamoDB
    holds, and accepted votes are written to it."""
    staged = Staged() if staged is None else staged
    decisions: list[Decision | None] = []
    for offset, record in enumerate(records, start=first_offset):
        if isinstance(record, Vote):
            decision = state.decide_vote(
                staged,
                record.poll_id,
                record.voter_key,
                record.vote_id,
                offset,
                after_close=ledger,
            )
            if ledger is not None and decision.outcome == ACCEPT:
                ledger.votes[(record.poll_id, record.voter_key)] = record.vote_id
            decisions.append(decision)
        else:
            state.stage_close(staged, record.poll_id, offset)
            decisions.append(None)
    return decisions, staged


def decide_in_batches(
    state: DedupState, records: list[Record], cuts: list[int], ledger: Ledger | None = None
) -> tuple[list[Decision | None], list[ChangelogRecord]]:
    """Decides ``records`` in batches split at ``cuts``, applying each batch (a commit)."""
    ledger = Ledger() if ledger is None else ledger
    bounds = [0, *sorted({c for c in cuts if 0 < c < len(records)}), len(records)]
    decisions: list[Decision | None] = []
    changelog: list[ChangelogRecord] = []
    for start, end in itertools.pairwise(bounds):
        batch, staged = decide(state, records[start:end], start, ledger=ledger)
        state.apply(staged)
        decisions.extend(batch)
        changelog.extend(staged.changelog)
    return decisions, changelog


def restored(changelog: list[ChangelogRecord], committed: int) -> DedupState:
    state = DedupState()
    for key, value in changelog:
        state.restore(key, value, committed)
    return state


# -- examples --------------------------------------------------------------------------


def test_the_first_vote_of_a_voter_is_accepted() -> None:
    state = DedupState()
    staged = Staged()

    assert state.decide_vote(staged, "p", "alice", "v1", 0) == Decision(ACCEPT)
    assert state.decide_vote(staged, "p", "bob", "v2", 1) == Decision(ACCEPT)
    assert state.decide_vote(staged, "q", "alice", "v3", 2) == Decision(ACCEPT)


def test_another_vote_of_the_same_voter_is_a_duplicate_naming_the_counted_vote() -> None:
    state = DedupState()
    staged = Staged()
    state.decide_vote(staged, "p", "alice", "v1", 0)

    decision = state.decide_vote(staged, "p", "alice", "v2", 1)

    assert decision == Decision(DUPLICATE, accepted_vote_id="v1")


def test_the_same_vote_again_is_repeated() -> None:
    state = DedupState()
    staged = Staged()
    state.decide_vote(staged, "p", "alice", "v1", 0)

    assert state.decide_vote(staged, "p", "alice", "v1", 1) == Decision(REPEATED, "v1")


def test_decisions_hold_across_committed_batches() -> None:
    state = DedupState()
    first = Staged()
    state.decide_vote(first, "p", "alice", "v1", 0)
    state.apply(first)
    second = Staged()

    assert state.decide_vote(second, "p", "alice", "v1", 1) == Decision(REPEATED, "v1")
    assert state.decide_vote(second, "p", "alice", "v9", 2) == Decision(DUPLICATE, "v1")
    assert second.changelog == []
    assert len(state) == 1


def test_staged_changes_are_invisible_to_a_fresh_batch_until_applied() -> None:
    state = DedupState()
    staged = Staged()
    state.decide_vote(staged, "p", "alice", "v1", 0)
    state.stage_close(staged, "q", 1)

    assert len(state) == 0
    assert state.decide_vote(Staged(), "p", "alice", "v2", 2) == Decision(ACCEPT)
    assert state.decide_vote(Staged(), "q", "bob", "v3", 3) == Decision(ACCEPT)

    state.apply(staged)

    assert len(state) == 1
    assert state.decide_vote(Staged(), "p", "alice", "v2", 4) == Decision(DUPLICATE, "v1")
    assert state.decide_vote(Staged(), "q", "bob", "v3", 5) == Decision(CLOSED, unknown=True)


def test_votes_after_a_close_are_closed_within_and_after_the_batch() -> None:
    state = DedupState()
    staged = Staged()
    state.decide_vote(staged, "p", "alice", "v1", 0)
    state.stage_close(staged, "p", 1)

    assert state.decide_vote(staged, "p", "bob", "v2", 2) == Decision(CLOSED, unknown=True)
    assert state.decide_vote(staged, "p", "alice", "v9", 3) == Decision(CLOSED, "v1")
    assert state.decide_vote(staged, "other", "bob", "v3", 4) == Decision(ACCEPT)

    state.apply(staged)

    assert state.decide_vote(Staged(), "p", "carol", "v4", 5) == Decision(CLOSED, unknown=True)
    assert len(state) == 1  # the closed poll's entries are dropped; "other" remains


def test_a_counted_vote_again_after_the_close_is_repeated_not_closed() -> None:
    """A late retry of a counted vote must not read as rejected: it is in the tally."""
    state = DedupState()
    staged = Staged()
    state.decide_vote(staged, "p", "alice", "v1", 0)
    state.stage_close(staged, "p", 1)

    assert state.decide_vote(staged, "p", "alice", "v1", 2) == Decision(REPEATED, "v1")

    state.apply(staged)  # the state forgets p's voters: DynamoDB says who was counted
    ledger = Ledger({("p", "alice"): "v1"})
    late = Staged()

    assert state.decide_vote(late, "p", "alice", "v1", 3, after_close=ledger) == Decision(
        REPEATED, "v1"
    )
    assert state.decide_vote(late, "p", "alice", "v2", 4, after_close=ledger) == Decision(
        CLOSED, "v1"
    )
    assert state.decide_vote(late, "p", "bob", "v3", 5, after_close=ledger) == Decision(CLOSED)
    assert late.changelog == []


def test_closing_a_poll_tombstones_each_of_its_voters_after_its_marker() -> None:
    state = DedupState()
    first = Staged()
    state.decide_vote(first, "p", "alice", "v1", 0)
    state.apply(first)
    closing = Staged()
    state.decide_vote(closing, "p", "bob", "v2", 1)
    state.decide_vote(closing, "q", "carol", "v3", 2)
    state.stage_close(closing, "p", 3)

    marker, *tombstones = closing.changelog[2:]
    assert marker[0] == b"\x00closed\x1fp"
    assert tombstones == [(b"p\x1falice", None), (b"p\x1fbob", None)]


def test_voters_staged_directly_for_an_already_closed_poll_are_not_kept() -> None:
    # stage_voter is also how votes found in DynamoDB after state loss are taken in.
    state = DedupState()
    closing = Staged()
    state.stage_close(closing, "p", 0)
    state.apply(closing)
    staged = Staged()
    state.stage_voter(staged, "p", "alice", "v1", 1)
    state.stage_voter(staged, "q", "alice", "v2", 1)

    state.apply(staged)

    assert len(state) == 1
    assert state.decide_vote(Staged(), "q", "alice", "v3", 2) == Decision(DUPLICATE, "v2")


def test_a_poll_is_closed_once() -> None:
    state = DedupState()
    staged = Staged()
    state.stage_close(staged, "p", 0)
    state.stage_close(staged, "p", 1)
    state.apply(staged)
    again = Staged()
    state.stage_close(again, "p", 2)

    assert staged.closed == ["p"]
    assert len(staged.changelog) == 1
    assert again.closed == []
    assert again.changelog == []


def test_the_changelog_holds_one_record_per_accepted_vote_and_close() -> None:
    state = DedupState()
    decisions, staged = decide(
        state,
        [Vote("p", "alice", "v1"), Vote("p", "alice", "v2"), Vote("p", "bob", "v3"), Close("p")],
        first_offset=10,
    )

    assert [d.outcome if d else None for d in decisions] == [ACCEPT, DUPLICATE, ACCEPT, None]
    assert len(staged.changelog) == 5  # two voters, the close, two tombstones
    sources = [_OFFSET.unpack_from(value)[0] for _, value in staged.changelog if value]
    assert sources == [10, 12, 13]


def test_restore_applies_records_below_the_committed_offset_only() -> None:
    source = DedupState()
    _, staged = decide(source, [Vote("p", "alice", "v1"), Vote("p", "bob", "v2")], 5)
    state = DedupState()

    assert [state.restore(k, v, committed=6) for k, v in staged.changelog] == [True, False]
    assert len(state) == 1
    assert state.decide_vote(Staged(), "p", "alice", "v9", 7) == Decision(DUPLICATE, "v1")
    assert state.decide_vote(Staged(), "p", "bob", "v9", 8) == Decision(ACCEPT)


def test_restore_at_the_committed_offset_itself_is_skipped() -> None:
    _, staged = decide(DedupState(), [Vote("p", "alice", "v1")], 5)
    ((key, value),) = staged.changelog
    state = DedupState()

    assert state.restore(key, value, committed=5) is False
    assert state.restore(key, value, committed=6) is True
    assert state.decide_vote(Staged(), "p", "alice", "v1", 9) == Decision(REPEATED, "v1")


def test_restore_of_a_close_marker_drops_and_refuses_the_poll() -> None:
    _, staged = decide(
        DedupState(),
        [Vote("p", "alice", "v1"), Vote("q", "alice", "v2"), Close("p"), Vote("q", "bob", "v3")],
        0,
    )
    state = DedupState()

    for key, value in staged.changelog:
        assert state.restore(key, value, committed=4) is (value is not None)

    assert len(state) == 2  # q's two voters; p's entry dropped with its close
    assert state.decide_vote(Staged(), "p", "carol", "v4", 4) == Decision(CLOSED, unknown=True)
    assert state.decide_vote(Staged(), "q", "alice", "v5", 5) == Decision(DUPLICATE, "v2")


def test_entries_restored_after_a_close_marker_are_dropped() -> None:
    # On a compacted changelog a closed poll's voter entry may be read after its marker.
    _, staged = decide(DedupState(), [Vote("p", "alice", "v1"), Close("p")], 0)
    vote_record, close_record, _tombstone = staged.changelog
    state = DedupState()

    state.restore(*close_record, committed=2)
    state.restore(*vote_record, committed=2)

    assert len(state) == 0
    assert state.decide_vote(Staged(), "p", "alice", "v1", 2) == Decision(CLOSED, unknown=True)


def test_tombstones_are_skipped_on_restore_even_of_an_aborted_close() -> None:
    """A tombstone has no source offset: one of an aborted close (visible on the local
    broker) must not forget the voters of a poll that is still open."""
    _, committed = decide(DedupState(), [Vote("p", "alice", "v1")], 0)
    _, aborted = decide(DedupState(), [Vote("p", "alice", "v1"), Close("p")], 0)
    state = DedupState()

    for key, value in committed.changelog + aborted.changelog:
        state.restore(key, value, committed=1)

    assert len(state) == 1
    assert state.decide_vote(Staged(), "p", "alice", "v2", 1) == Decision(DUPLICATE, "v1")


def test_an_uncommitted_close_marker_is_ignored() -> None:
    _, staged = decide(DedupState(), [Vote("p", "alice", "v1"), Close("p")], 0)
    state = DedupState()

    applied = [state.restore(k, v, committed=1) for k, v in staged.changelog]

    assert applied == [True, False, False]  # the vote; the close and its tombstone are not
    assert state.decide_vote(Staged(), "p", "bob", "v2", 1) == Decision(ACCEPT)


# -- properties ------------------------------------------------------------------------

_POLLS = ["p1", "p2", "p3"]
_VOTERS = ["a", "b", "c", "d"]
_VOTE_IDS = ["v1", "v2", "v3"]

records = st.lists(
    st.one_of(
        st.builds(
            Vote,
            poll_id=st.sampled_from(_POLLS),
            voter_key=st.sampled_from(_VOTERS),
            vote_id=st.sampled_from(_VOTE_IDS),
        ),
        st.builds(Close, st.sampled_from(_POLLS)),
    ),
    max_size=40,
)
cuts = st.lists(st.integers(min_value=0, max_value=40), max_size=8)

_PROPERTY = settings(max_examples=200, deadline=None)


def _model(records: list[Record]) -> list[Decision | None]:
    """The intended decisions, stated directly."""
    counted: dict[tuple[str, str], str] = {}
    closed: set[str] = set()
    out: list[Decision | None] = []
    for record in records:
        if isinstance(record, Close):
            closed.add(record.poll_id)
            out.append(None)
            continue
        key = (record.poll_id, record.voter_key)
        if record.poll_id in closed:
            if counted.get(key) == record.vote_id:
                out.append(Decision(REPEATED, record.vote_id))
            else:
                out.append(Decision(CLOSED, counted.get(key, "")))
        elif key not in counted:
            counted[key] = record.vote_id
            out.append(Decision(ACCEPT))
        elif counted[key] == record.vote_id:
            out.append(Decision(REPEATED, counted[key]))
        else:
            out.append(Decision(DUPLICATE, counted[key]))
    return out


@_PROPERTY
@given(records=records)
def test_decisions_follow_one_vote_per_voter_per_open_poll(records: list[Record]) -> None:
    decisions, _ = decide(DedupState(), records, 0, ledger=Ledger())

    assert decisions == _model(records)


@_PROPERTY
@given(records=records, cuts=cuts)
def test_batching_does_not_change_decisions(records: list[Record], cuts: list[int]) -> None:
    one_batch, _ = decide_in_batches(DedupState(), records, [])
    several, _ = decide_in_batches(DedupState(), records, cuts)

    assert several == one_batch


@_PROPERTY
@given(history=records, cuts=cuts, further=records)
def test_a_state_restored_from_its_changelog_decides_like_the_original(
    history: list[Record], cuts: list[int], further: list[Record]
) -> None:
    original = DedupState()
    ledger = Ledger()
    _, changelog = decide_in_batches(original, history, cuts, ledger)
    rebuilt = restored(changelog, committed=len(history))

    assert len(rebuilt) == len(original)
    expected, _ = decide(original, further, len(history), ledger=Ledger(dict(ledger.votes)))
    actual, _ = decide(rebuilt, further, len(history), ledger=Ledger(dict(ledger.votes)))
    assert actual == expected


@_PROPERTY
@given(history=records, cuts=cuts, later=records, further=records)
def test_a_state_restored_from_a_checkpoint_decides_like_the_original(
    history: list[Record], cuts: list[int], later: list[Record], further: list[Record]
) -> None:
    """Restoring from a rewrite of the state (a checkpoint) and what followed it is the
    same as restoring the whole changelog."""
    original = DedupState()
    ledger = Ledger()
    decide_in_batches(original, history, cuts, ledger)
    checkpoint: list[ChangelogRecord] = list(original.rewrite())
    _, tail = decide_in_batches(original, later, [], ledger)
    committed = len(history) + len(later)
    # The tail's offsets continue after the history's.
    shifted: list[ChangelogRecord] = [
        (k, _OFFSET.pack(_OFFSET.unpack_from(v)[0] + len(history)) + v[_OFFSET.size :])
        if v is not None
        else (k, v)
        for k, v in tail
    ]
    rebuilt = restored(checkpoint + shifted, committed=committed)

    assert len(rebuilt) == len(original)
    assert rebuilt.entries == original.entries
    expected, _ = decide(original, further, committed, ledger=Ledger(dict(ledger.votes)))
    actual, _ = decide(rebuilt, further, committed, ledger=Ledger(dict(ledger.votes)))
    assert actual == expected


@_PROPERTY
@given(history=records, further=records)
def test_a_restore_ignores_changelog_records_of_an_aborted_batch(
    history: list[Record], further: list[Record]
) -> None:
    original = DedupState()
    ledger = Ledger()
    _, changelog = decide_in_batches(original, history, [], ledger)
    # The next batch is decided and its changelog written, but its transaction aborts.
    _, aborted = decide(original, further, len(history), ledger=Ledger(dict(ledger.votes)))
    rebuilt = restored(changelog + aborted.changelog, committed=len(history))

    expected, _ = decide(original, further, len(history), ledger=Ledger(dict(ledger.votes)))
    actual, _ = decide(rebuilt, further, len(history), ledger=Ledger(dict(ledger.votes)))
    assert actual == expected
