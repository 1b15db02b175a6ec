"""The dedup worker under kill -9: nothing lost, nothing counted twice, against real
Kafka (Tansu), DynamoDB Local and Redis processes."""

from __future__ import annotations

import random
import time

import pytest

from tests.command_svc.worker.invariants import assert_exactly_once
from tests.harness import Deployment, VoteLoad

pytestmark = pytest.mark.slow


def test_worker_killed_five_times_under_load_loses_and_doubles_nothing(
    deployment: Deployment,
) -> None:
    deployment.start("command", "worker")
    poll_id = deployment.create_poll()
    load = VoteLoad(deployment, poll_id, batch=40, pause_s=0.1).start()
    rng = random.Random(20261122)
    for _ in range(5):
        # Kill at a random point while the worker owns its partitions and has a backlog.
        deployment.wait_until_working("worker")
        time.sleep(rng.uniform(0.3, 2.5))
        deployment.kill("worker")
        deployment.restart("worker")
    acks = load.stop()
    assert load.failures == 0, load.errors
    stats = assert_exactly_once(deployment, acks)
    assert stats["voters"] < stats["acknowledged"], "the load must include repeat voters"


def test_survivor_takes_over_when_one_of_two_workers_dies_for_good(deployment: Deployment) -> None:
    deployment.start("command", "worker")
    deployment.start_extra_worker("worker-2")
    poll_id = deployment.create_poll()
    load = VoteLoad(deployment, poll_id, batch=40, pause_s=0.1).start()
    time.sleep(4.0)
    deployment.kill("worker-2")
    time.sleep(12.0)  # past the session timeout: the survivor must own every partition
    acks = load.stop()
    assert load.failures == 0, load.errors
    assert_exactly_once(deployment, acks)


def test_crashes_between_produce_and_commit_leave_aborted_records_that_change_nothing(
    deployment: Deployment,
) -> None:
    """The worker dies (as if by kill -9) after its transaction's records were produced and
    before it committed. On the local broker those records stay visible to read_committed
    readers; the restored state and every downstream reader must ignore them."""
    deployment.start("command")
    deployment.start("worker", env={"VOTING_FAULTS": "worker.before-commit=0.15"})
    poll_id = deployment.create_poll()
    load = VoteLoad(deployment, poll_id, batch=40, pause_s=0.1).start()
    crashes = 0
    deadline = time.monotonic() + 120
    while crashes < 6 and time.monotonic() < deadline:
        time.sleep(0.2)
        if not deployment.alive("worker"):
            crashes += 1
            deployment.restart("worker")
    deployment.restart("worker", env={"VOTING_FAULTS": ""})
    acks = load.stop()
    assert crashes >= 6, f"only {crashes} injected crashes in 120s"
    stats = assert_exactly_once(deployment, acks)
    if deployment.broker_shows_aborted_records:
        assert stats["decision_records"] > stats["acknowledged"], "no aborted record was visible"
