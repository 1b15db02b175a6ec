"""Keeps polls moving: closes polls whose closing time has come and re-publishes poll
events a crashed command process left unpublished (the polls table is their outbox).

Every command process runs it; all its actions are idempotent, so they may race.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from command_svc.commands import CommandHandler
from command_svc.ports import PollStore
from voting import telemetry
from voting.errors import ServiceError
from voting.polls import CLOSED, OPEN, now_ms

log = logging.getLogger(__name__)

SWEEP_REQUEST_ID = "scheduled-close"


class PollLifecycle:
    def __init__(self, store: PollStore, handler: CommandHandler, *, interval_s: float) -> None:
        self._store = store
        self._handler = handler
        self._interval_s = interval_s

    async def run(self) -> None:
        with telemetry.background():
            while True:
                with contextlib.suppress(ServiceError):
                    await self.sweep()
                await asyncio.sleep(self._interval_s)

    async def sweep(self) -> None:
        now = now_ms()
        for poll in await self._store.needing_attention(now):
            try:
                if (
                    poll.status == OPEN
                    and poll.closes_at_ms is not None
                    and poll.closes_at_ms <= now
                ):
                    await self._handler.close(poll.poll_id, SWEEP_REQUEST_ID)
                    log.info("closed poll at its closing time", extra={"poll_id": poll.poll_id})
                    continue
                if not poll.created_published:
                    await self._handler.publish_created(poll)
                if poll.status == CLOSED and not poll.closed_published:
                    await self._handler.publish_closed(poll)
            except ServiceError as exc:
                log.warning(
                    "poll lifecycle step failed", extra={"poll_id": poll.poll_id, "error": str(exc)}
                )
