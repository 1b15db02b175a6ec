"""Remembers the acknowledgement of every vote command that carried a request id.

A retried command (same poll, voter and request id, hence the same vote id) gets the
first acknowledgement back and appends nothing; a concurrent duplicate waits for the
first one's outcome. The ledger is per process and bounded (size and age). A retry that
reaches another process, or comes after eviction, is appended again with the SAME vote
id, and the dedup worker treats a repeated vote id as the vote it already decided:
nothing is counted twice either way.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from dataclasses import dataclass

from command_svc.errors import RequestIdReused


@dataclass(frozen=True, slots=True)
class Ack:
    vote_id: str
    partition: int
    offset: int
    received_at_ms: int
    option_id: str
    poll_id: str


class RequestLedger:
    def __init__(self, *, ttl_s: float, capacity: int) -> None:
        self._ttl_s = ttl_s
        self._capacity = capacity
        self._done: OrderedDict[str, tuple[float, Ack]] = OrderedDict()
        self._in_flight: dict[str, tuple[str, asyncio.Future[Ack | None]]] = {}

    async def claim(self, vote_id: str, option_id: str, request_id: str) -> Ack | None:
        """The earlier acknowledgement of this command, or None if the caller must append it.

        After None, the caller must call :meth:`complete` or :meth:`release`.
        """
        while True:
            done = self._done.get(vote_id)
            if done is not None:
                expires, ack = done
                if expires > time.monotonic():
                    if ack.option_id != option_id:
                        raise RequestIdReused(request_id)
                    return ack
                del self._done[vote_id]
            flight = self._in_flight.get(vote_id)
            if flight is None:
                self._in_flight[vote_id] = (option_id, asyncio.get_running_loop().create_future())
                return None
            if flight[0] != option_id:
                raise RequestIdReused(request_id)
            earlier: Ack | None = await asyncio.shield(flight[1])
            if earlier is not None:
                return earlier
            # The first attempt failed; loop to claim it ourselves.

    def complete(self, ack: Ack) -> None:
        flight = self._in_flight.pop(ack.vote_id, None)
        self._done[ack.vote_id] = (time.monotonic() + self._ttl_s, ack)
        self._done.move_to_end(ack.vote_id)
        while len(self._done) > self._capacity:
            self._done.popitem(last=False)
        if flight is not None and not flight[1].done():
            flight[1].set_result(ack)

    def release(self, vote_id: str) -> None:
        flight = self._in_flight.pop(vote_id, None)
        if flight is not None and not flight[1].done():
            flight[1].set_result(None)
