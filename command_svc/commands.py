"""The command side's application layer: validate, then append, then acknowledge.

Every vote goes through the same steps, in this order, and stops at the first failure:
structure, business rules (against the cached poll model), authorization, idempotency.
Only votes that pass every step are appended, and a vote is acknowledged only once the
broker has acknowledged its record. A failed command appends nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass

import grpc

from command_svc import validation
from command_svc.appender import EventAppender
from command_svc.authorization import Authorizer, Principal
from command_svc.errors import (
    CommandError,
    InvalidCommand,
    OptionNotFound,
    Overloaded,
    PollAlreadyExists,
    PollNotFound,
    PollNotOpen,
    RateLimited,
    RequestIdReused,
    Unavailable,
)
from command_svc.idempotency import Ack, RequestLedger
from command_svc.metrics import VOTES_REFUSED
from command_svc.polls import PollStore
from command_svc.ratelimit import TokenBuckets
from voting.dynamodb import ledger_shard
from voting.errors import DeliveryError
from voting.events import new_event_id
from voting.identity import VoterKeys, stable_id, vote_id_for
from voting.polls import PRIVATE, PUBLIC, PollCache, PollModel, now_ms
from voting.receipts import ReceiptSigner, option_digest
from voting.v1 import command_service_pb2 as cmd
from voting.v1 import consistency_pb2, events_pb2, poll_pb2

log = logging.getLogger(__name__)

_CODE_NAMES = {code.value[0]: code.name for code in grpc.StatusCode}

VoteOutcome = cmd.CastVoteResponse | CommandError


@dataclass(frozen=True, kw_only=True)
class CommandLimits:
    max_batch: int = 1000
    max_inflight_votes: int = 100_000
    ledger_shards: int = 16


@dataclass(slots=True)
class _Pending:
    index: int
    vote: events_pb2.VoteCast
    claimed: bool


class CommandHandler:
    def __init__(
        self,
        *,
        store: PollStore,
        cache: PollCache,
        appender: EventAppender,
        authorizer: Authorizer,
        ledger: RequestLedger,
        voter_keys: VoterKeys,
        limits: CommandLimits,
        voter_limits: TokenBuckets,
        client_limits: TokenBuckets,
        receipts: ReceiptSigner | None = None,
    ) -> None:
        self._store = store
        self._cache = cache
        self._appender = appender
        self._authorizer = authorizer
        self._ledger = ledger
        self._keys = voter_keys
        self._limits = limits
        self._voter_limits = voter_limits
        self._client_limits = client_limits
        self._receipts = receipts
        self._inflight_votes = 0

    # -- polls -------------------------------------------------------------------------

    async def create_poll(
        self, request: cmd.CreatePollRequest, caller: Principal
    ) -> cmd.CreatePollResponse:
        now = now_ms()
        violations = validation.create_poll(request, now // 1000)
        if violations:
            raise InvalidCommand(violations)
        self._authorizer.authorize_admin(caller)
        poll = PollModel(
            poll_id=request.poll_id,
            title=request.title,
            options=tuple((o.option_id, o.label) for o in request.options),
            status="OPEN",
            created_at_ms=now,
            ledger_shards=self._limits.ledger_shards,
            create_request_id=request.request_id,
            opens_at_ms=request.opens_at.ToMilliseconds() if request.HasField("opens_at") else None,
            closes_at_ms=request.closes_at.ToMilliseconds()
            if request.HasField("closes_at")
            else None,
            visibility=PRIVATE if request.visibility == poll_pb2.VISIBILITY_PRIVATE else PUBLIC,
        )
        stored, created = await self._store.create(poll)
        if not created and stored.create_request_id != request.request_id:
            raise PollAlreadyExists(request.poll_id)
        if not stored.created_published:
            await self.publish_created(stored)
        self._cache.put(stored)
        reply = cmd.CreatePollResponse(poll_id=stored.poll_id)
        reply.created_at.FromMilliseconds(stored.created_at_ms)
        return reply

    async def close_poll(
        self, request: cmd.ClosePollRequest, caller: Principal
    ) -> cmd.ClosePollResponse:
        violations = validation.close_poll(request)
        if violations:
            raise InvalidCommand(violations)
        self._authorizer.authorize_admin(caller)
        poll = await self.close(request.poll_id, request.request_id)
        reply = cmd.ClosePollResponse(poll_id=poll.poll_id)
        reply.closed_at.FromMilliseconds(poll.closed_at_ms or 0)
        return reply

    async def close(self, poll_id: str, request_id: str) -> PollModel:
        """Closes a poll (or finds it closed) and makes sure its close is published."""
        poll, _ = await self._store.close(poll_id, request_id, now_ms())
        self._cache.put(poll)
        if not poll.closed_published:
            await self.publish_closed(poll)
        return poll

    async def publish_created(self, poll: PollModel) -> None:
        event = events_pb2.PollCreated(
            event_id=stable_id("poll-created", poll.poll_id),
            poll=poll.to_proto(poll.created_at_ms),
            request_id=poll.create_request_id,
            ledger_shards=poll.ledger_shards,
        )
        event.occurred_at.FromMilliseconds(poll.created_at_ms)
        await self._append(self._appender.append_poll_created(event), "PollCreated")
        await self._store.mark_published(poll.poll_id, "created_published")

    async def publish_closed(self, poll: PollModel) -> None:
        event = events_pb2.PollClosed(
            event_id=stable_id("poll-closed", poll.poll_id),
            poll_id=poll.poll_id,
            request_id=poll.close_request_id,
        )
        event.occurred_at.FromMilliseconds(poll.closed_at_ms or now_ms())
        await self._append(self._appender.append_poll_closed(event), "PollClosed")
        await self._store.mark_published(poll.poll_id, "closed_published")

    @staticmethod
    async def _append(append: Awaitable[None], what: str) -> None:
        try:
            await append
        except DeliveryError as exc:
            raise Unavailable(f"the event log did not take {what}: {exc}") from exc

    # -- votes -------------------------------------------------------------------------

    async def cast_votes(
        self, requests: Sequence[cmd.CastVoteRequest], caller: Principal, *, receipts: bool = False
    ) -> list[VoteOutcome]:
        """One outcome per request, in order: an acknowledgement or the reason it failed."""
        now = now_ms()
        outcomes: list[VoteOutcome | None] = [None] * len(requests)
        pending: list[_Pending] = []
        first_in_batch: dict[str, tuple[int, str]] = {}
        repeats: list[tuple[int, int]] = []
        polls: dict[str, PollModel | CommandError] = {}
        prefix = "requests[{}]." if len(requests) > 1 else ""
        checked: list[tuple[int, cmd.CastVoteRequest, PollModel, str]] = []
        for index, request in enumerate(requests):
            try:
                poll = await self._validate(request, polls, caller, now, prefix.format(index))
            except CommandError as exc:
                outcomes[index] = exc
                continue
            checked.append((index, request, poll, self._keys.key(request.voter_id)))
        limited = await self._rate_limit(caller, [(i, key) for i, _, _, key in checked])
        for index, request, poll, voter_key in checked:
            if index in limited:
                outcomes[index] = limited[index]
                continue
            vote_id = vote_id_for(request.poll_id, voter_key, request.request_id)
            earlier = first_in_batch.get(vote_id)
            if earlier is not None:
                outcomes[index] = (
                    RequestIdReused(request.request_id) if earlier[1] != request.option_id else None
                )
                repeats.append((index, earlier[0]))
                continue
            first_in_batch[vote_id] = (index, request.option_id)
            claimed = bool(request.request_id)
            if claimed:
                try:
                    ack = await self._ledger.claim(vote_id, request.option_id, request.request_id)
                except CommandError as exc:
                    outcomes[index] = exc
                    continue
                if ack is not None:
                    outcomes[index] = self._response(ack, receipts)
                    continue
            vote = events_pb2.VoteCast(
                event_id=new_event_id(),
                vote_id=vote_id,
                poll_id=request.poll_id,
                voter_key=voter_key,
                option_id=request.option_id,
                request_id=request.request_id,
                ledger_shard=ledger_shard(voter_key, poll.ledger_shards),
            )
            vote.occurred_at.FromMilliseconds(now)
            pending.append(_Pending(index, vote, claimed))
        if pending:
            await self._append_votes(pending, outcomes, now, receipts)
        for index, first in repeats:
            if outcomes[index] is None:
                outcomes[index] = outcomes[first]
        for outcome in outcomes:
            if isinstance(outcome, CommandError):
                VOTES_REFUSED.labels(_CODE_NAMES.get(outcome.status().code, "UNKNOWN")).inc()
        return outcomes  # type: ignore[return-value]

    async def _validate(
        self,
        request: cmd.CastVoteRequest,
        polls: dict[str, PollModel | CommandError],
        caller: Principal,
        now: int,
        prefix: str,
    ) -> PollModel:
        violations = validation.cast_vote(request, prefix)
        if violations:
            raise InvalidCommand(violations)
        poll = polls.get(request.poll_id)
        if poll is None:
            try:
                found = await self._cache.get(request.poll_id)
                poll = found if found is not None else PollNotFound(request.poll_id)
            except CommandError as exc:
                poll = exc
            polls[request.poll_id] = poll
        if isinstance(poll, CommandError):
            raise poll
        state = poll.state_at(now)
        if state == poll_pb2.POLL_STATUS_CLOSED:
            raise PollNotOpen(poll.poll_id, PollNotOpen.CLOSED)
        if state == poll_pb2.POLL_STATUS_SCHEDULED:
            raise PollNotOpen(poll.poll_id, PollNotOpen.NOT_OPEN_YET)
        if request.option_id not in poll.option_ids:
            raise OptionNotFound(poll.poll_id, request.option_id)
        self._authorizer.authorize_vote(caller, request.voter_id, request.poll_id)
        return poll

    async def _rate_limit(
        self, caller: Principal, votes: list[tuple[int, str]]
    ) -> dict[int, RateLimited]:
        """The caller's bucket pays for the whole batch, each voter's bucket for its votes;
        returns the votes refused. Only votes that passed authorization get here, so no
        caller can drain another voter's bucket."""
        if not votes:
            return {}
        refused: dict[int, RateLimited] = {}
        (wait,) = await self._client_limits.take([(f"client:{caller.subject}", len(votes))])
        if wait:
            for index, _ in votes:
                refused[index] = RateLimited(
                    "client",
                    "too many votes from this caller; retry later",
                    retry_after_s=wait / 1000,
                )
            return refused
        waits = await self._voter_limits.take([(f"voter:{key}", 1) for _, key in votes])
        for (index, _), voter_wait in zip(votes, waits, strict=True):
            if voter_wait:
                refused[index] = RateLimited(
                    "voter",
                    "too many votes from this voter; retry later",
                    retry_after_s=voter_wait / 1000,
                )
        return refused

    def _response(self, ack: Ack, receipts: bool) -> cmd.CastVoteResponse:
        reply = _response(ack)
        if receipts and self._receipts is not None:
            receipt = reply.receipt
            receipt.vote_id = ack.vote_id
            receipt.poll_id = ack.poll_id
            receipt.option_digest = option_digest(ack.vote_id, ack.option_id)
            receipt.received_at.FromMilliseconds(ack.received_at_ms)
            self._receipts.sign(receipt)
        return reply

    async def _append_votes(
        self, pending: list[_Pending], outcomes: list[VoteOutcome | None], now: int, receipts: bool
    ) -> None:
        if self._inflight_votes + len(pending) > self._limits.max_inflight_votes:
            for item in pending:
                outcomes[item.index] = Overloaded("too many votes awaiting the log; retry later")
                if item.claimed:
                    self._ledger.release(item.vote.vote_id)
            return
        self._inflight_votes += len(pending)
        try:
            deliveries = await self._appender.append_votes([item.vote for item in pending])
        finally:
            self._inflight_votes -= len(pending)
        for item, delivery in zip(pending, deliveries, strict=True):
            vote_id = item.vote.vote_id
            if isinstance(delivery, DeliveryError):
                outcomes[item.index] = Unavailable(
                    f"the vote log did not take the vote: {delivery}"
                )
                if item.claimed:
                    self._ledger.release(vote_id)
                continue
            ack = Ack(
                vote_id,
                delivery.partition,
                delivery.offset,
                now,
                item.vote.option_id,
                item.vote.poll_id,
            )
            if item.claimed:
                self._ledger.complete(ack)
            outcomes[item.index] = self._response(ack, receipts)


def _response(ack: Ack) -> cmd.CastVoteResponse:
    reply = cmd.CastVoteResponse(
        vote_id=ack.vote_id,
        consistency_token=consistency_pb2.ConsistencyToken(
            position=consistency_pb2.PartitionOffset(partition=ack.partition, offset=ack.offset)
        ),
    )
    reply.received_at.FromMilliseconds(ack.received_at_ms)
    return reply
