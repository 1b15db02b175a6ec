"""The fan-out benchmark's accounting: every version is timed from its own publication,
including the ones a follower only learnt of through a newer one."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from devkit.bench import fanout
from devkit.bench.stats import percentile, weighted_percentile
from devkit.bench.swarm import Tally

pytestmark = pytest.mark.unit


def tally_of(receipts: list[tuple[int, int, float]], window: tuple[float, float]) -> Any:
    """A swarm's printed figures after its followers saw (held, version, at_ms)."""

    async def build() -> dict[str, Any]:
        tally = Tally()
        tally.measuring = True
        for held, version, at in receipts:
            tally.covered_at(held, version, at)
        tally.window = window
        return tally.figures()

    # Through JSON, as the parent reads it from the swarm's stdout.
    return json.loads(json.dumps(asyncio.run(build())))


def test_a_skipped_version_is_timed_from_its_own_publication() -> None:
    published = {1: 1_000.0, 2: 1_100.0, 3: 1_200.0, 4: 2_900.0}
    # Follower A learns of 1 and 2 only through 2, at 1,150; follower B gets each.
    out = tally_of(
        [(0, 2, 1_150.0), (2, 3, 1_260.0), (0, 1, 1_010.0), (1, 2, 1_110.0), (2, 3, 1_210.0)],
        (900.0, 3_000.0),
    )
    step = fanout.summarize([out], published, count=2)
    # Version 4 came too close to the window's end to be owed to anyone.
    assert step["versions"] == 3
    assert step["expected"] == 6
    assert step["delivered"] == 6
    assert step["delivered_ratio"] == 1.0
    latencies = sorted([150, 50, 60, 10, 10, 10])
    assert step["p99_ms"] == latencies[-1]
    assert step["p50_ms"] == percentile(latencies, 50)
    assert step["pushes"] == 5


def test_a_follower_that_never_learns_of_a_version_is_not_served() -> None:
    out = tally_of([(0, 1, 1_010.0)], (900.0, 3_000.0))
    step = fanout.summarize([out], {1: 1_000.0, 2: 1_100.0}, count=1)
    assert (step["delivered"], step["expected"]) == (1, 2)
    step.update(connected=1, failures=0, followers=1)
    assert not fanout.served_step(step)


@given(st.lists(st.tuples(st.integers(0, 1000), st.integers(1, 50)), min_size=1))
def test_the_weighted_percentile_is_the_percentile_of_the_expanded_values(
    samples: list[tuple[int, int]],
) -> None:
    expanded = [v for v, n in samples for _ in range(n)]
    for pct in (0, 1, 50, 99, 100):
        assert weighted_percentile(samples, pct) == percentile(expanded, pct)


def test_the_compared_steps_are_the_largest_both_served() -> None:
    def step(followers: int, served: bool) -> dict[str, Any]:
        return {"followers": followers, "served": served}

    ours = [step(1000, True), step(2000, True), step(5000, False)]
    bare = [step(1000, True), step(2000, True), step(5000, True)]
    mine, theirs = fanout.paired(ours, bare)
    assert mine is not None
    assert theirs is not None
    assert (mine["followers"], theirs["followers"]) == (2000, 2000)
    assert fanout.largest_served(ours) == 2000


def test_the_wait_for_a_first_snapshot_is_counted_per_follower() -> None:
    async def build() -> dict[str, Any]:
        tally = Tally()
        tally.count = 3
        tally.began -= 0.5  # the swarm began connecting half a second ago
        for _ in range(3):
            tally.joined()
        assert tally.all_connected.is_set()
        return tally.figures()

    out = json.loads(json.dumps(asyncio.run(build())))
    out["window"] = (0.0, 1.0)
    step = fanout.summarize([out], {}, count=3)
    assert step["connected"] == 3
    assert 500 <= step["join_max_ms"] < 2_000
    assert step["join_p99_ms"] <= step["join_max_ms"]
