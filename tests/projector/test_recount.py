"""Close, drain and recount: FINAL results equal the ground truth, whatever happened live."""

from __future__ import annotations

import subprocess
import sys
import time
from collections import Counter

import pytest

from tests.harness import Deployment, VoteLoad, first_votes, wait_until
from voting import dynamodb
from voting.v1 import admin_service_pb2 as admin
from voting.v1 import command_service_pb2 as cmd
from voting.v1 import query_service_pb2 as q

pytestmark = pytest.mark.slow


def close(deployment: Deployment, poll_id: str) -> None:
    deployment.commands.ClosePoll(
        cmd.ClosePollRequest(request_id=f"close-{poll_id}", poll_id=poll_id), timeout=30
    )


def final_results(
    deployment: Deployment, poll_id: str, timeout_s: float = 120
) -> q.GetResultsResponse:
    reply: q.GetResultsResponse | None = None

    def final() -> bool:
        nonlocal reply
        reply = deployment.queries.GetResults(q.GetResultsRequest(poll_id=poll_id), timeout=10)
        return bool(reply.results.final)

    wait_until(final, timeout_s=timeout_s, interval_s=0.5, what="FINAL results")
    assert reply is not None
    return reply


def test_final_results_equal_the_ground_truth_after_worker_and_projector_crashes(
    running: Deployment,
) -> None:
    poll_id = running.create_poll()
    load = VoteLoad(running, poll_id, batch=40, pause_s=0.1).start()
    for name in ("worker", "projector", "worker", "projector"):
        running.wait_until_working(name)
        time.sleep(1.5)
        running.kill(name)
        running.restart(name)
    acks = load.stop()
    close(running, poll_id)
    truth = Counter(a.option_id for a in first_votes(acks).values())
    results = final_results(running, poll_id).results
    assert {c.option_id: c.votes for c in results.counts} == {o: truth[o] for o in ("a", "b", "c")}
    assert results.total == len(first_votes(acks))
    assert results.recount.matched


def test_a_corrupted_counter_is_detected_and_repaired_and_a_second_recount_changes_nothing(
    running: Deployment,
) -> None:
    poll_id = running.create_poll()
    load = VoteLoad(running, poll_id, batch=30, pause_s=0.1).start()
    time.sleep(3)
    acks = load.stop()
    truth = Counter(a.option_id for a in first_votes(acks).values())
    wait_until(
        lambda: Counter(running.redis_counts(poll_id)) == truth, timeout_s=60, what="live counts"
    )
    running.redis.hincrby(running.keys.counts(poll_id), "b", 7)  # corrupt the live count
    close(running, poll_id)
    results = final_results(running, poll_id).results
    assert {c.option_id: c.votes for c in results.counts} == {o: truth[o] for o in ("a", "b", "c")}
    assert not results.recount.matched
    live = {c.option_id: c.votes for c in results.recount.live_counts}
    assert live["b"] == truth["b"] + 7
    assert running.log_count("projector", "recount differs from the live count") >= 1

    again = subprocess.run(
        [sys.executable, "-m", "voting", "recount", poll_id],
        env={**running.stack.env(), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert again.returncode == 0, again.stderr
    assert "already final" in again.stdout
    assert f"{truth['b']:>12}" in again.stdout
    after = running.queries.GetResults(q.GetResultsRequest(poll_id=poll_id), timeout=10).results
    assert after == results

    # RecountPoll answers the FINAL results as GetResults serves them, so a client that
    # keeps only increasing versions keeps this one too.
    recounted = running.admin.RecountPoll(
        admin.RecountPollRequest(poll_id=poll_id), timeout=60, metadata=running.admin_metadata()
    ).results
    assert recounted == results
    assert recounted.version > 0
    assert recounted.updated_at.ToMilliseconds() > 0
    assert recounted.recount.recounted_at.ToMilliseconds() > 0
    assert recounted.watermark


def test_the_sweep_recounts_a_closed_poll_whose_final_tally_is_missing(
    running: Deployment,
) -> None:
    poll_id = running.create_poll()
    load = VoteLoad(running, poll_id, batch=20, pause_s=0.1).start()
    time.sleep(2)
    acks = load.stop()
    truth = Counter(a.option_id for a in first_votes(acks).values())
    wait_until(
        lambda: Counter(running.redis_counts(poll_id)) == truth, timeout_s=60, what="live counts"
    )
    close(running, poll_id)
    final_results(running, poll_id)
    # As if the recount's row were lost (e.g. a restore from an older backup).
    ddb = dynamodb.sync_client(running.settings.dynamodb)
    ddb.delete_item(
        TableName=running.settings.dynamodb.results_table, Key={"poll_id": {"S": poll_id}}
    )

    swept = subprocess.run(
        [sys.executable, "-m", "voting", "recount", "--sweep", "--wait", "30"],
        env={**running.stack.env(), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert f"{poll_id}: final, {sum(truth.values())} votes, matched" in swept.stdout, swept
    row = ddb.get_item(
        TableName=running.settings.dynamodb.results_table,
        Key={"poll_id": {"S": poll_id}},
        ConsistentRead=True,
    )["Item"]
    assert row["status"]["S"] == "FINAL"
    assert {o: int(v["N"]) for o, v in row["counts"]["M"].items()} == {
        o: truth[o] for o in ("a", "b", "c")
    }
