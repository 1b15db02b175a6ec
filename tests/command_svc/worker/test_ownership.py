"""Workers that stall: past max.poll.interval in the middle of a batch (a DynamoDB write in
backoff, a GC pause) and while restoring a partition. A stalled worker comes back as a
zombie; it must give up what it lost, take back what it gets again, and never block a
partition for good."""

from __future__ import annotations

import time

import pytest

from tests.command_svc.worker.invariants import assert_exactly_once
from tests.harness import Deployment, VoteLoad

pytestmark = pytest.mark.slow


def test_a_worker_that_stalled_through_a_takeover_works_the_partitions_it_gets_back(
    deployment: Deployment,
) -> None:
    """Worker 1 stalls 14 s after writing DynamoDB (max.poll.interval is 10 s): worker 2
    takes every partition and fences it; worker 1 wakes, its commit is refused, it rejoins.
    Then worker 2 leaves, so worker 1 owns every partition again, including those it lost
    (bug: it had paused them for good)."""
    deployment.start("command")
    deployment.start("worker", env={"VOTING_FAULTS": "worker.after-ledger=stall:14:1:1"})
    deployment.start_extra_worker("worker-2")
    poll_id = deployment.create_poll()
    load = VoteLoad(deployment, poll_id, batch=40, pause_s=0.1).start()
    deployment.wait_for_log("worker", "stalling", more_than=0)
    time.sleep(22)  # the stall, the takeover and worker 1's rejoin
    deployment.stack.stop_services(["worker-2"])
    time.sleep(3)
    acks = load.stop()
    assert load.failures == 0, load.errors
    assert_exactly_once(deployment, acks, timeout_s=60)


def test_restores_longer_than_max_poll_interval_do_not_evict_workers_from_their_group(
    deployment: Deployment,
) -> None:
    """Every restore takes 20 s (as a large changelog would); max.poll.interval (the
    rebalance timeout) is 10 s, and a second worker joins while the first restores. The
    workers must stay in their group while they restore (bug: each restored inside its
    assignment callback, so the other's join evicted it, and round it went)."""
    slow = {"VOTING_FAULTS": "worker.restore=stall:20"}
    deployment.start("command")
    deployment.start("worker", env=slow)
    time.sleep(3)
    deployment.start_extra("worker-2", "worker", env=slow)
    poll_id = deployment.create_poll()
    load = VoteLoad(deployment, poll_id, batch=40, pause_s=0.1).start()
    time.sleep(8)
    acks = load.stop()
    assert load.failures == 0, load.errors
    assert_exactly_once(deployment, acks, timeout_s=90)
