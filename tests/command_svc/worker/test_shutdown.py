"""A worker stopped by SIGTERM under load finishes its batch, commits or aborts, leaves
its group (its partitions move to the survivor), and exits 0; nothing is lost or doubled."""

from __future__ import annotations

import time

import pytest

from tests.command_svc.worker.invariants import assert_exactly_once
from tests.harness import Deployment, VoteLoad, wait_until

pytestmark = pytest.mark.slow


def test_sigterm_hands_the_partitions_over_and_loses_and_doubles_nothing(
    deployment: Deployment,
) -> None:
    deployment.start("command", "worker")
    deployment.start_extra_worker("worker-2")
    poll_id = deployment.create_poll()
    load = VoteLoad(deployment, poll_id, batch=40, pause_s=0.05).start()
    deployment.wait_until_working("worker-2")
    time.sleep(3.0)
    assigned_before = deployment.log_count("worker", '"assigned"')

    code = deployment.stack.children["worker-2"].terminate(
        grace_s=deployment.settings.server.grace_s + 20
    )
    assert code == 0
    assert deployment.log_count("worker-2", '"revoked"') >= 1
    wait_until(
        lambda: deployment.log_count("worker", '"assigned"') > assigned_before,
        timeout_s=30,
        what="the survivor to take the partitions over",
    )
    time.sleep(3.0)
    acks = load.stop()
    assert load.failures == 0, load.errors
    assert_exactly_once(deployment, acks)
