"""Group commit for unary CastVote: concurrent calls of one caller share one batch.

Each CastVote would otherwise pay alone for what a batch pays once: the shared
request-id claim and completion (a Redis round trip each), the rate-limit check (one
more) and the broker's delivery round. Calls that arrive within ``linger_s`` of the
first pending one, from the same caller, go through :meth:`CommandHandler.cast_votes`
together; each call still gets its own outcome, exactly what it would have got alone
(field paths as CastVote names them, its own receipt), and a caller that gives up
(its deadline passed) leaves the batch to finish, as any CastVotes caller does.

One difference remains, by design: the caller's rate limit is taken for the batch at
once, so a caller at the edge of its budget may see a few more of its concurrent calls
refused than one by one.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from command_svc.authorization import Principal
from command_svc.commands import CommandHandler, VoteOutcome
from voting.v1 import command_service_pb2 as cmd


@dataclass
class _Pending:
    requests: list[cmd.CastVoteRequest] = field(default_factory=list)
    waiters: list[asyncio.Future[VoteOutcome]] = field(default_factory=list)


class VoteBatcher:
    def __init__(self, handler: CommandHandler, *, linger_s: float, max_votes: int) -> None:
        self._handler = handler
        self._linger_s = linger_s
        self._max_votes = max_votes
        self._pending: dict[Principal, _Pending] = {}
        self._flushes: set[asyncio.Task[None]] = set()

    async def cast_vote(self, request: cmd.CastVoteRequest, caller: Principal) -> VoteOutcome:
        if self._linger_s <= 0:
            return (await self._handler.cast_votes([request], caller, receipts=True))[0]
        loop = asyncio.get_running_loop()
        pending = self._pending.get(caller)
        if pending is None:
            pending = self._pending[caller] = _Pending()
            loop.call_later(self._linger_s, self._flush, caller, pending)
        waiter: asyncio.Future[VoteOutcome] = loop.create_future()
        pending.requests.append(request)
        pending.waiters.append(waiter)
        if len(pending.requests) >= self._max_votes:
            self._flush(caller, pending)
        # Shielded: a caller cancelled by its deadline does not cancel the others' batch.
        return await asyncio.shield(waiter)

    def _flush(self, caller: Principal, pending: _Pending) -> None:
        if self._pending.get(caller) is not pending:
            return  # flushed already (it filled up before its timer)
        del self._pending[caller]
        task = asyncio.get_running_loop().create_task(self._run(caller, pending))
        self._flushes.add(task)
        task.add_done_callback(self._flushes.discard)

    async def _run(self, caller: Principal, pending: _Pending) -> None:
        try:
            outcomes = await self._handler.cast_votes(
                pending.requests, caller, receipts=True, paths_in_batch=False
            )
        except BaseException as exc:
            for waiter in pending.waiters:
                if not waiter.done():
                    waiter.set_exception(exc)
                    # Retrieved even when its caller has gone (cancelled by its deadline).
                    waiter.add_done_callback(_retrieved)
            if not isinstance(exc, Exception):
                raise
            return
        for waiter, outcome in zip(pending.waiters, outcomes, strict=True):
            if not waiter.done():
                waiter.set_result(outcome)


def _retrieved(future: asyncio.Future[VoteOutcome]) -> None:
    if not future.cancelled():
        future.exception()
