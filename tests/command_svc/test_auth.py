"""The command side with signed tokens, required deadlines, rate limits and receipts, against
real processes: every refusal has its status and writes nothing (no Kafka record, no
DynamoDB item)."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devkit.stack.stack import Stack
from devkit.tokens import TokenIssuer, generate_keypair, load_private_key
from tests.harness import Deployment, wait_until
from voting import status
from voting.v1 import command_service_pb2 as cmd
from voting.v1 import command_service_pb2_grpc, vote_pb2
from voting.v1 import query_service_pb2 as q

pytestmark = pytest.mark.slow

# Voters whose votes were acknowledged in this module: the only ones allowed in the stores.
ACKED: list[str] = []


@pytest.fixture(scope="module")
def secured(infra: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    d = Deployment(infra, tmp_path_factory.mktemp("secured"), auth="jwt")
    d.start(
        "command",
        "worker",
        "projector",
        "query",
        env={
            "VOTING_REQUIRE_DEADLINE": "true",
            "VOTING_RATE_VOTER_PER_S": "0.5",
            "VOTING_RATE_VOTER_BURST": "3",
        },
    )
    yield d
    d.stop()


@pytest.fixture(scope="module")
def poll(secured: Deployment) -> str:
    return secured.create_poll("secure-poll")


def appended(d: Deployment) -> tuple[int, int]:
    return len(d.read_topic(d.settings.topics.votes)), len(d.ledger_items())


def refusal(call: Callable[[], Any]) -> tuple[grpc.StatusCode, Any]:
    with pytest.raises(grpc.RpcError) as caught:
        call()
    error: Any = caught.value
    return error.code(), status.from_error(error)


def reason_of(rich: Any) -> str:
    (info,) = status.unpack(rich, error_details_pb2.ErrorInfo)
    return info.reason


def vote(poll_id: str, voter: str, option: str = "a", request_id: str = "") -> cmd.CastVoteRequest:
    return cmd.CastVoteRequest(
        poll_id=poll_id, voter_id=voter, option_id=option, request_id=request_id
    )


def test_tokens_that_must_be_refused(secured: Deployment, poll: str) -> None:
    stranger_pem, _ = generate_keypair()
    forged = TokenIssuer(
        load_private_key(stranger_pem), kid="dev", issuer="voting", audience="voting"
    )
    cases = {
        "no token": (None, grpc.StatusCode.UNAUTHENTICATED, "MISSING_TOKEN"),
        "expired": (
            secured.token("eve", "vote:*", ttl_s=60, now=time.time() - 3600),
            grpc.StatusCode.UNAUTHENTICATED,
            "TOKEN_EXPIRED",
        ),
        "wrong signature": (
            forged.issue("eve", ["vote:*"]),
            grpc.StatusCode.UNAUTHENTICATED,
            "BAD_SIGNATURE",
        ),
        "another voter's": (
            secured.token("mallory", "vote:*"),
            grpc.StatusCode.PERMISSION_DENIED,
            "NOT_THIS_VOTER",
        ),
        "another poll's scope": (
            secured.token("eve", "vote:other-poll"),
            grpc.StatusCode.PERMISSION_DENIED,
            "POLL_NOT_IN_SCOPE",
        ),
        "garbage": ("not.a.token", grpc.StatusCode.UNAUTHENTICATED, "MALFORMED_TOKEN"),
    }
    before = appended(secured)
    for name, (token, code, reason) in cases.items():
        metadata = secured.bearer(token) if token else None

        def call(m: list[tuple[str, str]] | None = metadata) -> Any:
            return secured.commands.CastVote(vote(poll, "eve"), timeout=10, metadata=m)

        got, rich = refusal(call)
        assert (got, reason_of(rich)) == (code, reason), name
    eve = secured.bearer(secured.token("eve", "vote:*"))
    for metadata, reason in (
        (eve + secured.bearer(secured.token("eve", "vote:*")), "REPEATED_AUTHORIZATION"),
        (eve + eve, "REPEATED_AUTHORIZATION"),
        ([("authorization", "Basic ZXZlOnB3")], "MALFORMED_AUTHORIZATION"),
    ):
        for rpc in ("CastVote", "CastVotes", "ClosePoll"):
            got, rich = refusal(partial(send, secured, rpc, poll, metadata))
            assert (got, reason_of(rich)) == (grpc.StatusCode.UNAUTHENTICATED, reason), rpc
    assert appended(secured) == before


def send(d: Deployment, rpc: str, poll: str, metadata: list[tuple[str, str]]) -> Any:
    if rpc == "CastVote":
        return d.commands.CastVote(vote(poll, "eve"), timeout=10, metadata=metadata)
    if rpc == "CastVotes":
        batch = cmd.CastVotesRequest(requests=[vote(poll, "eve")])
        return d.commands.CastVotes(batch, timeout=10, metadata=metadata)
    close = cmd.ClosePollRequest(request_id="close-bad-auth", poll_id=poll)
    return d.commands.ClosePoll(close, timeout=10, metadata=metadata)


def test_admin_commands_need_the_admin_scope(secured: Deployment, poll: str) -> None:
    voter = secured.bearer(secured.token("eve", "vote:*"))
    code, rich = refusal(
        lambda: secured.commands.ClosePoll(
            cmd.ClosePollRequest(request_id="c", poll_id=poll), timeout=10, metadata=voter
        )
    )
    assert (code, reason_of(rich)) == (grpc.StatusCode.PERMISSION_DENIED, "ADMIN_SCOPE_REQUIRED")


def test_commands_without_a_deadline_are_refused(secured: Deployment, poll: str) -> None:
    metadata = secured.bearer(secured.token("dora", "vote:*"))
    code, rich = refusal(lambda: secured.commands.CastVote(vote(poll, "dora"), metadata=metadata))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    (bad,) = status.unpack(rich, error_details_pb2.BadRequest)
    assert bad.field_violations[0].field == "deadline"


def test_a_vote_with_its_voters_token_is_counted_and_its_receipt_proves_it(
    secured: Deployment, poll: str
) -> None:
    token = secured.token("ada", f"vote:{poll}")
    reply = secured.commands.CastVote(
        vote(poll, "ada", option="b", request_id="ada-1"),
        timeout=10,
        metadata=secured.bearer(token),
    )
    ACKED.append("ada")
    assert reply.receipt.signature, "CastVote returns a signed receipt"
    for option in ("a", "b", "c"):  # the poll's options: none can be found by hashing
        unkeyed = hashlib.sha256(f"{reply.vote_id}\x1f{option}".encode()).digest()
        assert reply.receipt.option_digest != unkeyed
    status_request = q.GetVoteStatusRequest(
        poll_id=poll,
        vote_id=reply.vote_id,
        consistency_token=reply.consistency_token,
        receipt=reply.receipt,
    )
    checked = secured.queries.GetVoteStatus(
        status_request, timeout=30, metadata=secured.bearer(token)
    )
    assert checked.state == vote_pb2.VOTE_STATE_ACCEPTED
    assert checked.counted_as_cast
    tampered = q.GetVoteStatusRequest()
    tampered.CopyFrom(status_request)
    tampered.receipt.option_digest = b"\x00" * 32
    code, _ = refusal(
        lambda: secured.queries.GetVoteStatus(tampered, timeout=10, metadata=secured.bearer(token))
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    other = secured.bearer(secured.token("mallory", "vote:*"))
    code, rich = refusal(
        lambda: secured.queries.GetVoteStatus(status_request, timeout=10, metadata=other)
    )
    assert (code, reason_of(rich)) == (grpc.StatusCode.PERMISSION_DENIED, "NOT_YOUR_VOTE")


def test_a_proxy_may_cast_for_many_voters_in_one_batch(secured: Deployment, poll: str) -> None:
    proxy = secured.bearer(secured.token("gateway-1", f"proxy:{poll}"))
    requests = [vote(poll, f"crowd-{i}") for i in range(5)]
    reply = secured.commands.CastVotes(
        cmd.CastVotesRequest(requests=requests), timeout=10, metadata=proxy
    )
    assert [r.status.code for r in reply.results] == [0] * 5
    ACKED.extend(r.voter_id for r in requests)
    voter = secured.bearer(secured.token("crowd-0", "vote:*"))
    reply = secured.commands.CastVotes(
        cmd.CastVotesRequest(requests=requests[:2]), timeout=10, metadata=voter
    )
    assert reply.results[0].status.code == 0  # crowd-0 votes again: durable, a duplicate
    ACKED.append("crowd-0")
    assert reply.results[1].status.code == grpc.StatusCode.PERMISSION_DENIED.value[0]


def test_a_voter_beyond_the_rate_limit_is_told_when_to_retry_across_processes(
    secured: Deployment, poll: str
) -> None:
    port = secured.start_extra(
        "command-2",
        "command-svc",
        env={
            "VOTING_REQUIRE_DEADLINE": "true",
            "VOTING_RATE_VOTER_PER_S": "0.5",
            "VOTING_RATE_VOTER_BURST": "3",
        },
    )
    second = secured.stub_at(port, command_service_pb2_grpc.CommandServiceStub)
    metadata = secured.bearer(secured.token("speedy", "vote:*"))
    results = []
    refusals: list[Any] = []
    for i in range(6):  # alternate processes: the bucket is shared through Redis
        stub = second if i % 2 else secured.commands
        try:
            stub.CastVote(vote(poll, "speedy", request_id=f"s{i}"), timeout=10, metadata=metadata)
            results.append("ok")
            ACKED.append("speedy")
        except grpc.RpcError as exc:
            refusals.append(exc)
            results.append("limited")
    assert results == ["ok"] * 3 + ["limited"] * 3
    for refused in refusals:
        assert refused.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        rich = status.from_error(refused)
        assert rich is not None
        (retry,) = status.unpack(rich, error_details_pb2.RetryInfo)
        assert 0 < retry.retry_delay.ToMilliseconds() <= 2000
        (quota,) = status.unpack(rich, error_details_pb2.QuotaFailure)
        assert quota.violations[0].subject == "voter"


HOSTILE = st.fixed_dictionaries(
    {
        "poll_id": st.one_of(st.just("secure-poll"), st.text(max_size=80)),
        "voter": st.one_of(st.just("hy"), st.text(max_size=200)),
        "option": st.one_of(st.sampled_from(["a", "b", "zz"]), st.text(max_size=40)),
        "request_id": st.one_of(st.just(""), st.text(max_size=80)),
        "token": st.sampled_from(["own", "none", "other", "expired"]),
    }
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(case=HOSTILE)
def test_hostile_votes_get_a_clear_status_and_write_only_when_accepted(
    secured: Deployment, poll: str, case: dict[str, str]
) -> None:
    voter = case["voter"]
    tokens = {
        "own": secured.token(voter or "x", "vote:*"),
        "other": secured.token("somebody-else", "vote:*"),
        "expired": secured.token(voter or "x", "vote:*", ttl_s=1, now=time.time() - 600),
    }
    metadata = secured.bearer(tokens[case["token"]]) if case["token"] in tokens else None
    request = vote(case["poll_id"], voter, case["option"], case["request_id"])
    refused: Any = None
    try:
        secured.commands.CastVote(request, timeout=10, metadata=metadata)
    except grpc.RpcError as exc:
        refused = exc
    if refused is None:
        assert case["token"] == "own", "only a voter's own token may cast their vote"
        ACKED.append(voter)
        return
    assert refused.code() in {
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.UNAUTHENTICATED,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
    }, (refused.code(), refused.details())
    assert status.from_error(refused) is not None, "every refusal carries google.rpc details"


def test_undecodable_requests_are_invalid_argument(secured: Deployment) -> None:
    raw = secured.channel("command").unary_unary(
        "/voting.v1.CommandService/CastVote",
        request_serializer=lambda b: b,
        response_deserializer=lambda b: b,
    )
    # voter_id (field 3) holding bytes that are not UTF-8.
    code, rich = refusal(lambda: raw(b"\x12\x03abc\x1a\x03\xff\xfe\xfd", timeout=10))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert status.unpack(rich, error_details_pb2.BadRequest)


def test_only_acknowledged_votes_reached_the_stores(secured: Deployment, poll: str) -> None:
    """After everything above (refusals of every kind included): the log holds exactly the
    acknowledged votes, and DynamoDB exactly their voters."""
    assert len(secured.read_topic(secured.settings.topics.votes)) == len(ACKED)
    expected = {secured.voter_keys.key(v) for v in ACKED}
    wait_until(
        lambda: {i["voter_key"]["S"] for i in secured.ledger_items()} == expected,
        timeout_s=60,
        what="DynamoDB to hold exactly the acknowledged voters",
    )
