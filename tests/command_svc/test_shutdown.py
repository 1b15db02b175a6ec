"""SIGTERM under load: calls in flight finish, the process exits 0 within its grace, and
every acknowledged vote is counted exactly once. Calls that fail are refused whole, never
cut off mid-way: UNAVAILABLE once the port is closed, or CANCELLED for a call gRPC had
received but not yet handed to the service when the stop began; either way none of its
votes was appended, so a retry is safe."""

from __future__ import annotations

import threading
import time
import uuid

import grpc
import pytest

from tests.command_svc.worker.invariants import assert_exactly_once
from tests.harness import Ack, Deployment, wait_until
from voting.tls import sync_channel
from voting.v1 import command_service_pb2 as cmd
from voting.v1 import command_service_pb2_grpc, events_pb2

pytestmark = pytest.mark.slow

CASTERS = 6


def test_sigterm_lets_calls_in_flight_finish_and_loses_no_acknowledged_vote(
    running: Deployment,
) -> None:
    poll_id = running.create_poll()
    target = f"127.0.0.1:{running.stack.options.command_port}"
    acks: list[Ack] = []
    calls: list[tuple[float, float, grpc.StatusCode]] = []  # started, ended, code
    refused: set[str] = set()  # request ids of the votes in failed calls
    stop = threading.Event()

    def cast(caster: int) -> None:
        with sync_channel(target, running.settings.tls) as channel:
            stub = command_service_pb2_grpc.CommandServiceStub(channel)
            batch = 0
            while not stop.is_set():
                requests = [
                    cmd.CastVoteRequest(
                        request_id=uuid.uuid4().hex,
                        poll_id=poll_id,
                        voter_id=f"voter-{caster}-{batch}-{i}",
                        option_id="abc"[i % 3],
                    )
                    for i in range(40)
                ]
                batch += 1
                started = time.monotonic()
                try:
                    reply = stub.CastVotes(cmd.CastVotesRequest(requests=requests), timeout=20)
                except grpc.RpcError as exc:
                    calls.append((started, time.monotonic(), exc.code()))
                    refused.update(r.request_id for r in requests)
                    time.sleep(0.05)
                    continue
                calls.append((started, time.monotonic(), grpc.StatusCode.OK))
                for request, result in zip(requests, reply.results, strict=True):
                    assert result.status.code == 0, result.status
                    position = result.response.consistency_token.position
                    acks.append(
                        Ack(
                            result.response.vote_id,
                            poll_id,
                            request.voter_id,
                            request.option_id,
                            position.partition,
                            position.offset,
                        )
                    )

    threads = [threading.Thread(target=cast, args=(n,), daemon=True) for n in range(CASTERS)]
    for thread in threads:
        thread.start()
    wait_until(lambda: len(acks) > 2000, timeout_s=60, what="votes flowing")

    signalled = time.monotonic()
    code = running.stack.children["command"].terminate(grace_s=running.settings.server.grace_s + 5)
    time.sleep(0.5)
    stop.set()
    for thread in threads:
        thread.join(30)

    assert code == 0
    codes = {c for _, _, c in calls}
    assert codes <= {
        grpc.StatusCode.OK,
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.CANCELLED,
    }, codes
    straddling = [c for started, ended, c in calls if started < signalled < ended]
    assert grpc.StatusCode.OK in straddling, "no call in flight at SIGTERM finished"
    assert grpc.StatusCode.UNAVAILABLE in codes, "no call was made after the stop"

    appended = {
        event.request_id
        for record in running.read_topic(running.settings.topics.votes)
        if isinstance(event := record.event(), events_pb2.VoteCast)
    }
    assert not refused & appended, "a refused call appended votes"
    running.restart("command")
    assert_exactly_once(running, acks)
