"""Redis loses the read model while nothing new arrives: the projector must notice by
itself and rebuild it from the log (and the recount from DynamoDB), not wait for the
next record to trip over the loss."""

from __future__ import annotations

import pytest

from tests.harness import Deployment, await_final, cast, results_of
from voting.v1 import command_service_pb2 as cmd

pytestmark = pytest.mark.slow


def test_a_read_model_lost_after_final_comes_back_final_with_no_new_record(
    running: Deployment,
) -> None:
    deployment = running
    poll_id = deployment.create_poll()
    acks = [
        cast(deployment.commands, poll_id, f"v{i}", "abc"[i % 3], request_id=f"r{i}")
        for i in range(30)
    ]
    deployment.commands.ClosePoll(
        cmd.ClosePollRequest(request_id="close", poll_id=poll_id), timeout=30
    )
    before = await_final(deployment, poll_id)

    deployment.redis.flushdb()  # Redis came back empty (no AOF, or a failover to a blank replica)

    after = await_final(deployment, poll_id, timeout_s=60)
    assert after.counts == before.counts
    assert after.total == 30
    token = acks[-1].consistency_token
    assert results_of(deployment, poll_id, consistency_token=token) is not None
