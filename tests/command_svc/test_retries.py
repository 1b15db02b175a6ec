"""Retries as real clients send them: after a timeout, after the poll closed, and to another
command process. Every retry with the same request id gets the first answer (the same
vote id), or a retryable UNAVAILABLE, never a contradicting one; a request id reused for
other content is refused wherever it lands."""

from __future__ import annotations

import time

import grpc
import pytest
from google.rpc import error_details_pb2

from devkit.stack.stack import Stack
from tests.harness import Deployment, cast, paused
from voting import status
from voting.v1 import command_service_pb2 as cmd
from voting.v1 import command_service_pb2_grpc


def _code_and_reason(error: grpc.RpcError) -> tuple[grpc.StatusCode, str]:
    """The status code and the PreconditionFailure violation types of a refusal."""
    rich = status.from_error(error)
    assert rich is not None, "no google.rpc status details"
    found = status.unpack(rich, error_details_pb2.PreconditionFailure)
    reasons = [v.type for detail in found for v in detail.violations]
    return error.code(), ",".join(reasons)


@pytest.mark.local_infra
def test_a_retry_after_the_first_attempt_timed_out_gets_the_first_answer(
    infra: Stack, deployment: Deployment
) -> None:
    """The first attempts time out while the broker is paused; their appends finish once it
    is back, and retries with the same request ids get those acknowledgements at once,
    alone or inside a batch (bug: they waited forever on the abandoned claims)."""
    deployment.start("command")
    poll_id = deployment.create_poll()
    stub = deployment.commands
    cast(stub, poll_id, "warm-up", request_id="warm-up")
    with paused(infra, "kafka"):
        for request_id, voter in (("slow-1", "tim"), ("slow-2", "ann")):
            with pytest.raises(grpc.RpcError) as timed_out:
                cast(stub, poll_id, voter, request_id=request_id, timeout_s=0.5)
            assert timed_out.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    started = time.monotonic()
    retried = cast(stub, poll_id, "tim", request_id="slow-1", timeout_s=20)
    assert time.monotonic() - started < 10, "the retry waited on an abandoned claim"
    assert cast(stub, poll_id, "tim", request_id="slow-1").vote_id == retried.vote_id
    batch = stub.CastVotes(
        cmd.CastVotesRequest(
            requests=[
                cmd.CastVoteRequest(request_id=r, poll_id=poll_id, voter_id=v, option_id="a")
                for r, v in (("fresh-1", "bo"), ("slow-2", "ann"), ("fresh-2", "cy"))
            ]
        ),
        timeout=20,
    )
    assert [r.status.code for r in batch.results] == [0, 0, 0]


def test_a_retry_after_the_poll_closed_gets_the_first_answer_in_any_process(
    deployment: Deployment,
) -> None:
    deployment.start("command")
    other = deployment.stub_at(
        deployment.start_extra("command-2", "command-svc"),
        command_service_pb2_grpc.CommandServiceStub,
    )
    poll_id = deployment.create_poll()
    stub = deployment.commands
    first = cast(stub, poll_id, "late", request_id="late-1")
    stub.ClosePoll(cmd.ClosePollRequest(request_id="close", poll_id=poll_id), timeout=30)
    here = cast(stub, poll_id, "late", request_id="late-1")
    elsewhere = cast(other, poll_id, "late", request_id="late-1")
    assert here.vote_id == elsewhere.vote_id == first.vote_id
    assert here.consistency_token == first.consistency_token
    assert elsewhere.consistency_token == first.consistency_token
    with pytest.raises(grpc.RpcError) as refused:
        cast(other, poll_id, "late", request_id="late-2")
    assert _code_and_reason(refused.value) == (grpc.StatusCode.FAILED_PRECONDITION, "POLL_CLOSED")


def test_a_request_id_reused_for_other_content_is_refused_by_any_process(
    deployment: Deployment,
) -> None:
    deployment.start("command")
    other = deployment.stub_at(
        deployment.start_extra("command-2", "command-svc"),
        command_service_pb2_grpc.CommandServiceStub,
    )
    poll_id = deployment.create_poll()
    cast(deployment.commands, poll_id, "reuser", "a", request_id="reused")
    with pytest.raises(grpc.RpcError) as refused:
        cast(other, poll_id, "reuser", "b", request_id="reused")
    assert _code_and_reason(refused.value) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "REQUEST_ID_REUSED",
    )
    votes = deployment.read_topic(deployment.settings.topics.votes)
    assert len(votes) == 1, "the refused vote was appended"
