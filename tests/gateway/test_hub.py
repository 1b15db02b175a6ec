"""The per-poll hub against a scripted QueryService: one upstream stream per poll, shared,
opened by the first browser and closed by the last; resume; reconnect; FINAL; slow readers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Awaitable, Callable

import grpc
import pytest

from gateway import hub as hub_module
from gateway.encoding import HEARTBEAT
from gateway.errors import UpstreamError
from gateway.hub import PollStream, ResultsHub
from voting.v1 import results_pb2

pytestmark = pytest.mark.unit

Item = results_pb2.Results | UpstreamError | None


class ScriptedQueries:
    """WatchResults as the query service serves it; the test writes what each call sends."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []
        self.feeds: list[asyncio.Queue[Item]] = []
        self.closed = 0

    async def watch(
        self, poll_id: str, after_version: int
    ) -> AsyncGenerator[results_pb2.Results, None]:
        feed: asyncio.Queue[Item] = asyncio.Queue()
        self.calls.append((poll_id, after_version))
        self.feeds.append(feed)
        try:
            while True:
                item = await feed.get()
                if item is None:
                    return
                if isinstance(item, UpstreamError):
                    raise item
                if item.version > after_version:
                    yield item
        finally:
            self.closed += 1

    def send(self, item: Item, *, call: int = -1) -> None:
        self.feeds[call].put_nowait(item)

    @property
    def open_streams(self) -> int:
        return len(self.calls) - self.closed


def snapshot(version: int, *, total: int = 0, final: bool = False) -> results_pb2.Results:
    return results_pb2.Results(poll_id="p", version=version, total=total, final=final)


def run(scenario: Callable[[ScriptedQueries, ResultsHub], Awaitable[None]]) -> None:
    async def main() -> None:
        queries = ScriptedQueries()
        hub = ResultsHub(queries.watch)
        try:
            await asyncio.wait_for(scenario(queries, hub), 10)
        finally:
            await hub.close()

    asyncio.run(main())


async def until(predicate: Callable[[], bool]) -> None:
    """Polls: the scripted upstream runs in tasks the test does not await."""
    while True:
        if predicate():
            return
        await asyncio.sleep(0.005)


def feed_first(queries: ScriptedQueries, item: Item, *, call: int = 0) -> asyncio.Task[None]:
    """Sends ``item`` on upstream call ``call`` once it is open (subscribing waits for it)."""

    async def send() -> None:
        await until(lambda: len(queries.calls) > call)
        queries.send(item, call=call)

    return asyncio.create_task(send())


async def first_of(stream: PollStream, after: int = 0, heartbeat_s: float = 5.0) -> bytes:
    events = stream.events(after, heartbeat_s=heartbeat_s)
    try:
        return await anext(events)
    finally:
        await events.aclose()


def test_browsers_of_a_poll_share_one_upstream_opened_by_the_first_closed_by_the_last() -> None:
    async def scenario(queries: ScriptedQueries, hub: ResultsHub) -> None:
        feed_first(queries, snapshot(3))
        async with hub.subscription("p") as first:
            assert hub.polls == 1
            async with hub.subscription("p") as second:
                assert second is first
                assert hub.subscribers == 2
                assert queries.calls == [("p", 0)]
            assert queries.open_streams == 1  # one browser is still there
        assert hub.polls == 0
        assert queries.open_streams == 0

    run(scenario)


def test_each_poll_has_its_own_upstream() -> None:
    async def scenario(queries: ScriptedQueries, hub: ResultsHub) -> None:
        async def follow(poll_id: str) -> int:
            async with hub.subscription(poll_id) as stream:
                return (await stream.ready()).version

        tasks = [asyncio.create_task(follow(p)) for p in ("p", "q")]
        await until(lambda: len(queries.calls) == 2)
        queries.send(snapshot(1), call=0)
        queries.send(snapshot(2), call=1)
        assert sorted(await asyncio.gather(*tasks)) == [1, 2]
        assert sorted(poll for poll, _ in queries.calls) == ["p", "q"]

    run(scenario)


def test_a_refused_poll_fails_every_waiting_browser_and_leaves_no_stream() -> None:
    async def scenario(queries: ScriptedQueries, hub: ResultsHub) -> None:
        async def follow() -> None:
            async with hub.subscription("nope"):
                raise AssertionError("must not be reached")

        waiting = [asyncio.create_task(follow()) for _ in range(3)]
        await until(lambda: len(queries.calls) == 1)
        queries.send(UpstreamError(grpc.StatusCode.NOT_FOUND, "poll 'nope' is not known"))
        for task in waiting:
            with pytest.raises(UpstreamError) as caught:
                await task
            assert caught.value.http_status == 404
        assert hub.polls == 0
        assert len(queries.calls) == 1, "a refused poll is not retried for waiting browsers"

    run(scenario)


def test_each_browser_resumes_after_its_own_last_event_id() -> None:
    async def scenario(queries: ScriptedQueries, hub: ResultsHub) -> None:
        feed_first(queries, snapshot(7))
        async with hub.subscription("p") as stream:
            assert (await first_of(stream, after=0)).startswith(b"id: 7\n")
            # A browser that already holds version 7 waits for the next change...
            behind = asyncio.create_task(first_of(stream, after=7))
            await asyncio.sleep(0.05)
            assert not behind.done()
            queries.send(snapshot(8))
            assert (await behind).startswith(b"id: 8\n")

    run(scenario)


def test_a_slow_browser_gets_only_the_latest_snapshot() -> None:
    async def scenario(queries: ScriptedQueries, hub: ResultsHub) -> None:
        feed_first(queries, snapshot(1))
        async with hub.subscription("p") as stream:
            events = stream.events(0, heartbeat_s=5.0)
            assert (await anext(events)).startswith(b"id: 1\n")
            for version in range(2, 51):  # the browser reads nothing meanwhile
                queries.send(snapshot(version, total=version))
            await until(lambda: stream.latest is not None and stream.latest.version == 50)
            assert (await anext(events)).startswith(b"id: 50\n")
            await events.aclose()

    run(scenario)


def test_a_broken_upstream_reconnects_after_the_last_version_and_browsers_stay(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(hub_module, "BACKOFF_MIN_S", 0.01)

    async def scenario(queries: ScriptedQueries, hub: ResultsHub) -> None:
        feed_first(queries, snapshot(4))
        async with hub.subscription("p") as stream:
            events = stream.events(0, heartbeat_s=5.0)
            assert (await anext(events)).startswith(b"id: 4\n")
            queries.send(UpstreamError(grpc.StatusCode.UNAVAILABLE, "query service restarting"))
            await until(lambda: len(queries.calls) == 2)
            assert queries.calls[1] == ("p", 4)
            queries.send(snapshot(4))  # not newer: the new stream skips it
            queries.send(snapshot(5))
            assert (await anext(events)).startswith(b"id: 5\n")
            # A stream that ends without FINAL is a break too.
            queries.send(None)
            await until(lambda: len(queries.calls) == 3)
            assert queries.calls[2] == ("p", 5)
            await events.aclose()

    run(scenario)


def test_final_ends_every_browser_stream_and_the_upstream() -> None:
    async def scenario(queries: ScriptedQueries, hub: ResultsHub) -> None:
        async def follow() -> list[bytes]:
            async with hub.subscription("p") as stream:
                return [event async for event in stream.events(0, heartbeat_s=5.0)]

        browsers = [asyncio.create_task(follow()) for _ in range(5)]
        await until(lambda: len(queries.calls) == 1)
        queries.send(snapshot(1, total=2))
        await until(lambda: hub.subscribers == 5)
        queries.send(snapshot(2, total=3, final=True))
        for received in await asyncio.gather(*browsers):
            assert received[-1].startswith(b"id: 2\n")
            assert b'"final":true' in received[-1]
        assert queries.open_streams == 0
        assert hub.polls == 0

    run(scenario)


def test_a_quiet_stream_sends_heartbeats() -> None:
    async def scenario(queries: ScriptedQueries, hub: ResultsHub) -> None:
        feed_first(queries, snapshot(1))
        async with hub.subscription("p") as stream:
            events = stream.events(1, heartbeat_s=0.05)
            assert await anext(events) == HEARTBEAT
            assert await anext(events) == HEARTBEAT
            await events.aclose()

    run(scenario)


def test_closing_the_hub_ends_every_browser_stream() -> None:
    async def scenario(queries: ScriptedQueries, hub: ResultsHub) -> None:
        async def follow() -> int:
            async with hub.subscription("p") as stream:
                return len([e async for e in stream.events(0, heartbeat_s=5.0)])

        browsers = [asyncio.create_task(follow()) for _ in range(3)]
        await until(lambda: len(queries.calls) == 1)
        queries.send(snapshot(1))
        await until(lambda: hub.subscribers == 3)
        await until(lambda: (s := hub.stream("p")) is not None and s.latest is not None)
        await hub.close()
        assert await asyncio.gather(*browsers) == [1, 1, 1]
        assert queries.open_streams == 0
        with pytest.raises(UpstreamError) as caught:
            async with hub.subscription("p"):
                pass
        assert caught.value.http_status == 503

    run(scenario)


def test_closing_the_hub_fails_browsers_still_waiting_for_a_first_snapshot() -> None:
    async def scenario(queries: ScriptedQueries, hub: ResultsHub) -> None:
        async def follow() -> None:
            async with hub.subscription("p"):
                raise AssertionError("must not be reached")

        waiting = asyncio.create_task(follow())
        await until(lambda: len(queries.calls) == 1)
        await hub.close()
        with pytest.raises(UpstreamError) as caught:
            await waiting
        assert caught.value.http_status == 503

    run(scenario)
