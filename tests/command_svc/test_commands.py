"""CommandService against the real broker and DynamoDB: every refusal has its own clear
status with google.rpc details, and changes nothing."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import timestamp_pb2
from google.rpc import error_details_pb2

from devkit.stack.components import free_port
from devkit.stack.stack import Stack
from devkit.tokens import generate_keypair
from tests.harness import Deployment
from voting import status
from voting.v1 import command_service_pb2 as cmd
from voting.v1 import command_service_pb2_grpc, poll_pb2


@pytest.fixture(scope="module")
def system(infra: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    d = Deployment(infra, tmp_path_factory.mktemp("commands"))
    d.start("command")
    yield d
    d.stop()


@pytest.fixture(scope="module")
def polls(system: Deployment) -> dict[str, str]:
    open_poll = system.create_poll("matrix-open")
    closed = system.create_poll("matrix-closed")
    system.commands.ClosePoll(
        cmd.ClosePollRequest(request_id="close-1", poll_id=closed), timeout=30
    )
    later = timestamp_pb2.Timestamp(seconds=int(time.time()) + 3600)
    scheduled = system.create_poll("matrix-scheduled", opens_at=later)
    return {"open": open_poll, "closed": closed, "scheduled": scheduled}


def appended(system: Deployment) -> tuple[int, int, int]:
    """Records in votes and polls, and items in the polls table."""
    topics = system.settings.topics
    return (
        len(system.read_topic(topics.votes)),
        len(system.read_topic(topics.polls)),
        len(system.poll_items()),
    )


def refused(call: Callable[[], Any]) -> tuple[grpc.StatusCode, Any]:
    with pytest.raises(grpc.RpcError) as caught:
        call()
    error: Any = caught.value
    rich = status.from_error(error)
    assert rich is not None, "no google.rpc status details"
    return error.code(), rich


def vote(
    poll_id: str, voter: str = "alice", option: str = "a", request_id: str = ""
) -> cmd.CastVoteRequest:
    return cmd.CastVoteRequest(
        poll_id=poll_id, voter_id=voter, option_id=option, request_id=request_id
    )


BAD_VOTES = {
    "missing poll": (vote(""), "poll_id"),
    "malformed poll id": (vote("Bad Poll!"), "poll_id"),
    "missing voter": (vote("matrix-open", voter=""), "voter_id"),
    "voter too long": (vote("matrix-open", voter="v" * 129), "voter_id"),
    "voter with a control character": (vote("matrix-open", voter="ev\x07l"), "voter_id"),
    "missing option": (vote("matrix-open", option=""), "option_id"),
    "malformed option": (vote("matrix-open", option="A B"), "option_id"),
    "malformed request id": (vote("matrix-open", request_id="has space"), "request_id"),
}


@pytest.mark.parametrize("case", BAD_VOTES, ids=list(BAD_VOTES))
def test_structurally_bad_votes_are_invalid_argument(
    system: Deployment, polls: dict[str, str], case: str
) -> None:
    request, field = BAD_VOTES[case]
    before = appended(system)
    code, rich = refused(lambda: system.commands.CastVote(request, timeout=10))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    (bad,) = status.unpack(rich, error_details_pb2.BadRequest)
    assert field in [v.field for v in bad.field_violations]
    assert appended(system) == before


RULE_BREAKS = {
    "unknown poll": ("no-such-poll", "a", grpc.StatusCode.NOT_FOUND, "voting.v1.Poll"),
    "unknown option": ("open", "zz", grpc.StatusCode.NOT_FOUND, "voting.v1.PollOption"),
    "closed poll": ("closed", "a", grpc.StatusCode.FAILED_PRECONDITION, "POLL_CLOSED"),
    "poll not open yet": (
        "scheduled",
        "a",
        grpc.StatusCode.FAILED_PRECONDITION,
        "POLL_NOT_OPEN_YET",
    ),
}


@pytest.mark.parametrize("case", RULE_BREAKS, ids=list(RULE_BREAKS))
def test_business_rule_failures(system: Deployment, polls: dict[str, str], case: str) -> None:
    poll, option, code, kind = RULE_BREAKS[case]
    before = appended(system)
    request = vote(polls.get(poll, poll), option=option)
    got, rich = refused(lambda: system.commands.CastVote(request, timeout=10))
    assert got == code
    if code == grpc.StatusCode.NOT_FOUND:
        (resource,) = status.unpack(rich, error_details_pb2.ResourceInfo)
        assert resource.resource_type == kind
    else:
        (failure,) = status.unpack(rich, error_details_pb2.PreconditionFailure)
        assert failure.violations[0].type == kind
    assert appended(system) == before


def test_a_retried_vote_returns_the_same_acknowledgement_and_appends_once(
    system: Deployment, polls: dict[str, str]
) -> None:
    before = appended(system)
    request = vote(polls["open"], voter="retrier", request_id="retry-1")
    replies = [system.commands.CastVote(request, timeout=10) for _ in range(3)]
    batch = system.commands.CastVotes(cmd.CastVotesRequest(requests=[request, request]), timeout=10)
    assert all(r == replies[0] for r in replies), "the same acknowledgement, receipt included"
    # CastVotes (for gateways) carries no receipts; the rest of the acknowledgement is equal.
    single = cmd.CastVoteResponse()
    single.CopyFrom(replies[0])
    single.ClearField("receipt")
    assert all(r.response == single for r in batch.results)
    assert appended(system)[0] == before[0] + 1


def test_a_request_id_reused_for_another_option_is_refused(
    system: Deployment, polls: dict[str, str]
) -> None:
    system.commands.CastVote(vote(polls["open"], voter="reuser", request_id="reuse-1"), timeout=10)
    before = appended(system)
    other = vote(polls["open"], voter="reuser", option="b", request_id="reuse-1")
    code, rich = refused(lambda: system.commands.CastVote(other, timeout=10))
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    (failure,) = status.unpack(rich, error_details_pb2.PreconditionFailure)
    assert failure.violations[0].type == "REQUEST_ID_REUSED"
    assert appended(system) == before


@pytest.mark.parametrize("size", [0, 1001], ids=["empty batch", "oversized batch"])
def test_batches_outside_the_limits_are_refused_whole(
    system: Deployment, polls: dict[str, str], size: int
) -> None:
    before = appended(system)
    requests = [vote(polls["open"], voter=f"bulk-{i}") for i in range(size)]
    code, _ = refused(
        lambda: system.commands.CastVotes(cmd.CastVotesRequest(requests=requests), timeout=10)
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert appended(system) == before


def test_a_batch_reports_each_vote_and_appends_only_the_good_ones(
    system: Deployment, polls: dict[str, str]
) -> None:
    before = appended(system)
    requests = [
        vote(polls["open"], voter="batch-1"),
        vote(polls["open"], voter=""),
        vote(polls["closed"], voter="batch-3"),
        vote(polls["open"], voter="batch-4", option="c"),
    ]
    reply = system.commands.CastVotes(cmd.CastVotesRequest(requests=requests), timeout=10)
    codes = [r.status.code for r in reply.results]
    assert codes == [
        0,
        grpc.StatusCode.INVALID_ARGUMENT.value[0],
        grpc.StatusCode.FAILED_PRECONDITION.value[0],
        0,
    ]
    (bad,) = status.unpack(reply.results[1].status, error_details_pb2.BadRequest)
    assert bad.field_violations[0].field == "requests[1].voter_id"
    assert appended(system)[0] == before[0] + 2


def poll_request(**overrides: Any) -> cmd.CreatePollRequest:
    fields: dict[str, Any] = {
        "request_id": "create-x",
        "poll_id": "fresh-poll",
        "title": "A question",
        "options": [
            poll_pb2.PollOption(option_id="yes", label="Yes"),
            poll_pb2.PollOption(option_id="no", label="No"),
        ],
    }
    fields.update(overrides)
    return cmd.CreatePollRequest(**fields)


BAD_POLLS = {
    "missing request id": (poll_request(request_id=""), "request_id"),
    "malformed poll id": (poll_request(poll_id="-bad"), "poll_id"),
    "missing title": (poll_request(title=""), "title"),
    "one option": (
        poll_request(options=[poll_pb2.PollOption(option_id="only", label="Only")]),
        "options",
    ),
    "duplicate option ids": (
        poll_request(
            options=[
                poll_pb2.PollOption(option_id="x", label="X"),
                poll_pb2.PollOption(option_id="x", label="Y"),
            ]
        ),
        "options[1].option_id",
    ),
    "closing time in the past": (
        poll_request(closes_at=timestamp_pb2.Timestamp(seconds=1000)),
        "closes_at",
    ),
}


@pytest.mark.parametrize("case", BAD_POLLS, ids=list(BAD_POLLS))
def test_bad_polls_are_invalid_argument(system: Deployment, case: str) -> None:
    request, field = BAD_POLLS[case]
    before = appended(system)
    code, rich = refused(lambda: system.commands.CreatePoll(request, timeout=10))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    (bad,) = status.unpack(rich, error_details_pb2.BadRequest)
    assert field in [v.field for v in bad.field_violations]
    assert appended(system) == before


def test_a_taken_poll_id_is_already_exists_and_a_replay_is_not(
    system: Deployment, polls: dict[str, str]
) -> None:
    before = appended(system)
    # The harness created the poll with this content; a replay repeats it exactly.
    replay = system.commands.CreatePoll(
        poll_request(
            request_id=f"create-{polls['open']}",
            poll_id=polls["open"],
            title=f"Poll {polls['open']}",
            options=[poll_pb2.PollOption(option_id=o, label=o.upper()) for o in "abc"],
        ),
        timeout=10,
    )
    assert replay.poll_id == polls["open"]
    code, _ = refused(
        lambda: system.commands.CreatePoll(
            poll_request(request_id=f"create-{polls['open']}", poll_id=polls["open"]), timeout=10
        )
    )
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    code, _ = refused(
        lambda: system.commands.CreatePoll(poll_request(poll_id=polls["open"]), timeout=10)
    )
    assert code == grpc.StatusCode.ALREADY_EXISTS
    assert appended(system) == before


def test_closing_an_unknown_poll_is_not_found(system: Deployment) -> None:
    before = appended(system)
    code, _ = refused(
        lambda: system.commands.ClosePoll(
            cmd.ClosePollRequest(request_id="c", poll_id="never-made"), timeout=10
        )
    )
    assert code == grpc.StatusCode.NOT_FOUND
    assert appended(system) == before


def test_closing_twice_succeeds_and_later_votes_are_refused(system: Deployment) -> None:
    poll_id = system.create_poll("close-twice")
    first = system.commands.ClosePoll(
        cmd.ClosePollRequest(request_id="c1", poll_id=poll_id), timeout=30
    )
    second = system.commands.ClosePoll(
        cmd.ClosePollRequest(request_id="c2", poll_id=poll_id), timeout=30
    )
    assert first.closed_at == second.closed_at
    code, _ = refused(lambda: system.commands.CastVote(vote(poll_id), timeout=10))
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    markers = [
        r for r in system.read_topic(system.settings.topics.votes) if r.key == poll_id.encode()
    ]
    assert sorted(r.partition for r in markers) == list(range(system.settings.topics.partitions))


A_PUBLIC_KEY = json.dumps({"k": generate_keypair()[1].decode()})


@pytest.mark.parametrize(
    ("env", "complaint"),
    [
        ({}, "VOTING_JWT_PUBLIC_KEYS"),
        ({"VOTING_AUTH_MODE": "development"}, "VOTING_ENVIRONMENT=development"),
        (
            {"VOTING_JWT_PUBLIC_KEYS": A_PUBLIC_KEY, "VOTING_VOTER_KEY_SECRET": ""},
            "VOTING_VOTER_KEY_SECRET",
        ),
    ],
    ids=["no token keys", "development auth", "no voter key secret"],
)
def test_production_settings_fail_closed_at_startup(
    system: Deployment, env: dict[str, str], complaint: str
) -> None:
    production = {
        **system.stack.env(),
        "VOTING_ENVIRONMENT": "production",
        "VOTING_AUTH_MODE": "jwt",
        "VOTING_VOTER_KEY_SECRET": "s3cret",
        "VOTING_COMMAND_LISTEN": f"127.0.0.1:{free_port()}",
        **env,
    }
    production.pop("VOTING_JWT_PUBLIC_KEYS", None)
    if "VOTING_JWT_PUBLIC_KEYS" in env:
        production["VOTING_JWT_PUBLIC_KEYS"] = env["VOTING_JWT_PUBLIC_KEYS"]
    result = subprocess.run(
        [sys.executable, "-m", "voting", "command-svc"],
        env={**production, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert complaint in result.stderr


def test_load_beyond_the_in_flight_limit_is_shed_with_retry_info(
    system: Deployment, polls: dict[str, str]
) -> None:
    port = system.start_extra("command-tiny", "command-svc", env={"VOTING_MAX_INFLIGHT_VOTES": "1"})
    stub = system.stub_at(port, command_service_pb2_grpc.CommandServiceStub)
    before = appended(system)
    requests = [vote(polls["open"], voter=f"shed-{i}") for i in range(2)]
    reply = stub.CastVotes(cmd.CastVotesRequest(requests=requests), timeout=10)
    for result in reply.results:
        assert result.status.code == grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]
        assert status.unpack(result.status, error_details_pb2.RetryInfo)
    assert appended(system) == before


def test_a_broker_that_cannot_take_the_vote_gives_unavailable(
    system: Deployment, polls: dict[str, str], tmp_path: Path
) -> None:
    port = system.start_extra(
        "command-no-broker",
        "command-svc",
        env={
            "VOTING_KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}",
            "VOTING_PRODUCE_TIMEOUT_S": "2",
        },
    )
    stub = system.stub_at(port, command_service_pb2_grpc.CommandServiceStub)
    before = appended(system)
    code, rich = refused(lambda: stub.CastVote(vote(polls["open"], voter="unlucky"), timeout=20))
    assert code == grpc.StatusCode.UNAVAILABLE
    assert status.unpack(rich, error_details_pb2.RetryInfo)
    assert appended(system) == before
