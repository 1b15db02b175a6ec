"""The command side while a store is away, and against topics it does not expect."""

from __future__ import annotations

import time

import grpc
import pytest
from google.rpc import error_details_pb2

from devkit.stack.errors import StackError
from devkit.stack.stack import Stack
from tests.harness import Deployment, cast, paused
from voting import status
from voting.v1 import command_service_pb2 as cmd


def _retry_info(error: grpc.RpcError) -> list[error_details_pb2.RetryInfo]:
    rich = status.from_error(error)
    assert rich is not None, "no google.rpc status details"
    return status.unpack(rich, error_details_pb2.RetryInfo)


@pytest.mark.local_infra
def test_writes_go_on_from_the_last_known_poll_model_while_dynamodb_is_paused(
    infra: Stack, deployment: Deployment
) -> None:
    """DynamoDB answers nothing (SIGSTOP): votes for a poll the command service knows are
    still taken, from its last known model; what needs DynamoDB fails fast, retryably."""
    deployment.start("command")
    poll_id = deployment.create_poll()
    stub = deployment.commands
    cast(stub, poll_id, "before", request_id="before")
    time.sleep(1.5)  # past VOTING_POLL_CACHE_TTL_S: the cached model is stale now
    with paused(infra, "dynamodb"):
        started = time.monotonic()
        cast(stub, poll_id, "during", request_id="during", timeout_s=8)
        assert time.monotonic() - started < 3, "the vote waited for DynamoDB"

        started = time.monotonic()
        with pytest.raises(grpc.RpcError) as unknown:
            cast(stub, "never-seen", "during", request_id="unknown", timeout_s=8)
        assert unknown.value.code() == grpc.StatusCode.UNAVAILABLE
        assert _retry_info(unknown.value)
        assert time.monotonic() - started < 4

        started = time.monotonic()
        with pytest.raises(grpc.RpcError) as close:
            stub.ClosePoll(cmd.ClosePollRequest(request_id="c", poll_id=poll_id), timeout=8)
        assert close.value.code() == grpc.StatusCode.UNAVAILABLE
        assert _retry_info(close.value)
        assert time.monotonic() - started < 4
    # The timed-out close may have reached DynamoDB once it woke up: the retry it asked
    # for settles it either way.
    stub.ClosePoll(cmd.ClosePollRequest(request_id="c", poll_id=poll_id), timeout=10)
    assert cast(stub, poll_id, "during", request_id="during").vote_id  # its first answer


@pytest.mark.parametrize(
    ("name", "command"),
    [("command-x", "command-svc"), ("worker-x", "worker"), ("projector-x", "projector")],
)
def test_a_service_refuses_to_start_when_the_topics_have_another_partition_count(
    deployment: Deployment, name: str, command: str
) -> None:
    """Close markers go to every partition of `votes`: a process that counted them wrong
    would leave a poll that never drains, so it must not start."""
    actual = deployment.settings.topics.partitions
    with pytest.raises(StackError) as caught:
        deployment.start_extra(name, command, env={"VOTING_PARTITIONS": str(actual - 1)})
    assert f"has {actual} partitions" in str(caught.value)
