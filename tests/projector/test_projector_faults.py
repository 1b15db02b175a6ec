"""The projector under kill -9, replays and a Redis restart: counts stay exact."""

from __future__ import annotations

import random
import time
from collections import Counter

import grpc
import pytest

from devkit.stack.stack import Stack
from tests.harness import Ack, Deployment, VoteLoad, first_votes, wait_until
from voting.v1 import query_service_pb2 as q

pytestmark = pytest.mark.slow


def expected_counts(acks: list[Ack]) -> Counter[str]:
    return Counter(a.option_id for a in first_votes(acks).values())


def assert_counts_exact(
    deployment: Deployment, poll_id: str, acks: list[Ack], timeout_s: float = 120
) -> None:
    expected = expected_counts(acks)
    wait_until(
        lambda: Counter(deployment.redis_counts(poll_id)) == expected,
        timeout_s=timeout_s,
        interval_s=0.5,
        what=f"Redis counts {dict(expected)}",
    )
    time.sleep(2.0)  # nothing more may arrive: a replay would show up as an over-count
    assert Counter(deployment.redis_counts(poll_id)) == expected


def test_projector_killed_five_times_under_load_counts_exactly(running: Deployment) -> None:
    poll_id = running.create_poll()
    load = VoteLoad(running, poll_id, batch=40, pause_s=0.1).start()
    rng = random.Random(4)
    for _ in range(5):
        running.wait_until_working("projector")
        time.sleep(rng.uniform(0.3, 2.0))
        running.kill("projector")
        running.restart("projector")
    acks = load.stop()
    assert load.failures == 0, load.errors
    assert_counts_exact(running, poll_id, acks)


def test_crashes_between_counts_and_positions_never_count_twice(deployment: Deployment) -> None:
    deployment.start("command", "worker", "query")
    deployment.start("projector", env={"VOTING_FAULTS": "projector.after-counts=0.2"})
    poll_id = deployment.create_poll()
    load = VoteLoad(deployment, poll_id, batch=40, pause_s=0.1).start()
    crashes = 0
    deadline = time.monotonic() + 90
    while crashes < 5 and time.monotonic() < deadline:
        time.sleep(0.2)
        if not deployment.alive("projector"):
            crashes += 1
            deployment.restart("projector")
    deployment.restart("projector", env={"VOTING_FAULTS": ""})
    acks = load.stop()
    assert crashes >= 5
    assert_counts_exact(deployment, poll_id, acks)


def test_sigterm_under_load_exits_cleanly_and_the_restart_counts_exactly(
    running: Deployment,
) -> None:
    poll_id = running.create_poll()
    load = VoteLoad(running, poll_id, batch=40, pause_s=0.05).start()
    running.wait_until_working("projector")
    time.sleep(3.0)
    code = running.stack.children["projector"].terminate(grace_s=running.settings.server.grace_s)
    assert code == 0
    time.sleep(2.0)  # votes go on while no projector runs
    running.restart("projector")
    time.sleep(2.0)
    acks = load.stop()
    assert load.failures == 0, load.errors
    assert_counts_exact(running, poll_id, acks)


def test_replaying_vote_results_from_the_beginning_changes_nothing(running: Deployment) -> None:
    poll_id = running.create_poll()
    load = VoteLoad(running, poll_id, batch=50, pause_s=0.1).start()
    time.sleep(5)
    acks = load.stop()
    assert_counts_exact(running, poll_id, acks)
    running.stack.children["projector"].terminate()
    for key in running.redis.scan_iter(running.keys.positions("*")):
        running.redis.delete(key)  # the projector forgets where it was: it re-reads everything
    running.restart("projector")
    running.wait_for_log("projector", "positions restored", more_than=0)
    time.sleep(5)
    assert Counter(running.redis_counts(poll_id)) == expected_counts(acks)


@pytest.mark.local_infra
def test_redis_killed_and_restarted_writes_go_on_and_counts_end_exact(
    infra: Stack, running: Deployment
) -> None:
    poll_id = running.create_poll()
    load = VoteLoad(running, poll_id, batch=40, pause_s=0.1).start()
    time.sleep(3)
    infra.kill("redis")
    acked_before = len(load.acks)
    with pytest.raises(grpc.RpcError) as down:
        running.queries.GetResults(q.GetResultsRequest(poll_id=poll_id), timeout=5)
    assert down.value.code() == grpc.StatusCode.UNAVAILABLE
    time.sleep(4)
    assert len(load.acks) > acked_before + 100, "writes stopped while Redis was down"
    assert load.failures == 0, load.errors
    infra.restart("redis")  # an empty Redis: the read model is rebuilt from the log
    time.sleep(3)
    acks = load.stop()
    assert_counts_exact(running, poll_id, acks)
    reply = running.queries.GetResults(q.GetResultsRequest(poll_id=poll_id), timeout=10)
    assert reply.results.total == sum(expected_counts(acks).values())
