"""voting projection rebuild: a new read model from the log, swapped in with no downtime."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections import Counter

import grpc
import pytest

from tests.harness import Deployment, VoteLoad, first_votes, wait_until
from voting.readmodel import DEFAULT_NAMESPACE
from voting.v1 import command_service_pb2 as cmd
from voting.v1 import query_service_pb2 as q

pytestmark = pytest.mark.slow


def results(deployment: Deployment, poll_id: str) -> q.GetResultsResponse:
    reply: q.GetResultsResponse = deployment.queries.GetResults(
        q.GetResultsRequest(poll_id=poll_id), timeout=10
    )
    return reply


def is_final(deployment: Deployment, poll_id: str) -> bool:
    try:
        return bool(results(deployment, poll_id).results.final)
    except grpc.RpcError:
        return False  # not in the read model yet


def test_a_rebuild_yields_the_live_counts_while_a_watcher_stays_connected(
    running: Deployment,
) -> None:
    closed_poll = running.create_poll()
    early = VoteLoad(running, closed_poll, batch=30)
    for _ in range(5):
        early.send_batch()
    running.commands.ClosePoll(
        cmd.ClosePollRequest(request_id="c", poll_id=closed_poll), timeout=30
    )
    wait_until(lambda: is_final(running, closed_poll), timeout_s=60, what="FINAL")
    final_before = results(running, closed_poll).results

    open_poll = running.create_poll()
    wait_until(
        lambda: running.redis.exists(running.keys.poll(open_poll)), timeout_s=30, what="the poll"
    )
    seen: list[tuple[int, int]] = []
    errors: list[BaseException] = []
    stream = running.queries.WatchResults(q.WatchResultsRequest(poll_id=open_poll), timeout=120)

    def watch() -> None:
        try:
            for message in stream:
                seen.append((message.results.version, message.results.total))
        except grpc.RpcError as exc:
            if exc.code() != grpc.StatusCode.CANCELLED:
                errors.append(exc)

    watcher = threading.Thread(target=watch)
    watcher.start()
    load = VoteLoad(running, open_poll, batch=30, pause_s=0.1).start()
    time.sleep(3)
    rebuilt = subprocess.run(
        [sys.executable, "-m", "voting", "projection", "rebuild"],
        env={**running.stack.env(), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert "readers switched from rm" in rebuilt.stdout
    time.sleep(3)
    acks = load.stop()

    assert running.namespace() != DEFAULT_NAMESPACE
    assert running.log_count("projector", "read model switched; following it") == 1
    truth = Counter(a.option_id for a in first_votes(acks).values())
    wait_until(
        lambda: (
            {c.option_id: c.votes for c in results(running, open_poll).results.counts}
            == {o: truth[o] for o in ("a", "b", "c")}
        ),
        timeout_s=60,
        what="the rebuilt counts to equal what was sent",
    )
    wait_until(
        lambda: bool(seen) and seen[-1][1] == sum(truth.values()),
        timeout_s=30,
        what="the watcher to catch up",
    )
    stream.cancel()
    watcher.join(10)
    assert not errors, errors
    versions = [v for v, _ in seen]
    assert versions == sorted(set(versions)), "versions must only grow, across the switch too"

    final_after = results(running, closed_poll).results
    assert final_after.final
    assert list(final_after.counts) == list(final_before.counts)
    assert final_after.recount.matched
