"""Live results fan-out to browsers: one upstream WatchResults stream per watched poll.

The first browser that follows a poll opens the poll's upstream stream; every later one
shares it; the last one to leave closes it. Each snapshot is encoded once (as an SSE
event) and every browser looks only at the latest one: a slow browser skips versions
instead of queueing them, so no buffer grows with it.

When the upstream stream breaks (the query service restarts, the network drops), the
poll's stream reconnects with backoff, resuming after the last version it holds, while
the browsers stay connected. After the FINAL snapshot the upstream stream ends by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from dataclasses import dataclass

import grpc

from gateway.encoding import HEARTBEAT, results_event
from gateway.errors import UpstreamError
from voting.v1 import results_pb2

log = logging.getLogger(__name__)

# (poll id, after_version) -> the poll's snapshots newer than after_version, until FINAL.
Watch = Callable[[str, int], AsyncGenerator[results_pb2.Results, None]]

FIRST_SNAPSHOT_TIMEOUT_S = 10.0
BACKOFF_MIN_S = 0.2
BACKOFF_MAX_S = 5.0


@dataclass(frozen=True, slots=True)
class Snapshot:
    version: int
    final: bool
    event: bytes  # the SSE event, encoded once for every browser


class PollStream:
    """A poll's upstream stream and its latest snapshot, shared by its subscribers."""

    def __init__(self, hub: ResultsHub, poll_id: str) -> None:
        self.poll_id = poll_id
        self.subscribers = 0
        self.latest: Snapshot | None = None
        self.closed = False
        self.upstream_opens = 0
        self._hub = hub
        loop = asyncio.get_running_loop()
        self._changed: asyncio.Future[None] = loop.create_future()
        self._ready: asyncio.Future[None] = loop.create_future()
        self._task = asyncio.create_task(self._run(), name=f"upstream-{poll_id}")

    async def ready(self) -> Snapshot:
        """The first snapshot; raises the UpstreamError that prevented it."""
        await asyncio.shield(self._ready)
        assert self.latest is not None
        return self.latest

    async def events(
        self, after_version: int, *, heartbeat_s: float
    ) -> AsyncGenerator[bytes, None]:
        """What one browser is sent: each snapshot newer than ``after_version`` (its
        Last-Event-ID), a heartbeat after ``heartbeat_s`` of quiet, until FINAL or close.

        Only the latest snapshot is ever sent: while the browser is slow to take the
        previous one, newer versions replace each other instead of queueing.
        """
        shown = after_version
        while True:
            snapshot = self.latest
            assert snapshot is not None, "subscribe first"
            if snapshot.version > shown:
                shown = snapshot.version
                yield snapshot.event
                continue
            if snapshot.final or self.closed:
                return
            if not await self.changed(heartbeat_s):
                yield HEARTBEAT

    async def changed(self, timeout_s: float) -> bool:
        """Waits for a newer snapshot (or the close); False if none came in time."""
        try:
            await asyncio.wait_for(asyncio.shield(self._changed), timeout_s)
        except TimeoutError:
            return False
        return True

    async def close(self) -> None:
        self.closed = True
        self._wake()
        if not self._ready.done():
            self._ready.set_exception(
                UpstreamError(grpc.StatusCode.UNAVAILABLE, "the gateway is shutting down")
            )
            self._ready.exception()
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

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
            self.latest = Snapshot(results.version, results.final, results_event(results))
            self._wake()
        if not self._ready.done():
            self._ready.set_result(None)

    def _wake(self) -> None:
        waiters, self._changed = self._changed, asyncio.get_running_loop().create_future()
        waiters.set_result(None)


class ResultsHub:
    def __init__(self, watch: Watch) -> None:
        self.watch = watch
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
