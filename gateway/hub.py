"""Live results fan-out to browsers: one upstream WatchResults stream per watched poll,
and one broadcaster per poll that writes each snapshot to every browser.

The first browser that follows a poll opens the poll's upstream stream; every later one
shares it; the last one to leave closes it. Each snapshot is encoded once (as an SSE
event, already framed as an HTTP chunk) and the poll's stream writes those bytes straight
to every browser's transport as the snapshot arrives: no task, generator or timer per
browser runs per push. A browser whose socket buffer is full is skipped and gets the
latest snapshot once its buffer drains, so it holds at most one event in memory however
far behind it is. Heartbeats and those catch-ups come from one timer per poll.

When the upstream stream breaks (the query service restarts, the network drops), the
poll's stream reconnects with backoff, resuming after the last version it holds, while
the browsers stay connected. After the FINAL snapshot the upstream stream ends by itself
and so does every browser's response.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from dataclasses import dataclass
from typing import Protocol

import grpc

from gateway.encoding import HEARTBEAT, chunk, results_event
from gateway.errors import UpstreamError
from voting.v1 import results_pb2

log = logging.getLogger(__name__)

# (poll id, after_version) -> the poll's snapshots newer than after_version, until FINAL.
Watch = Callable[[str, int], AsyncGenerator[results_pb2.Results, None]]

FIRST_SNAPSHOT_TIMEOUT_S = 10.0
BACKOFF_MIN_S = 0.2
BACKOFF_MAX_S = 5.0
# How often a poll's broadcaster looks at browsers it skipped (and at the heartbeat).
TEND_S = 0.1


@dataclass(frozen=True, slots=True)
class Snapshot:
    version: int
    final: bool
    event: bytes  # the SSE event, encoded once for every browser
    chunk: bytes  # the same event framed as one HTTP/1.1 chunk


class Sink(Protocol):
    """What a follower is written to: an asyncio transport."""

    def write(self, data: bytes) -> None: ...

    def get_write_buffer_size(self) -> int: ...

    def is_closing(self) -> bool: ...


class Follower:
    """One browser following a poll. ``ended`` resolves True after FINAL was written,
    False when the stream ends otherwise (the gateway closes, the browser went away)."""

    __slots__ = ("chunked", "ended", "shown", "sink")

    def __init__(self, sink: Sink, *, shown: int, chunked: bool) -> None:
        self.sink = sink
        self.shown = shown
        self.chunked = chunked
        self.ended: asyncio.Future[bool] = asyncio.get_running_loop().create_future()

    def send(self, snapshot: Snapshot) -> None:
        self.sink.write(snapshot.chunk if self.chunked else snapshot.event)
        self.shown = snapshot.version

    def end(self, final: bool) -> None:
        if not self.ended.done():
            self.ended.set_result(final)


class PollStream:
    """A poll's upstream stream, its latest snapshot and the browsers that follow it."""

    def __init__(self, hub: ResultsHub, poll_id: str) -> None:
        self.poll_id = poll_id
        self.subscribers = 0
        self.latest: Snapshot | None = None
        self.closed = False
        self.upstream_opens = 0
        self.followers: set[Follower] = set()
        self._behind: set[Follower] = set()  # skipped: their buffer was full
        self._hub = hub
        self._quiet_since = time.monotonic()
        self._ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._task = asyncio.create_task(self._run(), name=f"upstream-{poll_id}")
        self._tender = asyncio.create_task(self._tend(), name=f"tend-{poll_id}")

    async def ready(self) -> Snapshot:
        """The first snapshot; raises the UpstreamError that prevented it."""
        await asyncio.shield(self._ready)
        assert self.latest is not None
        return self.latest

    def follow(self, sink: Sink, *, shown: int, chunked: bool = True) -> Follower:
        """Adds a browser that holds version ``shown``: from now on the broadcaster writes
        it every newer snapshot, until FINAL or close (see :attr:`Follower.ended`)."""
        follower = Follower(sink, shown=shown, chunked=chunked)
        if self.closed:
            follower.end(final=False)
            return follower
        self.followers.add(follower)
        latest = self.latest
        # FINAL may carry the version the browser holds (the recount confirmed it).
        if latest is not None and (latest.version > shown or latest.final):
            self._offer(follower, latest)
        return follower

    def unfollow(self, follower: Follower) -> None:
        self.followers.discard(follower)
        self._behind.discard(follower)
        follower.end(final=False)

    async def close(self) -> None:
        self.closed = True
        for follower in list(self.followers):
            self.unfollow(follower)
        if not self._ready.done():
            self._ready.set_exception(
                UpstreamError(grpc.StatusCode.UNAVAILABLE, "the gateway is shutting down")
            )
            self._ready.exception()
        for task in (self._task, self._tender):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        delay = BACKOFF_MIN_S
        while True:
            after = self.latest.version if self.latest is not None else 0
            self.upstream_opens += 1
            try:
                async with contextlib.aclosing(self._hub.watch(self.poll_id, after)) as stream:
                    async for results in stream:
                        self._publish(results)
                        delay = BACKOFF_MIN_S
                        if results.final:
                            return
                error = UpstreamError(grpc.StatusCode.UNAVAILABLE, "the stream ended early")
            except UpstreamError as exc:
                error = exc
            if not self._ready.done():
                # Nobody holds a snapshot yet: tell the waiting browsers now (an unknown
                # poll is a 404, an unreachable query service a 503) instead of hanging.
                self._ready.set_exception(error)
                self._ready.exception()
                return
            log.warning(
                "upstream stream interrupted; reconnecting",
                extra={"poll_id": self.poll_id, "error": str(error), "retry_in_s": delay},
            )
            await asyncio.sleep(delay)
            delay = min(delay * 2, BACKOFF_MAX_S)

    def _publish(self, results: results_pb2.Results) -> None:
        if self.latest is None or results.version > self.latest.version or results.final:
            event = results_event(results)
            snapshot = Snapshot(results.version, results.final, event, chunk(event))
            self.latest = snapshot
            self._quiet_since = time.monotonic()
            for follower in list(self.followers):
                self._offer(follower, snapshot)
        if not self._ready.done():
            self._ready.set_result(None)

    def _offer(self, follower: Follower, snapshot: Snapshot) -> None:
        """Writes ``snapshot`` to ``follower`` unless its buffer is still full (then it
        waits, skipped, for :meth:`_tend`). FINAL is always written, and ends it."""
        sink = follower.sink
        if sink.is_closing():
            self.unfollow(follower)
        elif snapshot.final:
            follower.send(snapshot)
            self.followers.discard(follower)
            self._behind.discard(follower)
            follower.end(final=True)
        elif sink.get_write_buffer_size() > 0:
            # The kernel took no more of the last write: this browser reads slower than
            # the poll changes. Queueing would grow without bound; it gets the latest.
            self._behind.add(follower)
        else:
            follower.send(snapshot)
            self._behind.discard(follower)

    async def _tend(self) -> None:
        """Catches up skipped browsers once their buffer drains; heartbeats when quiet."""
        while True:
            await asyncio.sleep(TEND_S)
            latest = self.latest
            if latest is not None and self._behind:
                for follower in list(self._behind):
                    if follower.shown < latest.version:
                        self._offer(follower, latest)
                    else:
                        self._behind.discard(follower)
            if time.monotonic() - self._quiet_since >= self._hub.heartbeat_s:
                self._quiet_since = time.monotonic()
                for follower in list(self.followers):
                    if follower.sink.is_closing():
                        self.unfollow(follower)
                    elif follower.sink.get_write_buffer_size() == 0:
                        follower.sink.write(chunk(HEARTBEAT) if follower.chunked else HEARTBEAT)


class ResultsHub:
    def __init__(self, watch: Watch, *, heartbeat_s: float) -> None:
        self.watch = watch
        self.heartbeat_s = heartbeat_s
        self._streams: dict[str, PollStream] = {}
        self._closing = False

    @property
    def polls(self) -> int:
        """Polls with an upstream stream (or one starting)."""
        return len(self._streams)

    @property
    def subscribers(self) -> int:
        return sum(s.subscribers for s in self._streams.values())

    def stream(self, poll_id: str) -> PollStream | None:
        return self._streams.get(poll_id)

    @contextlib.asynccontextmanager
    async def subscription(self, poll_id: str) -> AsyncIterator[PollStream]:
        """Follows ``poll_id`` while the block runs; the stream holds its first snapshot."""
        if self._closing:
            raise UpstreamError(grpc.StatusCode.UNAVAILABLE, "the gateway is shutting down")
        stream = self._streams.get(poll_id)
        if stream is None:
            stream = self._streams[poll_id] = PollStream(self, poll_id)
        stream.subscribers += 1
        try:
            try:
                await asyncio.wait_for(stream.ready(), FIRST_SNAPSHOT_TIMEOUT_S)
            except TimeoutError:
                raise UpstreamError(
                    grpc.StatusCode.DEADLINE_EXCEEDED, "no snapshot from the query service in time"
                ) from None
            yield stream
        finally:
            stream.subscribers -= 1
            if stream.subscribers <= 0 and self._streams.get(poll_id) is stream:
                del self._streams[poll_id]
                await stream.close()

    async def close(self) -> None:
        """Ends every subscription (their browsers reconnect elsewhere) and every stream."""
        self._closing = True
        streams = list(self._streams.values())
        self._streams.clear()
        for stream in streams:
            await stream.close()
