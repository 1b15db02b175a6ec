"""The benchmark's own arithmetic: outage windows and vote-to-visible matching."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from devkit.bench.load import Ack, LoadRecord, down_windows, within

pytestmark = pytest.mark.unit


def test_a_window_runs_from_the_first_failure_to_the_next_success() -> None:
    events = [(1.0, True), (2.0, False), (2.5, False), (4.0, True), (5.0, False), (6.0, True)]
    assert down_windows(events) == [(2.0, 4.0), (5.0, 6.0)]
    assert within(3.0, down_windows(events))
    assert not within(4.5, down_windows(events))


def test_a_run_that_ends_down_is_down_until_its_last_event() -> None:
    assert down_windows([(1.0, True), (2.0, False), (3.0, False)]) == [(2.0, 3.0)]


@given(st.lists(st.tuples(st.floats(0, 100), st.booleans()), max_size=50))
def test_windows_are_ordered_disjoint_and_start_at_failures(
    events: list[tuple[float, bool]],
) -> None:
    windows = down_windows(events)
    failures = {t for t, ok in events if not ok}
    for index, (start, end) in enumerate(windows):
        assert start <= end
        assert start in failures
        if index + 1 < len(windows):
            assert end <= windows[index + 1][0]
    if not failures:
        assert windows == []


def test_a_vote_is_visible_in_the_first_snapshot_whose_watermark_covers_it() -> None:
    record = LoadRecord(
        acks=[
            Ack(10.0, "p", "v1", "a", partition=0, offset=5),
            Ack(10.0, "p", "v2", "a", partition=1, offset=7),
            Ack(10.0, "other", "v3", "a", partition=0, offset=1),
            Ack(10.0, "p", "v4", "a", partition=0, offset=99),  # never visible
        ]
    )
    snapshots = [(10.1, {0: 4, 1: 7}), (10.3, {0: 5, 1: 7}), (10.5, {0: 3})]
    seen = record.visibility("p", snapshots)
    assert [at for at, _ in seen] == [10.0, 10.0]
    assert [ms for _, ms in seen] == pytest.approx([300.0, 100.0])
