"""The command rules on the in-memory ports: the order of the checks, idempotency,
retries, and what a refusal leaves behind. No broker, no DynamoDB, no Redis."""

from __future__ import annotations

import asyncio

import pytest

from command_svc.authorization import DevelopmentAuthorizer, Principal
from command_svc.errors import (
    InvalidCommand,
    OptionNotFound,
    PollNotOpen,
    RateLimited,
    RequestIdReused,
    Unavailable,
)
from command_svc.idempotency import Ack
from command_svc.memory import (
    InMemorySharedRequests,
)
from tests.command_svc.sides import cast, create, run, side, vote
from voting.dynamodb import ledger_shard
from voting.errors import PermissionDenied, PollNotFound, ServiceError
from voting.identity import VoterKeys
from voting.v1 import command_service_pb2 as cmd
from voting.v1 import poll_pb2

pytestmark = pytest.mark.unit


def test_structure_comes_first_and_a_refusal_appends_nothing() -> None:
    async def case() -> None:
        s = side()
        await create(s)
        (outcome,) = await cast(s, vote(voter="", option="a"))
        assert isinstance(outcome, InvalidCommand)
        assert [f for f, _ in outcome.violations] == ["voter_id"]
        assert s.log.appended() == []

    run(case)


@pytest.mark.parametrize(
    ("request_", "refusal"),
    [
        (vote(poll_id="nowhere"), PollNotFound),
        (vote(option="zz"), OptionNotFound),
        (vote(poll_id="later"), PollNotOpen),
        (vote(poll_id="over"), PollNotOpen),
    ],
)
def test_business_rules_refuse_without_appending(
    request_: cmd.CastVoteRequest, refusal: type[ServiceError]
) -> None:
    async def case() -> None:
        s = side()
        await create(s)
        future = poll_pb2.Poll().created_at
        future.FromSeconds(4_000_000_000)
        await create(s, "later", opens_at=future)
        await create(s, "over")
        await s.handler.close("over", "close")
        (outcome,) = await cast(s, request_)
        assert isinstance(outcome, refusal)
        assert s.log.appended() == []

    run(case)


def test_authorization_comes_before_any_lookup_of_the_poll() -> None:
    class NoVoting(DevelopmentAuthorizer):
        def authorize_vote(self, principal: Principal, voter_id: str, poll_id: str) -> None:
            raise PermissionDenied("NOT_THIS_VOTER", "no")

    async def case() -> None:
        s = side(authorizer=NoVoting())
        (outcome,) = await cast(s, vote(poll_id="nowhere"))
        assert isinstance(outcome, PermissionDenied)  # not PollNotFound: nothing leaks

    run(case)


def test_a_retried_request_gets_its_first_answer_and_appends_once() -> None:
    async def case() -> None:
        s = side()
        await create(s)
        (first,) = await cast(s, vote(request_id="r1"))
        (again,) = await cast(s, vote(request_id="r1"))
        assert not isinstance(first, ServiceError)
        assert again == first
        assert len(s.log.appended()) == 1

    run(case)


def test_a_request_id_reused_for_another_option_is_refused() -> None:
    async def case() -> None:
        s = side()
        await create(s)
        await cast(s, vote(request_id="r1", option="a"))
        (reused,) = await cast(s, vote(request_id="r1", option="b"))
        assert isinstance(reused, RequestIdReused)
        assert len(s.log.appended()) == 1

    run(case)


def test_the_same_request_twice_in_a_batch_is_appended_once_and_answered_twice() -> None:
    async def case() -> None:
        s = side()
        await create(s)
        one, two, other = await cast(
            s, vote(request_id="r1"), vote(request_id="r1"), vote(request_id="r1", option="b")
        )
        assert one == two
        assert isinstance(other, RequestIdReused)
        assert len(s.log.appended()) == 1

    run(case)


def test_a_retry_after_the_close_gets_its_first_answer() -> None:
    async def case() -> None:
        s = side()
        await create(s)
        (first,) = await cast(s, vote(request_id="r1"))
        await s.handler.close("lunch", "close")
        (again,) = await cast(s, vote(request_id="r1"))
        (fresh,) = await cast(s, vote(voter="bob", request_id="r2"))
        assert again == first
        assert isinstance(fresh, PollNotOpen)

    run(case)


def test_a_retry_after_the_close_in_another_process_gets_its_first_answer() -> None:
    async def case() -> None:
        here = side()
        await create(here)
        (first,) = await cast(here, vote(request_id="r1"))
        await here.handler.close("lunch", "close")
        there = side(here.store, here.log, here.counted, here.shared)
        (again,) = await cast(there, vote(request_id="r1"))
        (reused,) = await cast(there, vote(request_id="r1", option="b"))
        assert again == first
        assert isinstance(reused, RequestIdReused)

    run(case)


def test_with_redis_away_a_retry_after_the_close_is_answered_from_the_counted_vote() -> None:
    """Another process never saw the request and the shared request ids do not answer:
    the votes table (where the worker stored the counted vote) gives the first answer; a
    request it does not know cannot be told apart from one never acknowledged: retry
    later, never a refusal that may contradict an acknowledgement."""

    async def case() -> None:
        here = side()
        await create(here)
        (first,) = await cast(here, vote(request_id="r1"))
        assert not isinstance(first, ServiceError)
        keys = VoterKeys(b"unit-test-secret")
        voter_key = keys.key("ada")
        here.counted.votes[("lunch", ledger_shard(voter_key, 4), voter_key)] = Ack(
            first.vote_id,
            first.consistency_token.position.partition,
            first.consistency_token.position.offset,
            first.received_at.ToMilliseconds(),
            "a",
            "lunch",
        )
        await here.handler.close("lunch", "close")
        away = InMemorySharedRequests()
        away.available = False
        there = side(here.store, here.log, here.counted, away)
        (again,) = await cast(there, vote(request_id="r1"))
        assert again == first
        (unknown,) = await cast(there, vote(voter="bob", request_id="r9"))
        assert isinstance(unknown, Unavailable)

    run(case)


def test_a_call_cancelled_by_its_deadline_leaves_its_append_to_finish() -> None:
    """The first attempt's deadline passes while the log is slow; its append still
    completes, and the retry gets that acknowledgement, alone or in a batch."""

    async def case() -> None:
        s = side()
        await create(s)
        s.log.gate = asyncio.Event()
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(cast(s, vote(request_id="slow")), 0.05)
        s.log.gate.set()
        (retried,) = await asyncio.wait_for(cast(s, vote(request_id="slow")), 2)
        assert not isinstance(retried, ServiceError)
        outcomes = await asyncio.wait_for(
            cast(s, vote(voter="bo", request_id="new"), vote(request_id="slow")), 2
        )
        assert outcomes[1] == retried
        assert len(s.log.appended()) == 2

    run(case)


def test_a_log_that_does_not_take_the_vote_is_unavailable_and_the_retry_appends() -> None:
    async def case() -> None:
        s = side()
        await create(s)
        s.log.unavailable = True
        (failed,) = await cast(s, vote(request_id="r1"))
        assert isinstance(failed, Unavailable)
        s.log.unavailable = False
        (retried,) = await cast(s, vote(request_id="r1"))
        assert not isinstance(retried, ServiceError)
        assert len(s.log.appended()) == 1

    run(case)


def test_a_voter_over_the_rate_limit_is_told_when_to_retry_and_keeps_no_claim() -> None:
    async def case() -> None:
        s = side(voter_rate=1.0)
        await create(s)
        (first,) = await cast(s, vote(request_id="r1"))
        (limited,) = await cast(s, vote(request_id="r2"))
        assert not isinstance(first, ServiceError)
        assert isinstance(limited, RateLimited)
        assert limited.retry_after_s > 0
        assert len(s.log.appended()) == 1

    run(case)
