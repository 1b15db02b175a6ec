"""WatchResults against the real pipeline: first the snapshot, then coalesced updates,
FINAL ends every stream, slow readers cost bounded memory."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from pathlib import Path
from typing import Any

import grpc
import pytest

from devkit.stack import components
from tests.harness import Deployment, wait_until
from voting.readmodel import CHANGES_CHANNEL, change_message
from voting.v1 import command_service_pb2 as cmd
from voting.v1 import query_service_pb2 as q
from voting.v1 import query_service_pb2_grpc

pytestmark = pytest.mark.slow


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def cast(deployment: Deployment, poll_id: str, voter: str, option: str = "a") -> None:
    deployment.commands.CastVote(
        cmd.CastVoteRequest(poll_id=poll_id, voter_id=voter, option_id=option), timeout=10
    )


def test_first_the_snapshot_then_each_change_within_the_coalescing_window(
    running: Deployment,
) -> None:
    poll_id = running.create_poll()
    wait_until(
        lambda: running.redis.exists(running.keys.poll(poll_id)), timeout_s=30, what="the poll"
    )
    stream = running.queries.WatchResults(q.WatchResultsRequest(poll_id=poll_id), timeout=60)
    first = next(stream).results
    assert first.total == 0
    lags = []
    for i in range(5):
        cast(running, poll_id, f"watcher-{i}")
        # When the projector applied the vote (the version in Redis moved)...
        wait_until(
            lambda n=i + 1: running.redis_counts(poll_id).get("a", 0) == n,
            timeout_s=30,
            interval_s=0.005,
            what="the vote applied",
        )
        applied = time.monotonic()
        # ... the stream must show it within one coalescing window (0.1 s) plus slack.
        while True:
            update = next(stream).results
            if update.total == i + 1:
                break
        lags.append(time.monotonic() - applied)
    stream.cancel()
    assert max(lags) < 0.1 + 0.4, f"push lags after apply: {lags}"


def test_updates_are_coalesced_to_at_most_the_configured_rate(running: Deployment) -> None:
    poll_id = running.create_poll()
    wait_until(
        lambda: running.redis.exists(running.keys.poll(poll_id)), timeout_s=30, what="the poll"
    )
    stream = running.queries.WatchResults(q.WatchResultsRequest(poll_id=poll_id), timeout=60)
    next(stream)
    # Drive changes far faster than 10/s: bump the version and notify 200 times a second.
    meta = running.keys.meta(poll_id)
    received = 0
    stop = time.monotonic() + 3.0

    async def drive() -> None:
        while time.monotonic() < stop:
            version = running.redis.hincrby(meta, "version", 1)
            running.redis.publish(CHANGES_CHANNEL, change_message(poll_id, int(version)))
            await asyncio.sleep(0.005)

    driver = threading.Thread(target=lambda: asyncio.run(drive()))
    driver.start()
    started = time.monotonic()
    for _ in stream:
        received += 1
        if time.monotonic() - started > 3.0:
            break
    driver.join()
    stream.cancel()
    assert 10 <= received <= 3 * 10 + 3, f"{received} updates in 3 s"


async def watch_until_final(
    target: str, poll_id: str, count: int, ready: asyncio.Event
) -> list[q.WatchResultsResponse]:
    async with grpc.aio.insecure_channel(target) as channel:
        stub = query_service_pb2_grpc.QueryServiceStub(channel)
        connected = 0

        async def one() -> q.WatchResultsResponse:
            nonlocal connected
            last: q.WatchResultsResponse | None = None
            first = True
            async for message in stub.WatchResults(
                q.WatchResultsRequest(poll_id=poll_id), timeout=180
            ):
                if first:
                    first = False
                    connected += 1
                    if connected == count:
                        ready.set()
                last = message
            assert last is not None
            return last

        return list(await asyncio.gather(*(one() for _ in range(count))))


def test_a_thousand_subscribers_each_receive_the_final_snapshot_and_their_streams_end(
    running: Deployment,
) -> None:
    poll_id = running.create_poll()
    wait_until(
        lambda: running.redis.exists(running.keys.poll(poll_id)), timeout_s=30, what="the poll"
    )
    for i in range(20):
        cast(running, poll_id, f"early-{i}", option="abc"[i % 3])
    target = f"127.0.0.1:{running.stack.options.query_port}"

    async def scenario() -> list[q.WatchResultsResponse]:
        ready = asyncio.Event()
        watchers = asyncio.create_task(watch_until_final(target, poll_id, 1000, ready))
        await asyncio.wait_for(ready.wait(), 120)
        await asyncio.to_thread(
            running.commands.ClosePoll,
            cmd.ClosePollRequest(request_id=f"close-{poll_id}", poll_id=poll_id),
            timeout=30,
        )
        return await asyncio.wait_for(watchers, 180)

    finals = asyncio.run(scenario())
    assert len(finals) == 1000
    assert all(m.results.final for m in finals)
    assert {m.results.total for m in finals} == {20}


def test_a_subscriber_that_never_reads_does_not_grow_server_memory(deployment: Deployment) -> None:
    deployment.start(env={"VOTING_WATCH_MAX_UPDATES_PER_S": "50"})
    options = [f"option-{i:02d}" for i in range(64)]
    poll_id = deployment.create_poll(options=options)
    wait_until(
        lambda: deployment.redis.exists(deployment.keys.poll(poll_id)),
        timeout_s=30,
        what="the poll",
    )
    target = f"127.0.0.1:{deployment.stack.options.query_port}"
    pid = deployment.stack.children["query"].pid
    meta = deployment.keys.meta(poll_id)

    async def scenario() -> tuple[int, int, int]:
        async with grpc.aio.insecure_channel(target) as channel:
            stub: Any = query_service_pb2_grpc.QueryServiceStub(channel)
            stalled = [
                stub.WatchResults(q.WatchResultsRequest(poll_id=poll_id)) for _ in range(200)
            ]
            for call in stalled:
                await call.initial_metadata()  # connected, and then never read again
            await asyncio.sleep(1)
            before = rss_bytes(pid)
            reader_got = 0

            async def reader() -> None:
                nonlocal reader_got
                async for _ in stub.WatchResults(q.WatchResultsRequest(poll_id=poll_id)):
                    reader_got += 1

            reading = asyncio.create_task(reader())
            for _ in range(15 * 60):  # 15 s of changes at 60/s, coalesced to 50/s
                version = deployment.redis.hincrby(meta, "version", 1)
                deployment.redis.publish(CHANGES_CHANNEL, change_message(poll_id, int(version)))
                await asyncio.sleep(1 / 60)
            await asyncio.sleep(1)
            after = rss_bytes(pid)
            reading.cancel()
            for call in stalled:
                call.cancel()
            return before, after, reader_got

    before, after, reader_got = asyncio.run(scenario())
    snapshot_size = len(q.WatchResultsResponse().SerializeToString()) + 64 * 20
    # Had the server queued every snapshot for every stalled stream, it would hold
    # ~200 x 600 x snapshot bytes (~150 MB). Holding only the latest one costs little.
    assert reader_got > 300, "the reading subscriber must have seen the updates"
    growth = after - before
    mib = 2**20
    print(f"query service RSS {before / mib:.1f} -> {after / mib:.1f} MiB, reader got {reader_got}")
    assert growth < 40 * 1024 * 1024, (
        f"query service grew {growth / 2**20:.1f} MiB ({snapshot_size} B snapshots)"
    )


def test_two_query_processes_share_one_port(running: Deployment) -> None:
    port = running.stack.options.query_port
    poll_id = running.create_poll()
    wait_until(
        lambda: running.redis.exists(running.keys.poll(poll_id)), timeout_s=30, what="the poll"
    )
    env = {**running.stack.env(), "VOTING_QUERY_LISTEN": f"127.0.0.1:{port}"}
    second = components.service(
        name="query-2", command="query-svc", port=port, env=env, log_dir=running.stack.log_dir
    )
    running.stack.launch(second, check_port=False)
    running.kill("query")  # the first process goes; the port keeps answering
    stub = running.stub_at(port, query_service_pb2_grpc.QueryServiceStub)
    reply = stub.GetPoll(q.GetPollRequest(poll_id=poll_id), timeout=10, wait_for_ready=True)
    assert reply.poll.poll_id == poll_id
    assert running.alive("query-2")
    assert os.path.exists(running.stack.log_dir / "query-2.log")
