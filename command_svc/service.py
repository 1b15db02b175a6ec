"""The gRPC face of the command side: deadlines, authentication, delegation, statuses."""

from __future__ import annotations

from typing import Any

import grpc

from command_svc.authorization import Authorizer, Principal
from command_svc.batcher import VoteBatcher
from command_svc.commands import CommandHandler
from command_svc.errors import InvalidCommand
from voting import status
from voting.errors import ServiceError
from voting.v1 import command_service_pb2 as cmd

Context = grpc.aio.ServicerContext[Any, Any]


class CommandService:
    def __init__(
        self,
        handler: CommandHandler,
        authorizer: Authorizer,
        *,
        max_batch: int,
        require_deadline: bool,
        cast_vote_linger_s: float = 0.0,
    ) -> None:
        self._handler = handler
        self._batcher = VoteBatcher(handler, linger_s=cast_vote_linger_s, max_votes=max_batch)
        self._authorizer = authorizer
        self._max_batch = max_batch
        self._require_deadline = require_deadline

    def _caller(self, context: Context) -> Principal:
        """Checks the deadline, then authenticates the caller: before any command runs."""
        # None when the caller set no deadline (the type stubs say float).
        remaining: float | None = context.time_remaining()
        if self._require_deadline and remaining is None:
            raise InvalidCommand([("deadline", "commands must be sent with a deadline")])
        return self._authorizer.authenticate(context.invocation_metadata() or ())

    async def CreatePoll(
        self, request: cmd.CreatePollRequest, context: Context
    ) -> cmd.CreatePollResponse:
        try:
            return await self._handler.create_poll(request, self._caller(context))
        except ServiceError as exc:
            await status.abort(context, exc.status())

    async def ClosePoll(
        self, request: cmd.ClosePollRequest, context: Context
    ) -> cmd.ClosePollResponse:
        try:
            return await self._handler.close_poll(request, self._caller(context))
        except ServiceError as exc:
            await status.abort(context, exc.status())

    async def CastVote(
        self, request: cmd.CastVoteRequest, context: Context
    ) -> cmd.CastVoteResponse:
        try:
            caller = self._caller(context)
            outcome = await self._batcher.cast_vote(request, caller)
        except ServiceError as exc:
            outcome = exc
        if isinstance(outcome, ServiceError):
            await status.abort(context, outcome.status())
        return outcome

    async def CastVotes(
        self, request: cmd.CastVotesRequest, context: Context
    ) -> cmd.CastVotesResponse:
        count = len(request.requests)
        try:
            if not 1 <= count <= self._max_batch:
                raise InvalidCommand([("requests", f"1 to {self._max_batch} votes")])
            caller = self._caller(context)
        except ServiceError as exc:
            await status.abort(context, exc.status())
        outcomes = await self._handler.cast_votes(request.requests, caller)
        reply = cmd.CastVotesResponse()
        for outcome in outcomes:
            result = reply.results.add()
            if isinstance(outcome, ServiceError):
                result.status.CopyFrom(outcome.status())
            else:
                result.status.CopyFrom(status.OK)
                result.response.CopyFrom(outcome)
        return reply
