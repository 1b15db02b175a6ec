"""Read-side authorization: private results need a scoped token; a bad token is never
read as anonymous; visibility comes from the polls table, not the read model."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2

from devkit.stack.stack import Stack
from tests.harness import Deployment, wait_until
from voting import status
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
