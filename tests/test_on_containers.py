"""A smoke run of the whole pipeline on Kafka, DynamoDB Local and Redis container images.

Runs where a Docker engine answers and skips cleanly where none does (our machines).
The full suite runs on containers with ``VOTING_TEST_INFRA=containers``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from devkit.stack.stack import Stack
from tests.containers import container_infra, docker_answers
from tests.harness import Deployment, VoteLoad, first_votes, wait_until
from voting.v1 import command_service_pb2 as cmd
from voting.v1 import query_service_pb2 as q

pytestmark = [
    pytest.mark.containers,
    pytest.mark.skipif(not docker_answers(), reason="no Docker engine answers"),
]


@pytest.fixture(scope="module")
def containers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with container_infra(tmp_path_factory.mktemp("containers")) as stack:
        yield stack


def test_votes_flow_to_final_results_across_a_worker_crash(
    containers: Stack, tmp_path: Path
) -> None:
    d = Deployment(containers, tmp_path, broker_shows_aborted_records=False)
    try:
        d.start()
        poll_id = d.create_poll()
        load = VoteLoad(d, poll_id, batch=40, pause_s=0.1).start()
        d.wait_until_working("worker")
        d.kill("worker")
        d.restart("worker")
        acks = load.stop()
        d.commands.ClosePoll(cmd.ClosePollRequest(request_id="close", poll_id=poll_id), timeout=30)
        truth = Counter(a.option_id for a in first_votes(acks).values())

        def final() -> bool:
            results = d.queries.GetResults(q.GetResultsRequest(poll_id=poll_id), timeout=10).results
            return results.final and {c.option_id: c.votes for c in results.counts} == {
                o: truth[o] for o in ("a", "b", "c")
            }

        wait_until(
            final, timeout_s=180, interval_s=1.0, what="FINAL results equal to what was sent"
        )
    finally:
        d.stop()
