"""Who may follow a poll's live results: the query service decides, once per crowd.

A browser that opens a poll's event stream is admitted by a GetResults call carrying its
own ``Authorization``, so the query service applies its rules to every browser. A crowd
that arrives at once (a poll shown on television) would cost the query service one call
per browser and queue each browser's first snapshot behind all of them (10,000 browsers
took 15 s to get theirs, and some got 503). Two rules make it one call per crowd:

- concurrent checks of the same poll and ``Authorization`` share one call;
- once an anonymous browser was admitted to a poll, so is every later anonymous one: a
  poll's visibility is fixed when it is created, so that answer cannot change.

Refusals are never remembered (the poll may be created a moment later), and neither are
the answers for a token, which may expire or be one the query service stops trusting.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable

Check = Callable[[str, str | None], Awaitable[object]]

REMEMBERED_POLLS = 100_000


class Admission:
    def __init__(self, check: Check, *, remembered: int = REMEMBERED_POLLS) -> None:
        self._check = check
        self._public: OrderedDict[str, None] = OrderedDict()
        self._remembered = remembered
        self._pending: dict[tuple[str, str | None], asyncio.Task[object]] = {}
        self.calls = 0  # checks sent to the query service

    async def admit(self, poll_id: str, authorization: str | None) -> None:
        """Returns when the browser may follow ``poll_id``; raises the query service's
        refusal (an ``UpstreamError``) otherwise."""
        if authorization is None and poll_id in self._public:
            self._public.move_to_end(poll_id)
            return
        key = (poll_id, authorization)
        task = self._pending.get(key)
        if task is None:
            task = self._pending[key] = asyncio.ensure_future(self._ask(poll_id, authorization))
            task.add_done_callback(lambda done: self._settled(key, done))
        # Shielded: a browser that hangs up while waiting must not cancel the answer the
        # rest of the crowd is waiting for.
        await asyncio.shield(task)

    async def _ask(self, poll_id: str, authorization: str | None) -> object:
        self.calls += 1
        return await self._check(poll_id, authorization)

    def _settled(self, key: tuple[str, str | None], task: asyncio.Task[object]) -> None:
        if self._pending.get(key) is task:
            del self._pending[key]
        if task.cancelled() or task.exception() is not None:
            return  # retrieved, so an answer no browser waited for is not logged as lost
        poll_id, authorization = key
        if authorization is None:
            self._public[poll_id] = None
            self._public.move_to_end(poll_id)
            while len(self._public) > self._remembered:
                self._public.popitem(last=False)
