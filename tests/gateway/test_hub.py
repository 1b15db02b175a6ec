"""The per-poll hub against a scripted QueryService: one upstream stream per poll, shared,
opened by the first browser and closed by the last; resume; reconnect; FINAL; slow readers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Awaitable, Callable

import grpc
import pytest

from gateway import hub as hub_module
from gateway.encoding import HEARTBEAT, chunk
from gateway.errors import UpstreamError
from gateway.hub import Follower, PollStream, ResultsHub
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


def run(
    scenario: Callable[[ScriptedQueries, ResultsHub], Awaitable[None]],
    *,
    heartbeat_s: float = 5.0,
) -> None:
    async def main() -> None:
        queries = ScriptedQueries()
        hub = ResultsHub(queries.watch, heartbeat_s=heartbeat_s)
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


class Browser:
    """A browser's transport as the broadcaster sees it: what was written, whether the
    kernel would take more (``full``), whether the connection is gone."""

    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.full = False
        self.gone = False

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def get_write_buffer_size(self) -> int:
        return 1 if self.full else 0

    def is_closing(self) -> bool:
        return self.gone

    @property
    def ids(self) -> list[int]:
        return [int(e.split(b"\n", 1)[0].removeprefix(b"id: ")) for e in self.events]

    @property
    def events(self) -> list[bytes]:
        return [e for e in self.written if e.startswith(b"id:")]


def follower_of(stream: PollStream, after: int = 0) -> tuple[Browser, Follower]:
    browser = Browser()
    return browser, stream.follow(browser, shown=after, chunked=False)


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
            await stream.ready()
            fresh, _ = follower_of(stream, after=0)
            assert fresh.ids == [7]
            # A browser that already holds version 7 waits for the next change...
            holding, _ = follower_of(stream, after=7)
            await asyncio.sleep(0.05)
            assert holding.written == []
            queries.send(snapshot(8))
            await until(lambda: holding.ids == [8])
            assert fresh.ids == [7, 8]

    run(scenario)


def test_a_browser_that_stops_reading_skips_to_the_latest_and_holds_one_event() -> None:
    async def scenario(queries: ScriptedQueries, hub: ResultsHub) -> None:
        feed_first(queries, snapshot(1))
        async with hub.subscription("p") as stream:
            await stream.ready()
            slow, _ = follower_of(stream)
            quick, _ = follower_of(stream)
            assert slow.ids == quick.ids == [1]
            slow.full = True  # its socket buffer is full: the kernel takes no more
            for version in range(2, 51):
                queries.send(snapshot(version, total=version))
            await until(lambda: quick.ids[-1:] == [50])
            await asyncio.sleep(3 * hub_module.TEND_S)
            assert slow.ids == [1], "nothing is queued for a browser that does not read"
            slow.full = False
            await until(lambda: slow.ids == [1, 50])
            assert quick.ids == list(range(1, 51))
            assert b'"total":"50"' in slow.events[-1]

    run(scenario)


def test_the_final_snapshot_reaches_a_browser_whose_buffer_is_full() -> None:
    async def scenario(queries: ScriptedQueries, hub: ResultsHub) -> None:
        feed_first(queries, snapshot(1))
        async with hub.subscription("p") as stream:
            await stream.ready()
            slow, follower = follower_of(stream)
            slow.full = True
            queries.send(snapshot(2))
            queries.send(snapshot(3, final=True))
            assert await follower.ended is True
            assert slow.ids == [1, 3]
            assert b'"final":true' in slow.events[-1]

    run(scenario)


def test_events_are_written_as_http_chunks_to_chunked_responses() -> None:
    async def scenario(queries: ScriptedQueries, hub: ResultsHub) -> None:
        feed_first(queries, snapshot(1))
        async with hub.subscription("p") as stream:
            latest = await stream.ready()
            browser = Browser()
            stream.follow(browser, shown=0, chunked=True)
            assert browser.written == [chunk(latest.event)]
            assert chunk(b"id: 1\n\n") == b"7\r\nid: 1\n\n\r\n"

    run(scenario)


def test_a_browser_that_went_away_is_dropped_at_the_next_write() -> None:
    async def scenario(queries: ScriptedQueries, hub: ResultsHub) -> None:
        feed_first(queries, snapshot(1))
        async with hub.subscription("p") as stream:
            await stream.ready()
            gone, follower = follower_of(stream)
            stays, _ = follower_of(stream)
            gone.gone = True
            queries.send(snapshot(2))
            assert await follower.ended is False
            await until(lambda: stays.ids == [1, 2])
            assert gone.ids == [1]
            assert len(stream.followers) == 1

    run(scenario)


def test_a_broken_upstream_reconnects_after_the_last_version_and_browsers_stay(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(hub_module, "BACKOFF_MIN_S", 0.01)

    async def scenario(queries: ScriptedQueries, hub: ResultsHub) -> None:
        feed_first(queries, snapshot(4))
        async with hub.subscription("p") as stream:
            await stream.ready()
            browser, follower = follower_of(stream)
            queries.send(UpstreamError(grpc.StatusCode.UNAVAILABLE, "query service restarting"))
            await until(lambda: len(queries.calls) == 2)
            assert queries.calls[1] == ("p", 4)
            queries.send(snapshot(4))  # not newer: the new stream skips it
            queries.send(snapshot(5))
            await until(lambda: browser.ids == [4, 5])
            # A stream that ends without FINAL is a break too.
            queries.send(None)
            await until(lambda: len(queries.calls) == 3)
            assert queries.calls[2] == ("p", 5)
            assert not follower.ended.done()

    run(scenario)


def test_final_ends_every_browser_stream_and_the_upstream() -> None:
    async def scenario(queries: ScriptedQueries, hub: ResultsHub) -> None:
        async def follow() -> tuple[bool, list[bytes]]:
            async with hub.subscription("p") as stream:
                await stream.ready()
                browser, follower = follower_of(stream)
                return await follower.ended, browser.events

        browsers = [asyncio.create_task(follow()) for _ in range(5)]
        await until(lambda: len(queries.calls) == 1)
        queries.send(snapshot(1, total=2))
        await until(lambda: (s := hub.stream("p")) is not None and len(s.followers) == 5)
        queries.send(snapshot(2, total=3, final=True))
        for ended_final, received in await asyncio.gather(*browsers):
            assert ended_final is True
            assert received[-1].startswith(b"id: 2\n")
            assert b'"final":true' in received[-1]
        assert queries.open_streams == 0
        assert hub.polls == 0

    run(scenario)


def test_a_quiet_stream_sends_heartbeats() -> None:
    async def scenario(queries: ScriptedQueries, hub: ResultsHub) -> None:
        feed_first(queries, snapshot(1))
        async with hub.subscription("p") as stream:
            await stream.ready()
            browser, _ = follower_of(stream, after=1)
            await until(lambda: browser.written.count(HEARTBEAT) >= 2)
            assert browser.events == []

    run(scenario, heartbeat_s=0.05)


def test_closing_the_hub_ends_every_browser_stream() -> None:
    async def scenario(queries: ScriptedQueries, hub: ResultsHub) -> None:
        async def follow() -> tuple[bool, int]:
            async with hub.subscription("p") as stream:
                await stream.ready()
                browser, follower = follower_of(stream)
                return await follower.ended, len(browser.events)

        browsers = [asyncio.create_task(follow()) for _ in range(3)]
        await until(lambda: len(queries.calls) == 1)
        queries.send(snapshot(1))
        await until(lambda: (s := hub.stream("p")) is not None and len(s.followers) == 3)
        await hub.close()
        assert await asyncio.gather(*browsers) == [(False, 1)] * 3
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


def test_a_browser_joining_after_a_final_of_the_version_it_holds_gets_it_and_ends() -> None:
    # The handler reads the first snapshot, then writes it (an await) before it follows:
    # FINAL can arrive meanwhile with the same version, as the recount confirms it.
    async def scenario(queries: ScriptedQueries, hub: ResultsHub) -> None:
        feed_first(queries, snapshot(4))
        async with hub.subscription("p") as stream:
            await stream.ready()
            queries.send(snapshot(4, total=9, final=True))
            await until(lambda: stream.latest is not None and stream.latest.final)
            browser, follower = follower_of(stream, after=4)
            assert await asyncio.wait_for(follower.ended, 1) is True
            assert b'"final":true' in browser.events[-1]

    run(scenario)
