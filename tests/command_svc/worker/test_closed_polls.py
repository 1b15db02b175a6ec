"""Votes that reach the worker after their poll's close marker."""

from __future__ import annotations

import pytest

from tests.harness import Deployment, append_vote_record, await_final, cast, wait_until
from voting.dynamodb import ledger_shard
from voting.events import new_event_id
from voting.v1 import command_service_pb2 as cmd
from voting.v1 import events_pb2, vote_pb2
from voting.v1 import query_service_pb2 as q

pytestmark = pytest.mark.slow


def test_a_retry_of_a_counted_vote_decided_after_the_close_keeps_its_status(
    running: Deployment,
) -> None:
    """A command process with a stale poll model appends a retry of a counted vote after
    the close marker. It is the same vote, already counted: the worker says REPEATED and
    GetVoteStatus still says ACCEPTED (bug: REJECTED/CLOSED for a vote in the FINAL tally)."""
    deployment = running
    poll_id = deployment.create_poll()
    ack = cast(deployment.commands, poll_id, "early", "b", request_id="early-1")
    cast(deployment.commands, poll_id, "other", "a", request_id="other-1")
    deployment.commands.ClosePoll(
        cmd.ClosePollRequest(request_id="close", poll_id=poll_id), timeout=30
    )
    before = await_final(deployment, poll_id)
    voter_key = deployment.voter_keys.key("early")
    retry = events_pb2.VoteCast(
        event_id=new_event_id(),
        vote_id=ack.vote_id,
        poll_id=poll_id,
        voter_key=voter_key,
        option_id="b",
        request_id="early-1",
        ledger_shard=ledger_shard(voter_key, deployment.settings.dynamodb.ledger_shards),
    )
    append_vote_record(deployment, retry)

    decisions: list[events_pb2.VoteAccepted | events_pb2.VoteRejected] = []

    def decided_twice() -> bool:
        decisions[:] = [
            e
            for r in deployment.read_topic(deployment.settings.topics.vote_results)
            if isinstance(e := r.event(), events_pb2.VoteAccepted | events_pb2.VoteRejected)
            and e.vote_id == ack.vote_id
        ]
        return len(decisions) >= 2

    wait_until(decided_twice, timeout_s=60, what="a decision for the late retry")
    late = decisions[-1]
    assert isinstance(late, events_pb2.VoteRejected)
    assert late.reason == vote_pb2.REJECT_REASON_REPEATED
    found = deployment.queries.GetVoteStatus(
        q.GetVoteStatusRequest(poll_id=poll_id, vote_id=ack.vote_id), timeout=5
    )
    assert found.state == vote_pb2.VOTE_STATE_ACCEPTED
    assert found.option_id == "b"
    after = deployment.queries.GetResults(q.GetResultsRequest(poll_id=poll_id), timeout=5)
    assert after.results.counts == before.counts
