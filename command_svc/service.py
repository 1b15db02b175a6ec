"""The gRPC face of the command side: authenticate, delegate, map errors to statuses."""

from __future__ import annotations

import grpc

from command_svc.authorization import Authorizer
from command_svc.commands import CommandHandler
from command_svc.errors import CommandError
from voting import status
from voting.v1 import command_service_pb2 as cmd

Context = grpc.aio.ServicerContext[object, object]


class CommandService:
    def __init__(self, handler: CommandHandler, authorizer: Authorizer, *, max_batch: int) -> None:
        self._handler = handler
        self._authorizer = authorizer
        self._max_batch = max_batch

    async def CreatePoll(
        self, request: cmd.CreatePollRequest, context: Context
    ) -> cmd.CreatePollResponse:
        try:
            caller = self._authorizer.authenticate(context.invocation_metadata() or ())
            return await self._handler.create_poll(request, caller)
        except CommandError as exc:
            await status.abort(context, exc.status())

    async def ClosePoll(
        self, request: cmd.ClosePollRequest, context: Context
    ) -> cmd.ClosePollResponse:
        try:
            caller = self._authorizer.authenticate(context.invocation_metadata() or ())
            return await self._handler.close_poll(request, caller)
        except CommandError as exc:
            await status.abort(context, exc.status())

    async def CastVote(
        self, request: cmd.CastVoteRequest, context: Context
    ) -> cmd.CastVoteResponse:
        try:
            caller = self._authorizer.authenticate(context.invocation_metadata() or ())
            outcome = (await self._handler.cast_votes([request], caller))[0]
        except CommandError as exc:
            outcome = exc
        if isinstance(outcome, CommandError):
            await status.abort(context, outcome.status())
        return outcome

    async def CastVotes(
        self, request: cmd.CastVotesRequest, context: Context
    ) -> cmd.CastVotesResponse:
        count = len(request.requests)
        if not 1 <= count <= self._max_batch:
            await status.abort(
                context, status.bad_request([("requests", f"1 to {self._max_batch} votes")])
            )
        try:
            caller = self._authorizer.authenticate(context.invocation_metadata() or ())
        except CommandError as exc:
            await status.abort(context, exc.status())
        outcomes = await self._handler.cast_votes(request.requests, caller)
        reply = cmd.CastVotesResponse()
        for outcome in outcomes:
            result = reply.results.add()
            if isinstance(outcome, CommandError):
                result.status.CopyFrom(outcome.status())
            else:
                result.status.CopyFrom(status.OK)
                result.response.CopyFrom(outcome)
        return reply
