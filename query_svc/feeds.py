"""Live results fan-out: one Redis subscription per process, one feed per watched poll.

The projector publishes ``<poll> <version>`` after each change. The hub hands each
notification to the poll's feed (if anyone here watches it); the feed rebuilds the
snapshot at most ``max_rate`` times a second, serializes it once, and wakes every
subscriber with that one object. Subscribers only ever look at the latest snapshot: a
slow reader skips versions instead of queueing them, so no buffer grows with it.

Pub/sub delivers at most once, so each feed also re-reads its snapshot every few
seconds; when Redis is unreachable feeds keep their last snapshot and catch up when it
returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from query_svc.errors import ReadModelUnavailable, ShuttingDown
from query_svc.metrics import FEEDS, PUSH_LATENCY, PUSHES
from query_svc.read_model import ReadModelReader, Snapshot
from voting import telemetry
from voting.errors import ServiceError
from voting.readmodel import CHANGES_CHANNEL, SWITCH_MESSAGE, parse_change

log = logging.getLogger(__name__)

SAFETY_REFRESH_S = 2.0
# One published snapshot in a hundred gets a span: enough to see fan-out timings, and
# never one per subscriber or per stream.
PUSH_TRACE_SAMPLE = 0.01


class Feed:
    def __init__(self, hub: FeedHub, poll_id: str) -> None:
        self.poll_id = poll_id
        self.subscribers = 0
        self.latest: Snapshot | None = None
        self._hub = hub
        self._dirty = asyncio.Event()
        self._next: asyncio.Future[Snapshot] = asyncio.get_running_loop().create_future()
        self._ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        with telemetry.background():  # the feed's Redis reads are not a request's
            self._task = asyncio.create_task(self._run(), name=f"feed-{self.poll_id}")
        await asyncio.shield(self._ready)

    def notify(self, version: int) -> None:
        if self.latest is None or version > self.latest.version:
            self._dirty.set()

    def refresh(self) -> None:
        self._dirty.set()

    async def newer_than(self, version: int) -> Snapshot:
        """The latest snapshot once its version exceeds ``version``."""
        while self.latest is None or self.latest.version <= version:
            await asyncio.shield(self._next)
        return self.latest

    def end(self) -> None:
        """Ends every subscription: waiting subscribers get :class:`ShuttingDown`."""
        if not self._next.done():
            self._next.set_exception(ShuttingDown("shutting down"))
            self._next.exception()  # retrieved: a feed nobody waits on must not warn

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        interval = 1.0 / self._hub.max_rate
        while True:
            # The coalescing window is anchored where the rebuild starts: measured from
            # the end of a publish instead, each period would run a little longer than
            # the window and, at a steady change rate, pushes would fall behind by up to
            # a whole window.
            rebuild_started = time.monotonic()
            rebuild_started_ns = telemetry.now_ns()
            try:
                snapshot = await self._hub.reader.snapshot(self.poll_id)
            except ServiceError as exc:
                if not self._ready.done():
                    self._ready.set_exception(exc)
                    self._ready.exception()
                    return
                await asyncio.sleep(0.5)  # keep the last snapshot; try again
                self._dirty.set()
                continue
            if self.latest is None or snapshot.version > self.latest.version or snapshot.final:
                if random.random() < PUSH_TRACE_SAMPLE:
                    telemetry.span_at(
                        "WatchResults push",
                        parent=None,
                        start_ns=rebuild_started_ns,
                        end_ns=telemetry.now_ns(),
                        attributes={
                            "poll_id": self.poll_id,
                            "version": snapshot.version,
                            "subscribers": self.subscribers,
                        },
                    )
                self.latest = snapshot
                PUSHES.inc(self.subscribers)
                PUSH_LATENCY.observe(max(0.0, time.time() - snapshot.updated_at_s))
                waiters, self._next = self._next, asyncio.get_running_loop().create_future()
                waiters.set_result(snapshot)
            if not self._ready.done():
                self._ready.set_result(None)
            if snapshot.final:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._dirty.wait(), SAFETY_REFRESH_S)
            self._dirty.clear()
            # Coalesce: at most max_rate snapshots a second, whatever the change rate.
            wait = rebuild_started + interval - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)


class FeedHub:
    def __init__(
        self, reader: ReadModelReader, subscriber: aioredis.Redis, *, max_rate: float
    ) -> None:
        self.reader = reader
        self.max_rate = max_rate
        self._subscriber = subscriber
        self._feeds: dict[str, Feed] = {}
        self._starting: dict[str, asyncio.Future[Feed]] = {}
        self._listener: asyncio.Task[None] | None = None
        self._draining = False

    @property
    def subscribers(self) -> int:
        return sum(f.subscribers for f in self._feeds.values())

    def start(self) -> None:
        with telemetry.background():
            self._listener = asyncio.create_task(self._listen(), name="feed-hub-listener")

    async def drain(self) -> None:
        """Ends every stream now, with UNAVAILABLE, and refuses new ones: on shutdown,
        followers reconnect to another replica at once instead of when the grace period
        runs out."""
        self._draining = True
        for feed in list(self._feeds.values()):
            await feed.stop()
            feed.end()

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
        for feed in list(self._feeds.values()):
            await feed.stop()
        self._feeds.clear()

    async def acquire(self, poll_id: str) -> Feed:
        if self._draining:
            raise ShuttingDown("shutting down")
        feed = self._feeds.get(poll_id)
        if feed is None:
            starting = self._starting.get(poll_id)
            if starting is not None:
                feed = await asyncio.shield(starting)
            else:
                future: asyncio.Future[Feed] = asyncio.get_running_loop().create_future()
                self._starting[poll_id] = future
                feed = Feed(self, poll_id)
                try:
                    await feed.start()
                except BaseException as exc:
                    future.set_exception(exc)
                    future.exception()
                    raise
                finally:
                    self._starting.pop(poll_id, None)
                self._feeds[poll_id] = feed
                FEEDS.set(len(self._feeds))
                future.set_result(feed)
        feed.subscribers += 1
        return feed

    def release(self, feed: Feed) -> None:
        feed.subscribers -= 1
        if feed.subscribers <= 0 and self._feeds.get(feed.poll_id) is feed:
            del self._feeds[feed.poll_id]
            FEEDS.set(len(self._feeds))
            asyncio.get_running_loop().create_task(feed.stop())

    async def _listen(self) -> None:
        delay = 0.2
        while True:
            pubsub = self._subscriber.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(CHANGES_CHANNEL)
                delay = 0.2
                for feed in self._feeds.values():
                    feed.refresh()  # notifications may have been missed while away
                async for message in pubsub.listen():
                    self._dispatch(message.get("data"))
            except (RedisError, OSError, ReadModelUnavailable) as exc:
                log.warning(
                    "change notifications interrupted",
                    extra={"error": str(exc), "retry_in_s": delay},
                )
            finally:
                with contextlib.suppress(RedisError, OSError):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    def _dispatch(self, data: object) -> None:
        if not isinstance(data, bytes):
            return
        if data == SWITCH_MESSAGE:
            self.reader.namespace_switched()
            for feed in self._feeds.values():
                feed.refresh()
            return
        change = parse_change(data)
        if change is not None:
            target = self._feeds.get(change[0])
            if target is not None:
                target.notify(change[1])
