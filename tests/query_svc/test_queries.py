"""QueryService's unary queries against the real pipeline."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

import grpc
import pytest

from devkit.stack.stack import Stack
from tests.harness import Deployment, paused, wait_until
from voting.v1 import command_service_pb2 as cmd
from voting.v1 import consistency_pb2, poll_pb2, vote_pb2
from voting.v1 import query_service_pb2 as q

pytestmark = pytest.mark.slow

WAIT_MAX_S = 2.0


@pytest.fixture(scope="module")
def system(infra: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    d = Deployment(infra, tmp_path_factory.mktemp("queries"))
    d.start(env={"VOTING_CONSISTENCY_WAIT_MAX_S": str(WAIT_MAX_S)})
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
    # The reply names its poll and, for a duplicate, the vote that was counted.
    assert (accepted.poll_id, rejected.poll_id) == (poll_id, poll_id)
    assert rejected.counted_vote_id == first.vote_id
    assert not accepted.counted_vote_id
    # A real vote id asked for under another poll (real or not) is not that poll's vote.
    other = system.create_poll()
    for elsewhere in (other, "no-such-poll"):
        ask = q.GetVoteStatusRequest(poll_id=elsewhere, vote_id=first.vote_id)
        assert (
            code_of(partial(system.queries.GetVoteStatus, ask, timeout=5))
            == grpc.StatusCode.NOT_FOUND
        )
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


def test_a_token_for_a_partition_the_log_does_not_have_is_refused_at_once(
    system: Deployment,
) -> None:
    poll_id = system.create_poll()
    reply = system.commands.CastVote(
        cmd.CastVoteRequest(poll_id=poll_id, voter_id="tok", option_id="a"), timeout=10
    )
    token = consistency_pb2.ConsistencyToken()
    token.CopyFrom(reply.consistency_token)
    token.position.partition = system.settings.topics.partitions  # one past the last
    # Deadlines far longer than the server's own bound: only a refusal answers in time.
    for call in (
        lambda: system.queries.GetResults(
            q.GetResultsRequest(poll_id=poll_id, consistency_token=token), timeout=30
        ),
        lambda: system.queries.GetVoteStatus(
            q.GetVoteStatusRequest(poll_id=poll_id, vote_id=reply.vote_id, consistency_token=token),
            timeout=30,
        ),
    ):
        assert code_of(call) == grpc.StatusCode.INVALID_ARGUMENT


def test_a_wait_without_a_deadline_ends_at_the_servers_bound(system: Deployment) -> None:
    poll_id = system.create_poll()
    reply = system.commands.CastVote(
        cmd.CastVoteRequest(poll_id=poll_id, voter_id="far", option_id="a"), timeout=10
    )
    token = consistency_pb2.ConsistencyToken()
    token.CopyFrom(reply.consistency_token)
    token.position.offset = 2**62  # a position the log will not reach
    pending = system.queries.GetResults.future(
        q.GetResultsRequest(poll_id=poll_id, consistency_token=token)  # no deadline
    )
    try:
        error = pending.exception(timeout=WAIT_MAX_S + 8)
    except grpc.FutureTimeoutError:
        pending.cancel()
        pytest.fail("a wait without a deadline was not ended by the server")
    assert isinstance(error, grpc.RpcError)
    assert error.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    status = system.queries.GetVoteStatus.future(
        q.GetVoteStatusRequest(poll_id=poll_id, vote_id=reply.vote_id, consistency_token=token)
    )
    # Known at once if the decision is already applied; PENDING at the bound otherwise.
    assert status.result(timeout=WAIT_MAX_S + 8).state in (
        vote_pb2.VOTE_STATE_ACCEPTED,
        vote_pb2.VOTE_STATE_PENDING,
    )


def test_get_poll_right_after_create_poll_is_served_from_the_source_of_truth(
    system: Deployment,
) -> None:
    system.kill("projector")  # the read model will not learn of the new poll meanwhile
    try:
        unknown = q.GetPollRequest(poll_id="made-a-moment-later")
        assert (
            code_of(lambda: system.queries.GetPoll(unknown, timeout=5)) == grpc.StatusCode.NOT_FOUND
        )
        system.create_poll("made-a-moment-later")
        poll = system.queries.GetPoll(unknown, timeout=5).poll
        assert poll.poll_id == "made-a-moment-later"
        assert [o.option_id for o in poll.options] == ["a", "b", "c"]
        assert poll.status == poll_pb2.POLL_STATUS_OPEN
        assert not system.redis.exists(system.keys.poll("made-a-moment-later"))
    finally:
        system.restart("projector")


def test_resuming_a_watch_at_or_past_the_final_version_and_from_the_future(
    system: Deployment,
) -> None:
    poll_id = system.create_poll()
    system.commands.CastVote(
        cmd.CastVoteRequest(poll_id=poll_id, voter_id="res", option_id="a"), timeout=10
    )
    wait_until(lambda: system.redis_counts(poll_id).get("a") == 1, timeout_s=30, what="the vote")
    watch = system.queries.WatchResults
    current = next(watch(q.WatchResultsRequest(poll_id=poll_id), timeout=10)).results
    # A version this service never sent (from the future) is refused at once.
    future = q.WatchResultsRequest(poll_id=poll_id, after_version=current.version + 3_600_000)
    assert code_of(lambda: next(watch(future, timeout=30))) == grpc.StatusCode.OUT_OF_RANGE
    # At the current version of an open poll, the stream waits for the next change.
    resumed = watch(
        q.WatchResultsRequest(poll_id=poll_id, after_version=current.version), timeout=30
    )
    system.commands.CastVote(
        cmd.CastVoteRequest(poll_id=poll_id, voter_id="res-2", option_id="b"), timeout=10
    )
    newer = next(resumed).results
    assert newer.version > current.version
    resumed.cancel()
    system.commands.ClosePoll(
        cmd.ClosePollRequest(request_id=f"close-{poll_id}", poll_id=poll_id), timeout=30
    )
    final = next(
        r.results
        for r in watch(q.WatchResultsRequest(poll_id=poll_id), timeout=120)
        if r.results.final
    )
    for after in (final.version, final.version + 1):
        ended = list(watch(q.WatchResultsRequest(poll_id=poll_id, after_version=after), timeout=10))
        assert ended == [], "a client holding the FINAL snapshot gets an empty, OK stream"


def test_watch_results_right_after_create_poll_waits_for_the_read_model(
    system: Deployment,
) -> None:
    with paused(system.stack, "projector"):  # the read model lags behind the polls table
        system.create_poll("watched-at-once")
        stream = system.queries.WatchResults(
            q.WatchResultsRequest(poll_id="watched-at-once"), timeout=30
        )
        time.sleep(0.5)
        assert not system.redis.exists(system.keys.poll("watched-at-once"))
    first = next(stream).results
    assert first.poll_id == "watched-at-once"
    assert first.total == 0
    stream.cancel()
    never = q.WatchResultsRequest(poll_id="never-created")
    assert code_of(lambda: next(system.queries.WatchResults(never, timeout=10))) == (
        grpc.StatusCode.NOT_FOUND
    )
