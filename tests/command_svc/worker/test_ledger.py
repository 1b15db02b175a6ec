"""DynamoDB is the source of truth: if it already holds a vote the worker's state does not
know (state lost), the stored vote wins, in either write mode."""

from __future__ import annotations

import uuid

import pytest

from tests.harness import Deployment, wait_until
from voting import dynamodb
from voting.dynamodb import ledger_shard, vote_pk
from voting.v1 import command_service_pb2 as cmd
from voting.v1 import events_pb2

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("mode", ["transact", "put"])
def test_a_vote_already_in_dynamodb_wins_over_the_worker_state(
    deployment: Deployment, mode: str
) -> None:
    deployment.start("command", "worker", env={"VOTING_LEDGER_WRITES": mode})
    poll_id = deployment.create_poll()
    client = dynamodb.sync_client(deployment.settings.dynamodb)
    shards = deployment.settings.dynamodb.ledger_shards
    planted: dict[str, str] = {}
    for voter in ("mallory", "trent"):
        key = deployment.voter_keys.key(voter)
        planted[voter] = str(uuid.uuid4())
        client.put_item(
            TableName=deployment.settings.dynamodb.votes_table,
            Item={
                "pk": {"S": vote_pk(poll_id, ledger_shard(key, shards))},
                "voter_key": {"S": key},
                "poll_id": {"S": poll_id},
                "vote_id": {"S": planted[voter]},
                "option_id": {"S": "c"},
            },
        )
    voters = ["alice", "mallory", "bob", "trent", "carol"]
    reply = deployment.commands.CastVotes(
        cmd.CastVotesRequest(
            requests=[
                cmd.CastVoteRequest(poll_id=poll_id, voter_id=v, option_id="a") for v in voters
            ]
        ),
        timeout=10,
    )
    vote_ids = {v: r.response.vote_id for v, r in zip(voters, reply.results, strict=True)}

    decided: dict[str, events_pb2.VoteAccepted | events_pb2.VoteRejected] = {}

    def all_decided() -> bool:
        for record in deployment.read_topic(deployment.settings.topics.vote_results):
            event = record.event()
            if isinstance(event, events_pb2.VoteAccepted | events_pb2.VoteRejected):
                decided[event.vote_id] = event
        return set(vote_ids.values()) <= decided.keys()

    wait_until(all_decided, timeout_s=60, what="decisions")
    for voter in ("alice", "bob", "carol"):
        assert isinstance(decided[vote_ids[voter]], events_pb2.VoteAccepted)
    for voter in ("mallory", "trent"):
        rejected = decided[vote_ids[voter]]
        assert isinstance(rejected, events_pb2.VoteRejected)
        assert rejected.accepted_vote_id == planted[voter]
    stored = {i["voter_key"]["S"]: i["vote_id"]["S"] for i in deployment.ledger_items()}
    for voter in ("mallory", "trent"):
        assert stored[deployment.voter_keys.key(voter)] == planted[voter]
    assert len(stored) == 5
