"""Polls for benchmark runs: created and known to the read side before any load, and
closed with their FINAL results awaited."""

from __future__ import annotations

import time
from typing import Any

import grpc

from voting.config import Settings
from voting.v1 import command_service_pb2 as cmd
from voting.v1 import command_service_pb2_grpc, poll_pb2, query_service_pb2_grpc, results_pb2
from voting.v1 import query_service_pb2 as q


def create_polls(
    settings: Settings,
    count: int,
    options: int,
    *,
    prefix: str,
    await_read_side: bool = True,
    endpoints: tuple[str, str] | None = None,
) -> list[str]:
    """``endpoints`` (commands, queries) when not the stack's own services: the
    single-model baseline serves both contracts."""
    stamp = int(time.time() * 1000)
    polls = [f"{prefix}-{stamp}-{i}" for i in range(count)]
    commands_at, queries_at = endpoints or (settings.command.listen, settings.query.listen)
    with (
        grpc.insecure_channel(commands_at) as cc,
        grpc.insecure_channel(queries_at) as qc,
    ):
        commands: Any = command_service_pb2_grpc.CommandServiceStub(cc)
        queries: Any = query_service_pb2_grpc.QueryServiceStub(qc)
        for poll_id in polls:
            commands.CreatePoll(
                cmd.CreatePollRequest(
                    request_id=poll_id,
                    poll_id=poll_id,
                    title=poll_id,
                    options=[
                        poll_pb2.PollOption(option_id=f"o{i}", label=f"Option {i}")
                        for i in range(options)
                    ],
                ),
                timeout=30,
            )
        for poll_id in polls if await_read_side else []:  # known before anyone watches
            deadline = time.monotonic() + 60
            while True:
                try:
                    # Results, not only the poll: followers need them, and the
                    # projector writes them after the poll's metadata.
                    queries.GetResults(q.GetResultsRequest(poll_id=poll_id), timeout=5)
                    break
                except grpc.RpcError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.1)
    return polls


def close_and_await_final(
    settings: Settings,
    polls: list[str],
    *,
    timeout_s: float = 180,
    endpoints: tuple[str, str] | None = None,
) -> dict[str, results_pb2.Results]:
    """Closes the polls, then waits for each one's FINAL results (the recount done)."""
    finals: dict[str, results_pb2.Results] = {}
    commands_at, queries_at = endpoints or (settings.command.listen, settings.query.listen)
    with (
        grpc.insecure_channel(commands_at) as cc,
        grpc.insecure_channel(queries_at) as qc,
    ):
        commands: Any = command_service_pb2_grpc.CommandServiceStub(cc)
        queries: Any = query_service_pb2_grpc.QueryServiceStub(qc)
        for poll_id in polls:
            commands.ClosePoll(
                cmd.ClosePollRequest(request_id=f"close-{poll_id}", poll_id=poll_id), timeout=30
            )
        deadline = time.monotonic() + timeout_s
        for poll_id in polls:
            while True:
                try:
                    results = queries.GetResults(
                        q.GetResultsRequest(poll_id=poll_id), timeout=10
                    ).results
                except grpc.RpcError:
                    results = None
                if (results is not None and results.final) or time.monotonic() > deadline:
                    break
                time.sleep(0.5)
            if results is not None:
                finals[poll_id] = results
    return finals
