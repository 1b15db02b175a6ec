"""A crowd of browsers joining a poll's live results costs the query service one check."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from gateway.admission import Admission
from gateway.errors import UpstreamError

pytestmark = pytest.mark.unit


class QueryService:
    """Answers GetResults checks after a delay; refuses the polls it is told to."""

    def __init__(self, *, refuse: set[str] | None = None, delay_s: float = 0.01) -> None:
        self.calls: list[tuple[str, str | None]] = []
        self.refuse = refuse or set()
        self.delay_s = delay_s

    async def check(self, poll_id: str, authorization: str | None) -> object:
        self.calls.append((poll_id, authorization))
        await asyncio.sleep(self.delay_s)
        if poll_id in self.refuse:
            raise UpstreamError(grpc.StatusCode.NOT_FOUND, f"poll {poll_id} not found")
        return object()


def test_a_crowd_of_anonymous_browsers_is_admitted_by_one_check() -> None:
    async def main() -> None:
        upstream = QueryService()
        admission = Admission(upstream.check)
        await asyncio.gather(*(admission.admit("p1", None) for _ in range(1_000)))
        await admission.admit("p1", None)  # later: remembered, no call
        assert upstream.calls == [("p1", None)]

    asyncio.run(main())


def test_a_refusal_is_given_to_every_waiter_and_never_remembered() -> None:
    async def main() -> None:
        upstream = QueryService(refuse={"p1"})
        admission = Admission(upstream.check)
        outcomes = await asyncio.gather(
            *(admission.admit("p1", None) for _ in range(10)), return_exceptions=True
        )
        assert all(isinstance(o, UpstreamError) for o in outcomes)
        assert len(upstream.calls) == 1
        upstream.refuse.clear()  # the poll was created a moment later
        await admission.admit("p1", None)
        assert len(upstream.calls) == 2

    asyncio.run(main())


def test_a_token_is_checked_on_every_join_and_never_shares_an_anonymous_answer() -> None:
    async def main() -> None:
        upstream = QueryService()
        admission = Admission(upstream.check)
        await admission.admit("p1", None)
        await admission.admit("p1", "Bearer a")
        await admission.admit("p1", "Bearer a")
        # Concurrent joins with the same token share one call; other tokens do not.
        await asyncio.gather(admission.admit("p1", "Bearer a"), admission.admit("p1", "Bearer a"))
        await admission.admit("p1", "Bearer b")
        assert upstream.calls == [
            ("p1", None),
            ("p1", "Bearer a"),
            ("p1", "Bearer a"),
            ("p1", "Bearer a"),
            ("p1", "Bearer b"),
        ]

    asyncio.run(main())


def test_a_browser_that_hangs_up_while_waiting_does_not_cancel_the_crowds_answer() -> None:
    async def main() -> None:
        upstream = QueryService(delay_s=0.05)
        admission = Admission(upstream.check)
        leaver = asyncio.create_task(admission.admit("p1", None))
        stayer = asyncio.create_task(admission.admit("p1", None))
        await asyncio.sleep(0.01)
        leaver.cancel()
        await stayer
        assert leaver.cancelled()
        assert len(upstream.calls) == 1

    asyncio.run(main())


def test_the_remembered_polls_are_bounded() -> None:
    async def main() -> None:
        upstream = QueryService(delay_s=0)
        admission = Admission(upstream.check, remembered=2)
        for poll in ("p1", "p2", "p3"):
            await admission.admit(poll, None)
        await admission.admit("p1", None)  # the oldest was forgotten: asked again
        assert [poll for poll, _ in upstream.calls] == ["p1", "p2", "p3", "p1"]

    asyncio.run(main())
