"""The dedup changelog stays as large as what is live: closed polls' voters are
tombstoned, and a partition is restored from its latest checkpoint, not from the start."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.harness import Deployment, await_final, cast, results_of, wait_until
from voting.v1 import command_service_pb2 as cmd
from voting.v1 import query_service_pb2 as q
from voting.v1 import vote_pb2

pytestmark = pytest.mark.slow

SEP = "\x1f"


def _vote_many(deployment: Deployment, poll_id: str, voters: int, prefix: str) -> None:
    requests = [
        cmd.CastVoteRequest(
            request_id=f"{prefix}-{i}", poll_id=poll_id, voter_id=f"{prefix}-{i}", option_id="a"
        )
        for i in range(voters)
    ]
    reply = deployment.commands.CastVotes(cmd.CastVotesRequest(requests=requests), timeout=30)
    assert all(r.status.code == 0 for r in reply.results)


def _close_and_await_final(deployment: Deployment, poll_id: str) -> None:
    deployment.commands.ClosePoll(
        cmd.ClosePollRequest(request_id=f"close-{poll_id}", poll_id=poll_id), timeout=30
    )
    await_final(deployment, poll_id)


def _opened(deployment: Deployment) -> list[dict[str, Any]]:
    """The "partition opened" log records of the worker's current incarnation."""
    text = (deployment.stack.log_dir / "worker.log").read_text(errors="replace")
    current = text[text.rfind("start worker\n") :]
    found = []
    for line in current.splitlines():
        if '"partition opened"' in line:
            found.append(json.loads(line))
    return found


def test_closing_a_poll_tombstones_its_voters_and_restores_read_only_what_is_live(
    deployment: Deployment,
) -> None:
    deployment.start(env={"VOTING_WORKER_CHANGELOG_REWRITE_MIN": "50"})
    closed = deployment.create_poll()
    _vote_many(deployment, closed, 200, "old")
    _close_and_await_final(deployment, closed)

    changelog = deployment.settings.topics.dedup_changelog
    records = deployment.read_topic(changelog)
    voters = {r.key for r in records if r.key and r.key.decode().startswith(closed + SEP)}
    tombstoned = {r.key for r in records if r.value is None}
    assert len(voters) == 200
    assert voters <= tombstoned, f"{len(voters - tombstoned)} voters of the closed poll stay"

    live = deployment.create_poll()
    _vote_many(deployment, live, 40, "new")
    ack = cast(deployment.commands, live, "last", request_id="last")
    wait_until(
        lambda: (
            getattr(
                results_of(deployment, live, consistency_token=ack.consistency_token), "total", 0
            )
            == 41
        ),
        timeout_s=60,
        what="the live poll's votes to be counted",
    )
    total = len(deployment.read_topic(changelog))
    deployment.restart("worker")
    deployment.wait_until_working("worker")
    wait_until(
        lambda: len(_opened(deployment)) == deployment.settings.topics.partitions,
        timeout_s=60,
        what="every partition to be restored",
    )
    opened = _opened(deployment)
    read = sum(int(o["read"]) for o in opened)
    assert sum(int(o["voters"]) for o in opened) == 41
    assert read < total / 4, f"restore read {read} of {total} changelog records"

    # The restored state still knows who voted.
    again = cast(deployment.commands, live, "new-0", request_id="again")
    found = deployment.queries.GetVoteStatus(
        q.GetVoteStatusRequest(
            poll_id=live, vote_id=again.vote_id, consistency_token=again.consistency_token
        ),
        timeout=30,
    )
    assert (found.state, found.reason) == (
        vote_pb2.VOTE_STATE_REJECTED,
        vote_pb2.REJECT_REASON_DUPLICATE,
    )
