"""The recount on the in-memory ports: FINAL is the source of truth's tally, a live count
that differs is reported and replaced, a second run changes nothing, an interrupted one
resumes, and an open or undrained poll is refused. No process started."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from projector.errors import NotDrained, PollNotClosed
from projector.memory import InMemoryReadModel, InMemoryRecountSource
from projector.projection import fold
from projector.recount import Recount
from tests.projector.decisions import POLLS, accepted, definition, drained
from tests.records import Log

pytestmark = pytest.mark.unit


def setup(
    live: dict[str, int], *, drain: bool = True
) -> tuple[Recount, InMemoryReadModel, InMemoryRecountSource]:
    model = InMemoryReadModel()
    log = Log()
    definition("p", log)
    at = 0
    for option, count in live.items():
        for _ in range(count):
            log.append(accepted("p", option, at=at))
            at += 1
    if drain:
        marker = drained("p", src=0, at=at)
        marker.partition_count = 1
        log.append(marker)
    asyncio.run(model.apply(fold(log.records, {}, polls_topic=POLLS), {}, {}))
    source = InMemoryRecountSource()
    source.closed["p"] = 2
    return Recount(source, model), model, source


def test_final_is_the_source_of_truths_tally_and_a_matching_live_count_says_so() -> None:
    recount, model, source = setup({"a": 2, "b": 1})
    source.votes[("p", 0)] = Counter({"a": 1, "b": 1})
    source.votes[("p", 1)] = Counter({"a": 1})
    outcome = asyncio.run(recount.run("p", drain_timeout_s=0))
    assert (outcome.counts, outcome.matched, outcome.finalized) == ({"a": 2, "b": 1}, True, True)
    assert source.finals["p"][2] is True
    assert model.notified[-1].keys() == {"p"}


def test_a_live_count_that_differs_is_reported_and_replaced() -> None:
    recount, model, source = setup({"a": 5, "b": 1})
    source.votes[("p", 0)] = Counter({"a": 2, "b": 1})
    outcome = asyncio.run(recount.run("p", drain_timeout_s=0))
    assert not outcome.matched
    assert outcome.live == {"a": 5, "b": 1}
    assert asyncio.run(model.live_counts("p", ["a", "b"])) == {"a": 2, "b": 1}
    assert recount.mismatches == 1


def test_a_second_recount_changes_nothing() -> None:
    recount, model, source = setup({"a": 1})
    source.votes[("p", 0)] = Counter({"a": 1})
    asyncio.run(recount.run("p", drain_timeout_s=0))
    source.votes[("p", 0)] = Counter({"a": 99})  # it would, if it counted again
    again = asyncio.run(recount.run("p", drain_timeout_s=0))
    assert not again.finalized
    assert asyncio.run(model.live_counts("p", ["a", "b"])) == {"a": 1, "b": 0}


def test_an_interrupted_recount_resumes_from_the_shards_it_saved() -> None:
    recount, _, source = setup({"a": 3})
    source.saved["p"] = {0: Counter({"a": 2})}
    source.votes[("p", 1)] = Counter({"a": 1})
    outcome = asyncio.run(recount.run("p", drain_timeout_s=0))
    assert outcome.counts == {"a": 3, "b": 0}
    assert source.shards_counted == 1


def test_an_open_poll_or_an_undrained_one_is_refused() -> None:
    recount, _, source = setup({"a": 1}, drain=False)
    with pytest.raises(NotDrained):
        asyncio.run(recount.run("p", drain_timeout_s=0))
    del source.closed["p"]
    with pytest.raises(PollNotClosed):
        asyncio.run(recount.run("p", drain_timeout_s=0))
