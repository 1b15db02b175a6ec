"""SIGTERM with followers connected: every WatchResults stream ends at once with
UNAVAILABLE and a retry hint (clients reconnect to another replica with after_version),
rather than holding the process for its whole grace period; the process exits 0."""

from __future__ import annotations

import time

import grpc
import pytest
from google.rpc import error_details_pb2

from tests.harness import Deployment, wait_until
from voting import status
from voting.v1 import query_service_pb2 as q

pytestmark = pytest.mark.slow


def test_sigterm_ends_every_watch_stream_at_once_with_unavailable(running: Deployment) -> None:
    poll_id = running.create_poll()
    wait_until(
        lambda: running.redis.exists(running.keys.poll(poll_id)), timeout_s=30, what="the poll"
    )
    streams = [
        running.queries.WatchResults(q.WatchResultsRequest(poll_id=poll_id), timeout=120)
        for _ in range(20)
    ]
    for stream in streams:
        assert next(stream).results.poll_id == poll_id

    started = time.monotonic()
    code = running.stack.children["query"].terminate(grace_s=60)
    took_s = time.monotonic() - started

    assert code == 0
    assert took_s < running.settings.server.grace_s, "streams held the stop for the full grace"
    for stream in streams:
        with pytest.raises(grpc.RpcError) as ended:
            next(stream)
        assert ended.value.code() == grpc.StatusCode.UNAVAILABLE
        rich = status.from_error(ended.value)
        assert rich is not None
        (retry,) = status.unpack(rich, error_details_pb2.RetryInfo)
        assert retry.retry_delay.ToMilliseconds() <= 10  # reconnect at once
