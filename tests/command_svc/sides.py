"""A command process over in-memory stores, for unit tests of the command rules."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Coroutine
from typing import Any

from command_svc.authorization import DevelopmentAuthorizer, Principal
from command_svc.commands import CommandHandler, CommandLimits, VoteOutcome
from command_svc.idempotency import RequestLedger
from command_svc.memory import (
    InMemoryCountedVotes,
    InMemoryPollStore,
    InMemorySharedRequests,
    InMemoryVoteLog,
)
from command_svc.ratelimit import TokenBuckets
from voting.identity import VoterKeys
from voting.polls import PollCache
from voting.v1 import command_service_pb2 as cmd
from voting.v1 import poll_pb2

CALLER = Principal("tester", admin=True)


@dataclasses.dataclass
class Side:
    """One command process over shared stores."""

    handler: CommandHandler
    store: InMemoryPollStore
    log: InMemoryVoteLog
    counted: InMemoryCountedVotes
    shared: InMemorySharedRequests


def side(
    store: InMemoryPollStore | None = None,
    log: InMemoryVoteLog | None = None,
    counted: InMemoryCountedVotes | None = None,
    shared: InMemorySharedRequests | None = None,
    *,
    authorizer: Any = None,
    voter_rate: float = 0.0,
) -> Side:
    store = store or InMemoryPollStore()
    log = log or InMemoryVoteLog()
    counted = counted or InMemoryCountedVotes()
    shared = shared or InMemorySharedRequests()
    handler = CommandHandler(
        store=store,
        cache=PollCache(store.get, ttl_s=0.0),
        appender=log,
        authorizer=authorizer or DevelopmentAuthorizer(),
        ledger=RequestLedger(ttl_s=600, capacity=1000),
        shared=shared,
        counted=counted,
        voter_keys=VoterKeys(b"unit-test-secret"),
        limits=CommandLimits(ledger_shards=4),
        voter_limits=TokenBuckets(None, prefix="rl", rate=voter_rate, burst=voter_rate),
        client_limits=TokenBuckets(None, prefix="rl", rate=0, burst=0),
    )
    return Side(handler, store, log, counted, shared)


def run(case: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(case())


async def create(s: Side, poll_id: str = "lunch", **fields: Any) -> None:
    await s.handler.create_poll(
        cmd.CreatePollRequest(
            request_id=f"create-{poll_id}",
            poll_id=poll_id,
            title="Lunch?",
            options=[poll_pb2.PollOption(option_id=o, label=o) for o in ("a", "b")],
            **fields,
        ),
        CALLER,
    )


def vote(
    voter: str = "ada", option: str = "a", request_id: str = "", poll_id: str = "lunch"
) -> cmd.CastVoteRequest:
    return cmd.CastVoteRequest(
        poll_id=poll_id, voter_id=voter, option_id=option, request_id=request_id
    )


async def cast(s: Side, *requests: cmd.CastVoteRequest) -> list[VoteOutcome]:
    return await s.handler.cast_votes(list(requests), CALLER)
