"""The demo ``make run`` ends in: a poll, simulated voters, live results, then FINAL."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from typing import Any

import grpc

from devkit.console.view import LiveView, Progress
from devkit.console.watch import follow, redraw
from voting.config import TlsSettings
from voting.tls import aio_channel
from voting.v1 import command_service_pb2 as cmd
from voting.v1 import command_service_pb2_grpc, poll_pb2, query_service_pb2_grpc
from voting.v1 import query_service_pb2 as q

OPTIONS = [
    ("kafka", "Apache Kafka"),
    ("pulsar", "Apache Pulsar"),
    ("redpanda", "Redpanda"),
    ("kinesis", "Amazon Kinesis"),
]
# How voters lean: the race should stay close enough to be worth watching.
WEIGHTS = [0.34, 0.22, 0.28, 0.16]


async def cast(
    stub: Any,
    poll_id: str,
    progress: Progress,
    *,
    votes: int,
    rate: float,
    batch: int = 100,
    metadata: Any = None,
) -> None:
    rng = random.Random()
    voters = 0
    interval = batch / rate
    next_at = time.monotonic()
    while progress.done + progress.errors < votes:
        size = min(batch, votes - progress.done - progress.errors)
        requests: list[cmd.CastVoteRequest] = []
        for _ in range(size):
            # About one vote in ten comes from someone who already voted: it is
            # acknowledged (durable) but the dedup worker rejects it as a duplicate.
            voter = rng.randrange(voters) if voters and rng.random() < 0.1 else voters
            voters = max(voters, voter + 1)
            option = rng.choices(OPTIONS, WEIGHTS)[0][0]
            requests.append(
                cmd.CastVoteRequest(
                    request_id=f"demo-{poll_id}-{progress.done + len(requests)}",
                    poll_id=poll_id,
                    voter_id=f"voter-{voter}",
                    option_id=option,
                )
            )
        try:
            reply = await stub.CastVotes(
                cmd.CastVotesRequest(requests=requests), timeout=30, metadata=metadata
            )
            ok = sum(1 for r in reply.results if r.status.code == 0)
            progress.done += ok
            progress.errors += size - ok
        except grpc.aio.AioRpcError:
            progress.errors += size
        next_at += interval
        await asyncio.sleep(max(0.0, next_at - time.monotonic()))


async def demo(
    command_target: str,
    query_target: str,
    *,
    votes: int,
    rate: float,
    gateway: str | None = None,
    tls: TlsSettings | None = None,
    token: str = "",
) -> int:
    """``token``: with JWT auth, an admin token with ``proxy:*`` (it votes for the crowd)."""
    poll_id = f"demo-{time.strftime('%Y%m%d-%H%M%S')}"
    metadata = [("authorization", f"Bearer {token}")] if token else None
    async with (
        aio_channel(command_target, tls or TlsSettings()) as commands_channel,
        aio_channel(query_target, tls or TlsSettings()) as queries_channel,
    ):
        commands: Any = command_service_pb2_grpc.CommandServiceStub(commands_channel)
        queries: Any = query_service_pb2_grpc.QueryServiceStub(queries_channel)
        await commands.CreatePoll(
            cmd.CreatePollRequest(
                request_id=f"create-{poll_id}",
                poll_id=poll_id,
                title="Which log would you run 250k votes/s on?",
                options=[poll_pb2.PollOption(option_id=o, label=label) for o, label in OPTIONS],
            ),
            timeout=30,
            metadata=metadata,
        )
        poll = None
        for _ in range(100):  # the poll reaches the read model a moment later
            with contextlib.suppress(grpc.aio.AioRpcError):
                poll = (await queries.GetPoll(q.GetPollRequest(poll_id=poll_id), timeout=5)).poll
                break
            await asyncio.sleep(0.1)
        if poll is None:
            print("devkit demo: the poll never reached the read model")
            return 1
        if gateway is not None:
            print(f"live results in the browser: http://{gateway}/polls/{poll_id}", flush=True)
        view = LiveView(poll)
        view.progress = Progress("casting", votes)
        painter = asyncio.create_task(redraw(view))
        watcher = asyncio.create_task(follow(view, queries, poll_id))
        try:
            await cast(commands, poll_id, view.progress, votes=votes, rate=rate, metadata=metadata)
            await asyncio.sleep(1.0)
            await commands.ClosePoll(
                cmd.ClosePollRequest(request_id=f"close-{poll_id}", poll_id=poll_id),
                timeout=30,
                metadata=metadata,
            )
            await asyncio.wait_for(watcher, timeout=120)
        finally:
            for task in (painter, watcher):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            view.render(force=True)
        results = view.results
        if results is None or not results.final:
            print("devkit demo: no final results")
            return 1
        verdict = "matched" if results.recount.matched else "repaired"
        print(
            f"\n{votes:,} votes cast by simulated voters; {results.total:,} counted "
            f"(one per voter); the recount {verdict} the live count."
        )
        print(f"follow it again: python -m devkit watch {poll_id}")
    return 0
