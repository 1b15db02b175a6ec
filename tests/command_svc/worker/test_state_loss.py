"""The worker's state lost while DynamoDB, the source of truth, is kept (a lost or
truncated changelog, or a broker that lost its log): the table wins, and a stored vote
never changes."""

from __future__ import annotations

import pytest
from confluent_kafka.admin import NewTopic  # type: ignore[attr-defined]

from tests.harness import Deployment, await_final, cast, results_of, wait_until
from voting.v1 import command_service_pb2 as cmd
from voting.v1 import command_service_pb2_grpc, events_pb2

pytestmark = pytest.mark.slow


def test_a_retry_with_another_option_after_the_state_was_lost_changes_nothing(
    running: Deployment,
) -> None:
    deployment = running
    poll_id = deployment.create_poll()
    first = cast(deployment.commands, poll_id, "ada", "a", request_id="ada-1")
    wait_until(
        lambda: (
            getattr(
                results_of(deployment, poll_id, consistency_token=first.consistency_token),
                "total",
                0,
            )
            == 1
        ),
        timeout_s=60,
        what="the first vote to be counted",
    )

    # The worker starts again on an empty changelog: it remembers nobody.
    topics = deployment.settings.topics
    lost = f"{topics.dedup_changelog}-lost"
    admin = deployment.kafka.admin()  # must outlive its futures
    created = admin.create_topics(
        [NewTopic(lost, num_partitions=topics.partitions, replication_factor=1)]
    )
    for future in created.values():
        future.result()
    deployment.restart("worker", env={"VOTING_TOPIC_DEDUP_CHANGELOG": lost})
    # The retry lands on a command process that never saw the request, and the shared
    # memory of request ids is gone too: nothing stops it before the worker.
    other = deployment.stub_at(
        deployment.start_extra("command-2", "command-svc"),
        command_service_pb2_grpc.CommandServiceStub,
    )
    for key in deployment.redis.scan_iter("idem:*"):
        deployment.redis.delete(key)
    retry = cast(other, poll_id, "ada", "b", request_id="ada-1")
    assert retry.vote_id == first.vote_id

    def decided_twice() -> bool:
        decisions = [
            e
            for r in deployment.read_topic(topics.vote_results)
            if isinstance(e := r.event(), events_pb2.VoteAccepted | events_pb2.VoteRejected)
            and e.vote_id == first.vote_id
        ]
        return len(decisions) >= 2

    wait_until(decided_twice, timeout_s=60, what="a decision for the retry")
    items = deployment.ledger_items()
    assert [(i["vote_id"]["S"], i["option_id"]["S"]) for i in items] == [(first.vote_id, "a")]

    deployment.commands.ClosePoll(
        cmd.ClosePollRequest(request_id="close", poll_id=poll_id), timeout=30
    )
    results = await_final(deployment, poll_id)
    assert {c.option_id: c.votes for c in results.counts} == {"a": 1, "b": 0, "c": 0}
    live = {c.option_id: c.votes for c in results.recount.live_counts}
    assert live == {"a": 1, "b": 0, "c": 0}, "the live count went up twice"
