"""Group commit of unary CastVote: concurrent calls of a caller share one batch, and
each still gets exactly the answer it would have got alone."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from command_svc.authorization import Principal
from command_svc.batcher import VoteBatcher
from command_svc.errors import InvalidCommand
from tests.command_svc.sides import CALLER, Side, create, run, side, vote
from voting.errors import DeliveryError, ServiceError
from voting.kafka import Delivered
from voting.v1 import command_service_pb2 as cmd
from voting.v1 import events_pb2

pytestmark = pytest.mark.unit


def counting_appends(s: Side) -> list[int]:
    """Wraps the side's log so that each append's size is recorded."""
    log = s.log
    sizes: list[int] = []
    original = log.append_votes

    async def append_votes(votes: Sequence[events_pb2.VoteCast]) -> list[Delivered | DeliveryError]:
        sizes.append(len(votes))
        return await original(votes)

    log.append_votes = append_votes  # type: ignore[method-assign]
    return sizes


def test_concurrent_calls_of_a_caller_are_appended_as_one_batch() -> None:
    async def case() -> None:
        s = side()
        await create(s)
        sizes = counting_appends(s)
        batcher = VoteBatcher(s.handler, linger_s=0.01, max_votes=1000)
        outcomes = await asyncio.gather(
            *(batcher.cast_vote(vote(voter=f"v{i}", request_id=f"r{i}"), CALLER) for i in range(20))
        )
        assert sizes == [20]
        assert all(isinstance(o, cmd.CastVoteResponse) for o in outcomes)
        assert len({o.vote_id for o in outcomes}) == 20  # type: ignore[union-attr]

    run(case)


def test_callers_are_never_grouped_and_a_full_batch_goes_at_once() -> None:
    async def case() -> None:
        s = side()
        await create(s)
        sizes = counting_appends(s)
        batcher = VoteBatcher(s.handler, linger_s=5.0, max_votes=3)
        other = Principal("other", admin=True)
        calls = [batcher.cast_vote(vote(voter=f"v{i}"), CALLER) for i in range(3)]
        outcomes = await asyncio.wait_for(asyncio.gather(*calls), 2)  # not the 5 s linger
        assert sizes == [3]
        alone = asyncio.ensure_future(batcher.cast_vote(vote(voter="w"), other))
        await asyncio.sleep(0.05)
        assert not alone.done()  # its own batch, waiting out its linger
        alone.cancel()
        assert all(isinstance(o, cmd.CastVoteResponse) for o in outcomes)

    run(case)


def test_a_grouped_call_is_answered_with_castvotes_own_field_paths_and_appends_nothing() -> None:
    async def case() -> None:
        s = side()
        await create(s)
        batcher = VoteBatcher(s.handler, linger_s=0.01, max_votes=1000)
        good, bad, retried = await asyncio.gather(
            batcher.cast_vote(vote(voter="ada", request_id="r1"), CALLER),
            batcher.cast_vote(vote(voter="", request_id="r2"), CALLER),
            batcher.cast_vote(vote(voter="ada", request_id="r1"), CALLER),
        )
        assert isinstance(bad, InvalidCommand)
        assert [field for field, _ in bad.violations] == ["voter_id"]
        assert retried == good  # the same command twice: one append, the same answer
        assert len(s.log.appended()) == 1

    run(case)


def test_a_caller_that_gives_up_leaves_the_batch_to_finish_and_its_retry_finds_the_ack() -> None:
    async def case() -> None:
        s = side()
        await create(s)
        batcher = VoteBatcher(s.handler, linger_s=0.01, max_votes=1000)
        s.log.gate = asyncio.Event()
        patient = asyncio.ensure_future(batcher.cast_vote(vote(voter="bo", request_id="b"), CALLER))
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(batcher.cast_vote(vote(request_id="slow"), CALLER), 0.05)
        s.log.gate.set()
        first = await asyncio.wait_for(patient, 2)
        assert isinstance(first, cmd.CastVoteResponse)
        retried = await asyncio.wait_for(batcher.cast_vote(vote(request_id="slow"), CALLER), 2)
        assert not isinstance(retried, ServiceError)
        assert len(s.log.appended()) == 2

    run(case)


def test_without_a_linger_each_call_is_cast_alone() -> None:
    async def case() -> None:
        s = side()
        await create(s)
        sizes = counting_appends(s)
        batcher = VoteBatcher(s.handler, linger_s=0.0, max_votes=1000)
        await asyncio.gather(*(batcher.cast_vote(vote(voter=f"v{i}"), CALLER) for i in range(3)))
        assert sizes == [1, 1, 1]

    run(case)
