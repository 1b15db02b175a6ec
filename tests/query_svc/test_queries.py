"""QueryService's unary queries against the real pipeline."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest

from devkit.stack.stack import Stack
from tests.harness import Deployment, wait_until
from voting.v1 import command_service_pb2 as cmd
from voting.v1 import query_service_pb2 as q
from voting.v1 import vote_pb2

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def system(infra: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    d = Deployment(infra, tmp_path_factory.mktemp("queries"))
    d.start()
    yield d
    d.stop()


def code_of(call: Callable[[], object]) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as caught:
        call()
    code: grpc.StatusCode = caught.value.code()
    return code


def test_get_poll(system: Deployment) -> None:
    poll_id = system.create_poll()
    wait_until(
        lambda: system.redis.exists(system.keys.poll(poll_id)), timeout_s=30, what="the poll"
    )
    poll = system.queries.GetPoll(q.GetPollRequest(poll_id=poll_id), timeout=5).poll
    assert [o.option_id for o in poll.options] == ["a", "b", "c"]
    assert (
        code_of(lambda: system.queries.GetPoll(q.GetPollRequest(poll_id="nope"), timeout=5))
        == grpc.StatusCode.NOT_FOUND
    )
    assert (
        code_of(lambda: system.queries.GetPoll(q.GetPollRequest(poll_id="No!"), timeout=5))
        == grpc.StatusCode.INVALID_ARGUMENT
    )


def test_list_polls_pages_newest_first(system: Deployment) -> None:
    made = [system.create_poll(f"page-{i}") for i in range(5)]
    wait_until(
        lambda: all(system.redis.exists(system.keys.poll(p)) for p in made),
        timeout_s=30,
        what="polls",
    )
    seen: list[str] = []
    token = ""
    while True:
        page = system.queries.ListPolls(
            q.ListPollsRequest(page_size=2, page_token=token), timeout=5
        )
        assert len(page.polls) <= 2
        seen += [p.poll_id for p in page.polls]
        token = page.next_page_token
        if not token:
            break
    ours = [p for p in seen if p.startswith("page-")]
    assert ours == list(reversed(made))
    assert len(seen) == len(set(seen))
    bad_token = q.ListPollsRequest(page_token="not-a-token!")
    assert (
        code_of(lambda: system.queries.ListPolls(bad_token, timeout=5))
        == grpc.StatusCode.INVALID_ARGUMENT
    )
    assert (
        code_of(lambda: system.queries.ListPolls(q.ListPollsRequest(page_size=500), timeout=5))
        == grpc.StatusCode.INVALID_ARGUMENT
    )


def test_read_your_writes_with_the_consistency_token(system: Deployment) -> None:
    poll_id = system.create_poll()
    reply = system.commands.CastVote(
        cmd.CastVoteRequest(poll_id=poll_id, voter_id="ryw", option_id="b"), timeout=10
    )
    results = system.queries.GetResults(
        q.GetResultsRequest(poll_id=poll_id, consistency_token=reply.consistency_token), timeout=30
    ).results
    marks = {w.partition: w.offset for w in results.watermark}
    position = reply.consistency_token.position
    assert marks[position.partition] >= position.offset
    assert {c.option_id: c.votes for c in results.counts}["b"] == 1


def test_vote_status_accepted_duplicate_and_unknown(system: Deployment) -> None:
    poll_id = system.create_poll()
    first = system.commands.CastVote(
        cmd.CastVoteRequest(poll_id=poll_id, voter_id="eve", option_id="a"), timeout=10
    )
    second = system.commands.CastVote(
        cmd.CastVoteRequest(poll_id=poll_id, voter_id="eve", option_id="c"), timeout=10
    )
    accepted = system.queries.GetVoteStatus(
        q.GetVoteStatusRequest(
            poll_id=poll_id, vote_id=first.vote_id, consistency_token=first.consistency_token
        ),
        timeout=30,
    )
    assert accepted.state == vote_pb2.VOTE_STATE_ACCEPTED
    assert accepted.option_id == "a"
    rejected = system.queries.GetVoteStatus(
        q.GetVoteStatusRequest(
            poll_id=poll_id, vote_id=second.vote_id, consistency_token=second.consistency_token
        ),
        timeout=30,
    )
    assert rejected.state == vote_pb2.VOTE_STATE_REJECTED
    assert rejected.reason == vote_pb2.REJECT_REASON_DUPLICATE
    unknown = q.GetVoteStatusRequest(
        poll_id=poll_id, vote_id="00000000-0000-8000-8000-000000000000"
    )
    assert (
        code_of(lambda: system.queries.GetVoteStatus(unknown, timeout=5))
        == grpc.StatusCode.NOT_FOUND
    )
    malformed = q.GetVoteStatusRequest(poll_id=poll_id, vote_id="42")
    assert (
        code_of(lambda: system.queries.GetVoteStatus(malformed, timeout=5))
        == grpc.StatusCode.INVALID_ARGUMENT
    )


def test_a_token_not_reached_in_time_gives_pending_or_deadline(
    system: Deployment, tmp_path: Path
) -> None:
    poll_id = system.create_poll()
    system.kill("worker")  # nothing will be decided until it is back
    try:
        reply = system.commands.CastVote(
            cmd.CastVoteRequest(poll_id=poll_id, voter_id="late", option_id="a"), timeout=10
        )
        pending = system.queries.GetVoteStatus(
            q.GetVoteStatusRequest(
                poll_id=poll_id, vote_id=reply.vote_id, consistency_token=reply.consistency_token
            ),
            timeout=1.5,
        )
        assert pending.state == vote_pb2.VOTE_STATE_PENDING
        request = q.GetResultsRequest(poll_id=poll_id, consistency_token=reply.consistency_token)
        assert (
            code_of(lambda: system.queries.GetResults(request, timeout=1.5))
            == grpc.StatusCode.DEADLINE_EXCEEDED
        )
    finally:
        system.restart("worker")
