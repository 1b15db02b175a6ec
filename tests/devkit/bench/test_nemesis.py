"""The nemesis's schedule: drawn from its seed alone, covering what the profile says."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devkit.bench.chaos import KINDS, PROFILES, TARGETS
from devkit.bench.nemesis import GROUP_MEMBERS, Schedule

pytestmark = pytest.mark.unit


def draw(seed: int, profile: str) -> Schedule:
    chosen = PROFILES[profile]
    return Schedule.draw(
        seed,
        targets=TARGETS,
        kinds=KINDS,
        rounds=chosen.rounds,
        extra=chosen.extra,
        gap_s=chosen.gap_s,
    )


def test_the_same_seed_replays_the_same_schedule() -> None:
    assert draw(42, "quick") == draw(42, "quick")
    assert draw(42, "quick") != draw(43, "quick")


@settings(max_examples=50, deadline=None)
@given(seed=st.integers(0, 10**6))
def test_quick_kills_and_pauses_every_target_and_never_two_faults_at_once_on_one(
    seed: int,
) -> None:
    schedule = draw(seed, "quick")
    wanted = {(kind, target) for target in TARGETS for kind in KINDS[target]}
    assert {(f.kind, f.target) for f in schedule.faults} == wanted
    assert {"dynamodb", "redis"} <= {f.target for f in schedule.faults if f.kind == "kill"}
    for target in TARGETS:
        faults = sorted((f for f in schedule.faults if f.target == target), key=lambda f: f.at_s)
        for before, after in itertools.pairwise(faults):
            assert after.at_s >= before.at_s + before.duration_s
    for fault in schedule.faults:
        if fault.kind == "pause" and fault.target in GROUP_MEMBERS:
            assert fault.duration_s > 6.0, "a member's pause must outlast the session timeout"


@settings(max_examples=50, deadline=None)
@given(seed=st.integers(0, 10**6))
def test_the_short_profile_always_holds_a_kill_and_a_pause(seed: int) -> None:
    kinds = {f.kind for f in draw(seed, "short").faults}
    assert kinds == {"kill", "pause"}
