"""The gRPC face of the read side."""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import grpc
from opentelemetry.trace import SpanKind, Status, StatusCode

from query_svc.access import Access
from query_svc.errors import (
    InvalidQuery,
    NotYetConsistent,
    ReadModelUnavailable,
    ShuttingDown,
    VersionOutOfRange,
    VoteNotFound,
)
from query_svc.feeds import Feed, FeedHub
from query_svc.metrics import SUBSCRIBERS
from query_svc.read_model import ReadModelReader
from voting import status, telemetry
from voting.errors import PollNotFound, ServiceError, Unauthenticated, VotingError
from voting.identity import POLL_ID, VOTE_ID
from voting.polls import PollCache, now_ms
from voting.readmodel import VoteStatus
from voting.receipts import InvalidReceipt, ReceiptVerifier
from voting.v1 import consistency_pb2, poll_pb2, vote_pb2
from voting.v1 import query_service_pb2 as q

log = logging.getLogger(__name__)

Context = grpc.aio.ServicerContext[Any, Any]
DEFAULT_MAX_WAIT_S = 30.0
# A resumed stream's after_version may be a little ahead of this replica's clock (it came
# from another replica); one further ahead than this was never sent by this service.
FUTURE_VERSION_TOLERANCE_MS = 60_000
DEFAULT_PAGE = 50
MAX_PAGE = 200


class QueryService:
    def __init__(
        self,
        reader: ReadModelReader,
        hub: FeedHub,
        *,
        access: Access,
        receipts: ReceiptVerifier,
        polls: PollCache,
        partitions: int,
        max_wait_s: float = DEFAULT_MAX_WAIT_S,
    ) -> None:
        self._reader = reader
        self._hub = hub
        self._access = access
        self._receipts = receipts
        self._polls = polls
        self._partitions = partitions
        self._max_wait_s = max_wait_s

    async def GetPoll(self, request: q.GetPollRequest, context: Context) -> q.GetPollResponse:
        try:
            claims = self._access.caller(context.invocation_metadata() or ())
            _check_poll_id(request.poll_id)
            await self._access.check_poll(request.poll_id, claims)
            return q.GetPollResponse(poll=await self._poll(request.poll_id))
        except ServiceError as exc:
            await status.abort(context, exc.status())

    async def _poll(self, poll_id: str) -> poll_pb2.Poll:
        """From the read model; from the source of truth when the read model does not have
        it yet (read-your-writes right after CreatePoll) or cannot be reached."""
        try:
            return await self._reader.poll(poll_id)
        except (PollNotFound, ReadModelUnavailable) as missed:
            try:
                stored = await self._polls.get(poll_id, recheck_unknown=True)
            except VotingError:
                raise missed from None
            if stored is None:
                raise PollNotFound(poll_id, f"there is no poll {poll_id!r}") from None
            return stored.to_proto(now_ms())

    async def ListPolls(self, request: q.ListPollsRequest, context: Context) -> q.ListPollsResponse:
        try:
            claims = self._access.caller(context.invocation_metadata() or ())
            if not 0 <= request.page_size <= MAX_PAGE:
                raise InvalidQuery([("page_size", f"0 to {MAX_PAGE}")])
            cursor = _decode_page_token(request.page_token) if request.page_token else None
            polls, next_cursor = await self._reader.list_polls(
                limit=request.page_size or DEFAULT_PAGE, before=cursor
            )
            shown = await self._access.visible(polls, claims)
        except ServiceError as exc:
            await status.abort(context, exc.status())
        # A page may hold fewer polls than asked for (private ones left out); only an
        # empty next_page_token means the last page.
        reply = q.ListPollsResponse(polls=[p for p, ok in zip(polls, shown, strict=True) if ok])
        if next_cursor is not None:
            reply.next_page_token = _encode_page_token(next_cursor)
        return reply

    async def GetResults(
        self, request: q.GetResultsRequest, context: Context
    ) -> q.GetResultsResponse:
        try:
            claims = self._access.caller(context.invocation_metadata() or ())
            _check_poll_id(request.poll_id)
            if request.HasField("consistency_token"):
                self._check_token(request.consistency_token)
            await self._access.check_poll(request.poll_id, claims)
            if request.HasField("consistency_token") and not await self._reader.wait_for(
                request.poll_id, request.consistency_token, timeout_s=self._budget(context)
            ):
                raise NotYetConsistent("the projection has not reached the token's position yet")
            return q.GetResultsResponse(results=await self._reader.results(request.poll_id))
        except ServiceError as exc:
            await status.abort(context, exc.status())

    async def GetVoteStatus(
        self, request: q.GetVoteStatusRequest, context: Context
    ) -> q.GetVoteStatusResponse:
        try:
            # Who asks comes first: without a token the answer is the same whether or not
            # the vote exists, so nobody learns which vote ids are real.
            claims = self._access.caller(context.invocation_metadata() or ())
            if self._access.checks_tokens and claims is None:
                raise Unauthenticated(
                    "MISSING_TOKEN", "a vote's status is told to its voter: send a bearer token"
                )
            _check_poll_id(request.poll_id)
            if not VOTE_ID.fullmatch(request.vote_id):
                raise InvalidQuery([("vote_id", "a vote id as returned by CastVote")])
            if request.HasField("consistency_token"):
                self._check_token(request.consistency_token)
            found = await self._vote_status(request)
            if found is None and request.HasField("consistency_token"):
                reached = await self._reader.wait_for(
                    request.poll_id, request.consistency_token, timeout_s=self._budget(context)
                )
                if not reached:
                    return q.GetVoteStatusResponse(
                        poll_id=request.poll_id,
                        vote_id=request.vote_id,
                        state=vote_pb2.VOTE_STATE_PENDING,
                    )
                found = await self._vote_status(request)
                if found is None:
                    raise VoteNotFound(
                        request.vote_id,
                        "the projection passed the vote's position without a decision for it",
                    )
            if found is None:
                raise VoteNotFound(
                    request.vote_id,
                    "no decision is known for this vote in this poll (yet); "
                    "pass the consistency token to wait for it",
                )
            self._access.check_vote_owner(claims, found.voter_key)
            counted = (
                self._counted_as_cast(request, found) if request.HasField("receipt") else False
            )
        except ServiceError as exc:
            await status.abort(context, exc.status())
        reply = q.GetVoteStatusResponse(
            poll_id=request.poll_id,
            vote_id=request.vote_id,
            state=found.state,  # type: ignore[arg-type]
            reason=found.reason,  # type: ignore[arg-type]
            option_id=found.option_id,
            counted_as_cast=counted,
            counted_vote_id=found.accepted_vote_id,
        )
        reply.decided_at.FromMilliseconds(found.decided_at_ms)
        return reply

    async def _vote_status(self, request: q.GetVoteStatusRequest) -> VoteStatus | None:
        found = await self._reader.vote_status(request.vote_id)
        # Decisions written before statuses named their poll match any poll id.
        if found is not None and found.poll_id and found.poll_id != request.poll_id:
            return None
        return found

    def _check_token(self, token: consistency_pb2.ConsistencyToken) -> None:
        """A token no CastVote returned is refused at once, never waited for."""
        position = token.position
        if position.offset < 0 or not 0 <= position.partition < self._partitions:
            raise InvalidQuery(
                [
                    (
                        "consistency_token",
                        f"not a token returned by CastVote (the log has partitions "
                        f"0 to {self._partitions - 1})",
                    )
                ]
            )

    def _budget(self, context: Context) -> float:
        """How long a wait may last: the call's deadline, and never more than the
        server's bound (a call without a deadline included)."""
        # None when the caller set no deadline (the type stubs say float).
        remaining: float | None = context.time_remaining()
        if remaining is None:
            return self._max_wait_s
        return max(0.0, min(remaining - 0.05, self._max_wait_s))

    def _counted_as_cast(self, request: q.GetVoteStatusRequest, found: VoteStatus) -> bool:
        """Whether the vote the receipt vouches for was counted for the option it names."""
        receipt = request.receipt
        try:
            self._receipts.verify(receipt)
        except InvalidReceipt as exc:
            raise InvalidQuery([("receipt", str(exc))]) from exc
        if receipt.vote_id != request.vote_id or receipt.poll_id != request.poll_id:
            raise InvalidQuery([("receipt", "the receipt is for another vote")])
        return found.state == vote_pb2.VOTE_STATE_ACCEPTED and self._receipts.names_option(
            receipt, found.option_id
        )

    async def WatchResults(
        self, request: q.WatchResultsRequest, context: Context
    ) -> AsyncIterator[bytes]:
        """Yields serialized WatchResultsResponse messages, shared by every subscriber.

        Nothing here runs per push that can run once per version: the feed serializes,
        counts and times each snapshot once for all its subscribers.

        The subscription's set-up gets a span (until the first snapshot is sent); the
        stream itself never does: it may live for hours.
        """
        setup = telemetry.tracer().start_span(
            "WatchResults subscribe", kind=SpanKind.SERVER, attributes={"poll_id": request.poll_id}
        )
        try:
            claims = self._access.caller(context.invocation_metadata() or ())
            _check_poll_id(request.poll_id)
            if request.after_version > now_ms() + FUTURE_VERSION_TOLERANCE_MS:
                raise VersionOutOfRange(
                    f"after_version {request.after_version} is a version from the future: "
                    "versions are the milliseconds since the epoch of the change they show"
                )
            await self._access.check_poll(request.poll_id, claims)
            feed = await self._feed(request.poll_id, self._budget(context))
        except ServiceError as exc:
            setup.set_status(Status(StatusCode.ERROR, str(exc)))
            setup.end()
            await status.abort(context, exc.status())
        SUBSCRIBERS.inc()
        set_up = False
        try:
            shown = request.after_version
            snapshot = feed.latest
            while snapshot is not None:
                if snapshot.version > shown:
                    yield snapshot.payload
                    shown = snapshot.version
                    if not set_up:
                        set_up = True
                        setup.end()
                if snapshot.final:
                    return
                try:
                    snapshot = await feed.newer_than(shown)
                except ShuttingDown as exc:
                    await status.abort(context, exc.status())
        finally:
            SUBSCRIBERS.dec()
            self._hub.release(feed)
            if not set_up:
                setup.end()

    async def _feed(self, poll_id: str, budget_s: float) -> Feed:
        """The poll's feed. A poll the polls table has but the read model does not yet
        (created a moment ago) is waited for, within the wait bound."""
        deadline = time.monotonic() + budget_s
        delay = 0.05
        known = False
        while True:
            try:
                return await self._hub.acquire(poll_id)
            except PollNotFound:
                if not known:
                    try:
                        known = await self._polls.get(poll_id, recheck_unknown=True) is not None
                    except VotingError:
                        known = False
                if not known or time.monotonic() + delay > deadline:
                    raise
                await asyncio.sleep(delay)
                delay = min(delay * 2, 0.5)


def _check_poll_id(poll_id: str) -> None:
    if not POLL_ID.fullmatch(poll_id):
        raise InvalidQuery(
            [("poll_id", "1 to 64 characters of [a-z0-9_-], starting with a letter or digit")]
        )


def _encode_page_token(cursor: tuple[int, str]) -> str:
    return base64.urlsafe_b64encode(f"{cursor[0]}:{cursor[1]}".encode()).decode()


def _decode_page_token(token: str) -> tuple[int, str]:
    try:
        score, poll_id = base64.urlsafe_b64decode(token.encode()).decode().split(":", 1)
        return int(score), poll_id
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise InvalidQuery([("page_token", "not a token returned by ListPolls")]) from exc
