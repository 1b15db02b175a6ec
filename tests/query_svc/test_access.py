"""Read-side authorization: private results need a scoped token; a bad token is never
read as anonymous; visibility comes from the polls table, not the read model."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2

from devkit.stack.stack import Stack
from tests.harness import Deployment, wait_until
from voting import status
from voting.v1 import command_service_pb2 as cmd
from voting.v1 import poll_pb2
from voting.v1 import query_service_pb2 as q

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def secured(infra: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    d = Deployment(infra, tmp_path_factory.mktemp("access"), auth="jwt")
    d.start("command", "worker", "projector", "query")
    yield d
    d.stop()


def refused(call: Callable[[], Any]) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as caught:
        call()
    error: Any = caught.value
    rich = status.from_error(error)
    assert rich is not None
    (info,) = status.unpack(rich, error_details_pb2.ErrorInfo)
    return error.code(), info.reason


def test_private_results_need_a_token_whose_scope_covers_the_poll(secured: Deployment) -> None:
    private = secured.create_poll(visibility=poll_pb2.VISIBILITY_PRIVATE)
    public = secured.create_poll()
    wait_until(
        lambda: secured.redis.exists(secured.keys.poll(private), secured.keys.poll(public)) == 2,
        timeout_s=30,
        what="both polls in the read model",
    )
    results = secured.queries.GetResults
    ask = q.GetResultsRequest(poll_id=private)
    assert refused(lambda: results(ask, timeout=10)) == (
        grpc.StatusCode.UNAUTHENTICATED,
        "MISSING_TOKEN",
    )
    elsewhere = secured.bearer(secured.token("ann", "read:another-poll"))
    assert refused(lambda: results(ask, timeout=10, metadata=elsewhere)) == (
        grpc.StatusCode.PERMISSION_DENIED,
        "POLL_NOT_IN_SCOPE",
    )
    for scope in (f"read:{private}", "read:*", f"vote:{private}"):
        reader = secured.bearer(secured.token("ann", scope))
        assert results(ask, timeout=10, metadata=reader).results.poll_id == private
    stream = secured.queries.WatchResults(q.WatchResultsRequest(poll_id=private), timeout=10)
    assert refused(lambda: next(stream)) == (grpc.StatusCode.UNAUTHENTICATED, "MISSING_TOKEN")
    assert results(q.GetResultsRequest(poll_id=public), timeout=10).results.poll_id == public
    bad = secured.bearer("not.a.token")
    assert refused(lambda: results(q.GetResultsRequest(poll_id=public), timeout=10, metadata=bad))[
        0
    ] == (grpc.StatusCode.UNAUTHENTICATED)


def test_the_read_model_cannot_make_a_private_poll_public(secured: Deployment) -> None:
    private = secured.create_poll(visibility=poll_pb2.VISIBILITY_PRIVATE)
    key = secured.keys.poll(private)
    wait_until(lambda: secured.redis.exists(key), timeout_s=30, what="the poll in the read model")
    stored = poll_pb2.Poll.FromString(secured.redis.get(key))  # type: ignore[arg-type]
    stored.visibility = poll_pb2.VISIBILITY_PUBLIC  # someone with Redis access tampers
    secured.redis.set(key, stored.SerializeToString())
    ask = q.GetResultsRequest(poll_id=private)
    assert (
        refused(lambda: secured.queries.GetResults(ask, timeout=10))[0]
        == grpc.StatusCode.UNAUTHENTICATED
    )


def test_every_query_refuses_a_bad_token_even_where_none_is_needed(secured: Deployment) -> None:
    public = secured.create_poll()
    good = secured.bearer(secured.token("ann", "read:*"))
    bad_tokens = {
        "garbage": (secured.bearer("not.a.token"), "MALFORMED_TOKEN"),
        "two authorization entries": (good + good, "REPEATED_AUTHORIZATION"),
        "not a bearer token": ([("authorization", "Basic YW5uOnB3")], "MALFORMED_AUTHORIZATION"),
    }
    queries = secured.queries
    calls: dict[str, Callable[[Any], Any]] = {
        "GetPoll": lambda m: queries.GetPoll(
            q.GetPollRequest(poll_id=public), timeout=10, metadata=m
        ),
        "ListPolls": lambda m: queries.ListPolls(q.ListPollsRequest(), timeout=10, metadata=m),
        "GetResults": lambda m: queries.GetResults(
            q.GetResultsRequest(poll_id=public), timeout=10, metadata=m
        ),
        "WatchResults": lambda m: next(
            queries.WatchResults(q.WatchResultsRequest(poll_id=public), timeout=10, metadata=m)
        ),
        "GetVoteStatus": lambda m: queries.GetVoteStatus(
            q.GetVoteStatusRequest(poll_id=public, vote_id=UNKNOWN_VOTE), timeout=10, metadata=m
        ),
    }
    for rpc, call in calls.items():
        for name, (metadata, reason) in bad_tokens.items():
            assert refused(partial(call, metadata)) == (
                grpc.StatusCode.UNAUTHENTICATED,
                reason,
            ), f"{rpc} with {name}"
    assert queries.GetPoll(q.GetPollRequest(poll_id=public), timeout=10, metadata=good).poll


UNKNOWN_VOTE = "00000000-0000-8000-8000-000000000000"


def test_without_a_token_a_vote_status_says_the_same_whether_the_vote_exists_or_not(
    secured: Deployment,
) -> None:
    poll = secured.create_poll()
    ada = secured.bearer(secured.token("ada", f"vote:{poll}"))
    reply = secured.commands.CastVote(
        cmd.CastVoteRequest(poll_id=poll, voter_id="ada", option_id="a"), timeout=10, metadata=ada
    )
    mine = q.GetVoteStatusRequest(
        poll_id=poll, vote_id=reply.vote_id, consistency_token=reply.consistency_token
    )
    assert secured.queries.GetVoteStatus(mine, timeout=30, metadata=ada).state
    for vote_id in (reply.vote_id, UNKNOWN_VOTE):
        ask = q.GetVoteStatusRequest(poll_id=poll, vote_id=vote_id)
        assert refused(partial(secured.queries.GetVoteStatus, ask, timeout=10)) == (
            grpc.StatusCode.UNAUTHENTICATED,
            "MISSING_TOKEN",
        )


def test_a_private_poll_is_shown_only_to_tokens_whose_scope_covers_it(
    secured: Deployment,
) -> None:
    private = secured.create_poll(visibility=poll_pb2.VISIBILITY_PRIVATE)
    public = secured.create_poll()
    wait_until(
        lambda: secured.redis.exists(secured.keys.poll(private), secured.keys.poll(public)) == 2,
        timeout_s=30,
        what="both polls in the read model",
    )
    get = q.GetPollRequest(poll_id=private)
    elsewhere = secured.bearer(secured.token("ann", "read:another-poll"))
    assert refused(lambda: secured.queries.GetPoll(get, timeout=10)) == (
        grpc.StatusCode.UNAUTHENTICATED,
        "MISSING_TOKEN",
    )
    assert refused(lambda: secured.queries.GetPoll(get, timeout=10, metadata=elsewhere)) == (
        grpc.StatusCode.PERMISSION_DENIED,
        "POLL_NOT_IN_SCOPE",
    )
    reader = secured.bearer(secured.token("ann", f"read:{private}"))
    assert secured.queries.GetPoll(get, timeout=10, metadata=reader).poll.poll_id == private

    def listed(metadata: list[tuple[str, str]] | None) -> set[str]:
        seen: set[str] = set()
        token = ""
        while True:
            page = secured.queries.ListPolls(
                q.ListPollsRequest(page_size=50, page_token=token), timeout=10, metadata=metadata
            )
            seen |= {p.poll_id for p in page.polls}
            token = page.next_page_token
            if not token:
                return seen

    for anyone in (None, elsewhere):
        shown = listed(anyone)
        assert public in shown
        assert private not in shown
    assert {public, private} <= listed(reader)
    assert {public, private} <= listed(secured.bearer(secured.token("ops", "admin")))
