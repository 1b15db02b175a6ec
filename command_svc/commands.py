"""The command side's application layer: validate, then append, then acknowledge.

Every vote goes through the same steps, in this order, and stops at the first failure:
structure, authorization, idempotency (a retried request gets its first answer),
business rules (against the cached poll model), rate limits. Only votes that pass every
step are appended, and a vote is acknowledged only once the broker has acknowledged its
record. A failed command appends nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass

import grpc

from command_svc import validation
from command_svc.authorization import Authorizer, Principal
from command_svc.errors import (
    InvalidCommand,
    OptionNotFound,
    Overloaded,
    PollAlreadyExists,
    PollNotOpen,
    RateLimited,
    RequestIdReused,
    Unavailable,
)
from command_svc.idempotency import Ack, Pending, RequestLedger
from command_svc.metrics import VOTES_REFUSED
from command_svc.ports import CountedVotes, PollStore, SharedRequestIds, VoteLog
from command_svc.ratelimit import TokenBuckets
from voting.dynamodb import ledger_shard
from voting.errors import DeliveryError, PollNotFound, ServiceError
from voting.events import new_event_id
from voting.identity import VoterKeys, stable_id, vote_id_for
from voting.polls import PRIVATE, PUBLIC, PollCache, PollModel, now_ms
from voting.receipts import ReceiptSigner
from voting.v1 import command_service_pb2 as cmd
from voting.v1 import consistency_pb2, events_pb2, poll_pb2

log = logging.getLogger(__name__)

_CODE_NAMES = {code.value[0]: code.name for code in grpc.StatusCode}

VoteOutcome = cmd.CastVoteResponse | ServiceError


@dataclass(frozen=True, kw_only=True)
class CommandLimits:
    max_batch: int = 1000
    max_inflight_votes: int = 100_000
    ledger_shards: int = 16


@dataclass(slots=True)
class _Vote:
    index: int
    request: cmd.CastVoteRequest
    voter_key: str
    vote_id: str
    poll: PollModel | None = None
    owned: bool = False  # claimed in this process: complete or release it
    shared: bool = False  # claimed in the shared request ids: complete or release it
    waits: bool = False  # in flight in this process already: wait for that attempt


class CommandHandler:
    def __init__(
        self,
        *,
        store: PollStore,
        cache: PollCache,
        appender: VoteLog,
        authorizer: Authorizer,
        ledger: RequestLedger,
        shared: SharedRequestIds,
        counted: CountedVotes,
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
        self._shared = shared
        self._counted = counted
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
        if not created and not stored.same_definition(poll):
            # One rule for every command: the same request id with other content is
            # refused, never answered with the first acknowledgement.
            raise RequestIdReused(request.request_id)
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
        self,
        requests: Sequence[cmd.CastVoteRequest],
        caller: Principal,
        *,
        receipts: bool = False,
        paths_in_batch: bool = True,
    ) -> list[VoteOutcome]:
        """One outcome per request, in order: an acknowledgement or the reason it failed.

        The steps, each only for the votes that passed the one before: structure and
        authorization (no I/O); the first answer if this request was acknowledged before
        (in this process, then in any process through the shared request ids); business
        rules against the poll model; rate limits; the append. A retry of an acknowledged
        request therefore gets its first answer even after the poll closed.
        """
        now = now_ms()
        outcomes: list[VoteOutcome | None] = [None] * len(requests)
        votes: list[_Vote] = []
        firsts: dict[str, _Vote] = {}
        repeats: list[tuple[int, int]] = []
        # Field paths name a vote's place in a CastVotes batch; unary calls the batcher
        # grouped keep CastVote's own paths.
        prefix = "requests[{}]." if paths_in_batch and len(requests) > 1 else ""
        for index, request in enumerate(requests):
            try:
                violations = validation.cast_vote(request, prefix.format(index))
                if violations:
                    raise InvalidCommand(violations)
                self._authorizer.authorize_vote(caller, request.voter_id, request.poll_id)
            except ServiceError as exc:
                outcomes[index] = exc
                continue
            voter_key = self._keys.key(request.voter_id)
            vote = _Vote(
                index,
                request,
                voter_key,
                vote_id_for(request.poll_id, voter_key, request.request_id),
            )
            first = firsts.get(vote.vote_id)
            if first is not None:  # the same command twice in one batch
                if first.request.option_id != request.option_id:
                    outcomes[index] = RequestIdReused(request.request_id)
                else:
                    repeats.append((index, first.index))
                continue
            firsts[vote.vote_id] = vote
            votes.append(vote)
        votes = [v for v in votes if not self._answered_here(v, outcomes, receipts)]
        checked = await self._check_rules(votes, outcomes, now, receipts)
        waiting = await self._claim(checked, outcomes, receipts)
        appending = [v for v in checked if outcomes[v.index] is None and not v.waits]
        if appending:
            await self._rate_limit(caller, appending, outcomes)
            appending = [v for v in appending if outcomes[v.index] is None]
        if appending:
            # The append and the settling of its claims run in a task of their own: if
            # this call is cancelled (its deadline passed), they still finish, and a retry
            # finds the acknowledgement instead of a claim nobody will ever settle.
            task = asyncio.ensure_future(self._append_votes(appending, now))
            for vote, settled in zip(appending, await asyncio.shield(task), strict=True):
                outcomes[vote.index] = (
                    settled
                    if isinstance(settled, ServiceError)
                    else self._response(settled, receipts)
                )
        for vote, future in waiting:
            earlier = await asyncio.shield(future)
            outcomes[vote.index] = (
                self._response(earlier, receipts)
                if earlier is not None
                else Unavailable(
                    "the first attempt of this request failed; retry it", retry_after_s=0.2
                )
            )
        for index, first_index in repeats:
            if outcomes[index] is None:
                outcomes[index] = outcomes[first_index]
        for outcome in outcomes:
            if isinstance(outcome, ServiceError):
                VOTES_REFUSED.labels(_CODE_NAMES.get(outcome.status().code, "UNKNOWN")).inc()
        return outcomes  # type: ignore[return-value]

    def _answered_here(
        self, vote: _Vote, outcomes: list[VoteOutcome | None], receipts: bool
    ) -> bool:
        request = vote.request
        if not request.request_id:
            return False
        try:
            ack = self._ledger.done(vote.vote_id, request.option_id, request.request_id)
        except ServiceError as exc:
            outcomes[vote.index] = exc
            return True
        if ack is None:
            return False
        outcomes[vote.index] = self._response(ack, receipts)
        return True

    async def _check_rules(
        self, votes: list[_Vote], outcomes: list[VoteOutcome | None], now: int, receipts: bool
    ) -> list[_Vote]:
        """The votes that pass the business rules. A vote for a closed poll that carries a
        request id may be a retry of one acknowledged before the close: it gets that
        answer if any process (or the votes table) has it."""
        polls: dict[str, PollModel | ServiceError] = {}
        passed: list[_Vote] = []
        closed: list[tuple[_Vote, PollModel, PollNotOpen]] = []
        for vote in votes:
            request = vote.request
            poll = polls.get(request.poll_id)
            if poll is None:
                try:
                    found = await self._cache.get(request.poll_id)
                    poll = found if found is not None else PollNotFound(request.poll_id)
                except ServiceError as exc:
                    poll = exc
                polls[request.poll_id] = poll
            if isinstance(poll, ServiceError):
                outcomes[vote.index] = poll
                continue
            state = poll.state_at(now)
            if state == poll_pb2.POLL_STATUS_CLOSED:
                refusal = PollNotOpen(poll.poll_id, PollNotOpen.CLOSED)
                if request.request_id:
                    closed.append((vote, poll, refusal))
                else:
                    outcomes[vote.index] = refusal
            elif state == poll_pb2.POLL_STATUS_SCHEDULED:
                outcomes[vote.index] = PollNotOpen(poll.poll_id, PollNotOpen.NOT_OPEN_YET)
            elif request.option_id not in poll.option_ids:
                outcomes[vote.index] = OptionNotFound(poll.poll_id, request.option_id)
            else:
                vote.poll = poll
                passed.append(vote)
        if closed:
            await self._answer_closed(closed, outcomes, receipts)
        return passed

    async def _answer_closed(
        self,
        closed: list[tuple[_Vote, PollModel, PollNotOpen]],
        outcomes: list[VoteOutcome | None],
        receipts: bool,
    ) -> None:
        known = await self._shared.lookup([(v.vote_id, p.poll_id) for v, p, _ in closed])
        for position, (vote, poll, refusal) in enumerate(closed):
            request = vote.request
            earlier = known[position] if known is not None else None
            if earlier is None:
                try:
                    earlier = await self._counted.find(
                        poll.poll_id,
                        ledger_shard(vote.voter_key, poll.ledger_shards),
                        vote.voter_key,
                    )
                except ServiceError as exc:
                    outcomes[vote.index] = exc
                    continue
                if earlier is not None and earlier.vote_id != vote.vote_id:
                    earlier = None  # the voter's counted vote is another one
            if isinstance(earlier, Pending):
                outcomes[vote.index] = (
                    RequestIdReused(request.request_id)
                    if earlier.option_id != request.option_id
                    else Unavailable(
                        "the first attempt of this request is in flight; retry it",
                        retry_after_s=0.2,
                    )
                )
            elif isinstance(earlier, Ack):
                if earlier.option_id != request.option_id:
                    outcomes[vote.index] = RequestIdReused(request.request_id)
                else:
                    self._ledger.remember(earlier)
                    outcomes[vote.index] = self._response(earlier, receipts)
            elif known is None:
                outcomes[vote.index] = Unavailable(
                    "cannot tell now whether this request was acknowledged before the poll "
                    "closed; retry it"
                )
            else:
                outcomes[vote.index] = refusal

    async def _claim(
        self, votes: list[_Vote], outcomes: list[VoteOutcome | None], receipts: bool
    ) -> list[tuple[_Vote, asyncio.Future[Ack | None]]]:
        """Claims each vote's request id, here and then in the shared memory. Returns the
        votes whose request is in flight in this process, with what to wait on."""
        waiting: list[tuple[_Vote, asyncio.Future[Ack | None]]] = []
        owned: list[_Vote] = []
        for vote in votes:
            request = vote.request
            if not request.request_id:
                continue
            try:
                claim = self._ledger.claim(vote.vote_id, request.option_id, request.request_id)
            except ServiceError as exc:
                outcomes[vote.index] = exc
                continue
            if isinstance(claim, Ack):
                outcomes[vote.index] = self._response(claim, receipts)
            elif claim is not None:
                vote.waits = True
                waiting.append((vote, claim))
            else:
                vote.owned = True
                owned.append(vote)
        if not owned:
            return waiting
        shared = await self._shared.claim(
            [(v.vote_id, v.request.poll_id, v.request.option_id) for v in owned]
        )
        if shared is None:
            return waiting  # Redis is away: this process's memory only
        for vote, earlier in zip(owned, shared, strict=True):
            request = vote.request
            if earlier is None:
                vote.shared = True
                continue
            if earlier.option_id != request.option_id:
                outcomes[vote.index] = RequestIdReused(request.request_id)
                self._ledger.release(vote.vote_id)
            elif isinstance(earlier, Pending):
                outcomes[vote.index] = Unavailable(
                    "the first attempt of this request is in flight; retry it", retry_after_s=0.2
                )
                self._ledger.release(vote.vote_id)
            else:
                self._ledger.complete(earlier)
                outcomes[vote.index] = self._response(earlier, receipts)
            vote.owned = False
        return waiting

    async def _rate_limit(
        self, caller: Principal, votes: list[_Vote], outcomes: list[VoteOutcome | None]
    ) -> None:
        """The caller's bucket pays for the whole batch, each voter's bucket for its votes.
        Only votes that passed authorization get here, so no caller can drain another
        voter's bucket. Refused votes give up their claims."""
        refused: list[_Vote] = []
        (wait,) = await self._client_limits.take([(f"client:{caller.subject}", len(votes))])
        if wait:
            for vote in votes:
                outcomes[vote.index] = RateLimited(
                    "client",
                    "too many votes from this caller; retry later",
                    retry_after_s=wait / 1000,
                )
            refused = votes
        else:
            waits = await self._voter_limits.take([(f"voter:{v.voter_key}", 1) for v in votes])
            for vote, voter_wait in zip(votes, waits, strict=True):
                if voter_wait:
                    outcomes[vote.index] = RateLimited(
                        "voter",
                        "too many votes from this voter; retry later",
                        retry_after_s=voter_wait / 1000,
                    )
                    refused.append(vote)
        if refused:
            await self._release(refused)

    async def _release(self, votes: list[_Vote]) -> None:
        for vote in votes:
            if vote.owned:
                self._ledger.release(vote.vote_id)
        await self._shared.release([v.vote_id for v in votes if v.shared])

    def _response(self, ack: Ack, receipts: bool) -> cmd.CastVoteResponse:
        reply = _response(ack)
        if receipts and self._receipts is not None:
            receipt = reply.receipt
            receipt.vote_id = ack.vote_id
            receipt.poll_id = ack.poll_id
            self._receipts.issue(
                receipt, option_id=ack.option_id, received_at_ms=ack.received_at_ms
            )
        return reply

    async def _append_votes(self, votes: list[_Vote], now: int) -> list[Ack | ServiceError]:
        """Appends the votes and settles their claims (run as a task of its own)."""
        if self._inflight_votes + len(votes) > self._limits.max_inflight_votes:
            await self._release(votes)
            return [Overloaded("too many votes awaiting the log; retry later")] * len(votes)
        events = []
        for vote in votes:
            request = vote.request
            assert vote.poll is not None
            event = events_pb2.VoteCast(
                event_id=new_event_id(),
                vote_id=vote.vote_id,
                poll_id=request.poll_id,
                voter_key=vote.voter_key,
                option_id=request.option_id,
                request_id=request.request_id,
                ledger_shard=ledger_shard(vote.voter_key, vote.poll.ledger_shards),
            )
            event.occurred_at.FromMilliseconds(now)
            events.append(event)
        self._inflight_votes += len(votes)
        try:
            deliveries = await self._appender.append_votes(events)
        except BaseException:
            await self._release(votes)
            raise
        finally:
            self._inflight_votes -= len(votes)
        results: list[Ack | ServiceError] = []
        failed: list[_Vote] = []
        acks: list[Ack] = []
        for vote, delivery in zip(votes, deliveries, strict=True):
            if isinstance(delivery, DeliveryError):
                results.append(Unavailable(f"the vote log did not take the vote: {delivery}"))
                failed.append(vote)
                continue
            ack = Ack(
                vote.vote_id,
                delivery.partition,
                delivery.offset,
                now,
                vote.request.option_id,
                vote.request.poll_id,
            )
            results.append(ack)
            if vote.owned:
                self._ledger.complete(ack)
            if vote.shared:
                acks.append(ack)
        if failed:
            await self._release(failed)
        if acks:
            await self._shared.complete(acks)
        return results


def _response(ack: Ack) -> cmd.CastVoteResponse:
    reply = cmd.CastVoteResponse(
        vote_id=ack.vote_id,
        consistency_token=consistency_pb2.ConsistencyToken(
            position=consistency_pb2.PartitionOffset(partition=ack.partition, offset=ack.offset)
        ),
    )
    reply.received_at.FromMilliseconds(ack.received_at_ms)
    return reply
