"""Calls cut short at the transport: a request message whose length prefix promises more
bytes than the stream carries is answered at once (END_STREAM) or after the server's
read timeout (no END_STREAM), and holds nothing afterwards. Spoken in raw HTTP/2, since
no gRPC client sends such frames."""

from __future__ import annotations

import asyncio
import socket
import struct
import time
from dataclasses import dataclass, field

import h2.config
import h2.connection
import h2.events
import pytest

from devkit.stack.components import free_port
from tests.harness import Deployment
from voting.config import ServerSettings
from voting.server import GrpcServer

HEALTH_CHECK = "/grpc.health.v1.Health/Check"
CAST_VOTE = "/voting.v1.CommandService/CastVote"


@dataclass
class Outcome:
    status: dict[int, str] = field(default_factory=dict)  # stream -> grpc-status
    reset: set[int] = field(default_factory=set)


def truncated_calls(
    port: int, path: str, *, streams: int, end_stream: bool, wait_s: float
) -> Outcome:
    """Opens ``streams`` calls whose one message promises 1,000 bytes and carries 10, and
    collects how each ended within ``wait_s``."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=wait_s)
    conn = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    sock.sendall(conn.data_to_send())
    headers = [
        (":method", "POST"),
        (":scheme", "http"),
        (":path", path),
        (":authority", f"127.0.0.1:{port}"),
        ("content-type", "application/grpc"),
        ("te", "trailers"),
    ]
    frame = struct.pack(">BI", 0, 1000) + b"\x0a\x08truncat"  # 10 of the 1,000 bytes
    ids = []
    for _ in range(streams):
        stream_id = conn.get_next_available_stream_id()
        conn.send_headers(stream_id, headers)
        conn.send_data(stream_id, frame, end_stream=end_stream)
        ids.append(stream_id)
        sock.sendall(conn.data_to_send())
    outcome = Outcome()
    deadline = time.monotonic() + wait_s
    try:
        # A stalled call gets its trailers, then RST_STREAM: each stream ends with one or both.
        while len(outcome.status.keys() | outcome.reset) < streams and time.monotonic() < deadline:
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                data = sock.recv(65536)
            except TimeoutError:
                break
            if not data:
                break
            for event in conn.receive_data(data):
                if isinstance(event, h2.events.TrailersReceived | h2.events.ResponseReceived):
                    found = dict(event.headers)
                    if b"grpc-status" in found:
                        outcome.status[event.stream_id] = found[b"grpc-status"].decode()
                elif isinstance(event, h2.events.StreamReset):
                    outcome.reset.add(event.stream_id)
            sock.sendall(conn.data_to_send())
    finally:
        sock.close()
    return outcome


def serving(settings: ServerSettings) -> tuple[int, asyncio.AbstractEventLoop, GrpcServer]:
    port = free_port()
    loop = asyncio.new_event_loop()
    server = GrpcServer(listen=f"127.0.0.1:{port}", settings=settings)
    loop.run_until_complete(server.start())
    return port, loop, server


def tasks_after(loop: asyncio.AbstractEventLoop, seconds: float) -> int:
    loop.run_until_complete(asyncio.sleep(seconds))
    return len(asyncio.all_tasks(loop))


@pytest.mark.parametrize("streams", [1, 500])
def test_a_stream_that_ends_inside_its_request_message_is_refused_at_once(streams: int) -> None:
    port, loop, server = serving(ServerSettings(request_read_timeout_s=30.0))
    try:
        baseline = tasks_after(loop, 0.1)
        outcome = loop.run_until_complete(
            asyncio.to_thread(
                truncated_calls, port, HEALTH_CHECK, streams=streams, end_stream=True, wait_s=10
            )
        )
        # INVALID_ARGUMENT, well before the 30 s read timeout: the peer said it was done.
        assert sorted(set(outcome.status.values())) == ["3"]
        assert len(outcome.status) == streams
        assert tasks_after(loop, 0.2) <= baseline, "calls outlived their answers"
    finally:
        loop.run_until_complete(server.stop())
        loop.close()


def test_a_stream_that_stalls_inside_its_request_message_ends_at_the_read_timeout() -> None:
    port, loop, server = serving(ServerSettings(request_read_timeout_s=1.0))
    try:
        baseline = tasks_after(loop, 0.1)
        outcome = loop.run_until_complete(
            asyncio.to_thread(
                truncated_calls, port, HEALTH_CHECK, streams=50, end_stream=False, wait_s=10
            )
        )
        assert sorted(set(outcome.status.values())) == ["4"]  # DEADLINE_EXCEEDED
        assert len(outcome.status) == 50
        assert tasks_after(loop, 0.2) <= baseline
    finally:
        loop.run_until_complete(server.stop())
        loop.close()


@pytest.mark.slow
def test_the_command_service_answers_every_truncated_vote(running: Deployment) -> None:
    port = running.stack.options.command_port
    outcome = truncated_calls(port, CAST_VOTE, streams=200, end_stream=True, wait_s=20)
    assert sorted(set(outcome.status.values())) == ["3"]
    assert len(outcome.status) == 200
    assert running.alive("command")
