"""Records the worker cannot read go to the dead-letter topic with the reason, and never
block their partition."""

from __future__ import annotations

import pytest

from tests.harness import Deployment, wait_until
from voting import events
from voting.v1 import command_service_pb2 as cmd
from voting.v1 import events_pb2, poll_pb2

pytestmark = pytest.mark.slow

JUNK: list[tuple[str, bytes, events.Headers]] = [
    ("garbage bytes", b"\xff\x00not protobuf", events.headers_for(events_pb2.VoteCast)),
    ("unknown type", b"", [("event-type", b"voting.v1.Nonsense"), ("schema-version", b"1")]),
    ("no headers", b"hello", []),
    ("future schema", b"", [("event-type", b"voting.v1.VoteCast"), ("schema-version", b"9")]),
    (
        "wrong topic",
        events.encode(events_pb2.PollCreated(poll=poll_pb2.Poll(poll_id="x")))[0],
        events.headers_for(events_pb2.PollCreated),
    ),
]


def test_undecodable_records_are_dead_lettered_and_the_partition_moves_on(
    deployment: Deployment,
) -> None:
    deployment.start("command", "worker")
    poll_id = deployment.create_poll()
    topics = deployment.settings.topics
    producer = deployment.kafka.producer(client_id="junk")
    for partition in range(topics.partitions):
        for _, value, headers in JUNK:
            producer.produce(topics.votes, value, b"junk", headers=headers, partition=partition)
    producer.flush(10)
    reply = deployment.commands.CastVote(
        cmd.CastVoteRequest(poll_id=poll_id, voter_id="after-the-junk", option_id="a"), timeout=10
    )
    wait_until(
        lambda: reply.vote_id in deployment.decisions(),
        timeout_s=60,
        what="the vote after the junk",
    )
    dead = deployment.read_topic(topics.dead_letters)
    assert len(dead) == len(JUNK) * topics.partitions
    reasons = [dict(r.headers)["dlq-reason"].decode() for r in dead]
    assert any("unknown event type" in r for r in reasons)
    assert any("schema version" in r for r in reasons)
    assert any("unexpected PollCreated" in r for r in reasons)
    sources = {dict(r.headers)["dlq-source"].decode().rsplit("/", 2)[1] for r in dead}
    assert sources == {str(p) for p in range(topics.partitions)}
