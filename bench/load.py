"""The one load generator: votes cast as a well-behaved client casts them.

Votes go out in batches (``CastVotes``; ``batch=1`` uses ``CastVote``) from several
lanes, flat out or at a target rate, from up to ``voters`` distinct voters per poll;
about ``repeat_ratio`` of them come from voters whose first vote was already
acknowledged (new request ids: the worker must reject them). A vote that is not
acknowledged is retried with the SAME request id until it is, as a real client would
(the command service answers a retry with the first acknowledgement, or appends it
again under the same vote id, which the worker recognises): so every vote sent is
eventually acknowledged, and the ground truth is exactly the first acknowledged vote
of each voter.

``gate`` lets a caller hold the load back (the pipeline benchmark keeps the backlog
between acknowledged and counted votes bounded, so "flat out" measures what the whole
pipeline sustains rather than how fast a queue can grow).
"""

from __future__ import annotations

import asyncio
import bisect
import random
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import grpc

from voting.v1 import command_service_pb2 as cmd
from voting.v1 import command_service_pb2_grpc

# Reconnect within a second of a restarted server (gRPC's default backoff grows to two
# minutes, which would measure the client, not the system).
CLIENT_OPTIONS = [
    ("grpc.max_send_message_length", 16 * 1024 * 1024),
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
]
# Worth a retry with the same request id; anything else is the client's mistake (e.g. an
# unknown option) and is counted as refused, never retried forever.
RETRYABLE = {
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.CANCELLED,
    grpc.StatusCode.ABORTED,
    grpc.StatusCode.UNKNOWN,
}
RETRYABLE_CODES = {s.value[0] for s in RETRYABLE}
_CODE_NAMES: dict[int, str] = {s.value[0]: s.name for s in grpc.StatusCode}


@dataclass(frozen=True)
class Call:
    started: float  # time.monotonic()
    ended: float
    ok: bool
    votes: int  # acknowledged by this call


@dataclass(frozen=True)
class Ack:
    at: float
    poll_id: str
    voter_id: str
    option_id: str
    partition: int
    offset: int


@dataclass
class LoadSpec:
    polls: list[str]
    options: tuple[str, ...] = ("a", "b", "c")
    voters: int = 1_000_000  # distinct voters per poll at most
    repeat_ratio: float = 0.1
    batch: int = 500
    lanes: int = 4
    rate: float = 0.0  # votes/s over all lanes; 0: flat out
    timeout_s: float = 30.0
    retry_pause_s: float = 0.2


@dataclass
class LoadRecord:
    """What the load saw: every call, every acknowledgement, and the ground truth."""

    calls: list[Call] = field(default_factory=list)
    acks: list[Ack] = field(default_factory=list)
    # poll -> voter -> option of the voter's first acknowledged vote
    truth: dict[str, dict[str, str]] = field(default_factory=dict)
    attempts_failed: int = 0
    refused: int = 0  # votes refused for good (not retryable); never acknowledged
    failure_codes: dict[str, int] = field(default_factory=dict)

    @property
    def accepted_expected(self) -> int:
        return sum(len(voters) for voters in self.truth.values())

    def visibility(
        self, poll_id: str, snapshots: list[tuple[float, dict[int, int]]]
    ) -> list[tuple[float, float]]:
        """(ack time, ms until visible) of each acknowledged vote of ``poll_id``: a vote is
        visible in the first snapshot (time, watermark by partition) whose watermark for
        its partition reaches its offset. Votes never seen are left out."""
        times: dict[int, list[float]] = defaultdict(list)
        marks: dict[int, list[int]] = defaultdict(list)
        for at, snapshot in snapshots:
            for partition, mark in snapshot.items():
                best = max(mark, marks[partition][-1]) if marks[partition] else mark
                times[partition].append(at)
                marks[partition].append(best)
        visible = []
        for ack in self.acks:
            if ack.poll_id != poll_id:
                continue
            index = bisect.bisect_left(marks[ack.partition], ack.offset)
            if index < len(marks[ack.partition]):
                seen = times[ack.partition][index]
                visible.append((ack.at, max(0.0, seen - ack.at) * 1000))
        return visible

    def truth_counts(self, poll_id: str, options: tuple[str, ...]) -> dict[str, int]:
        counts = dict.fromkeys(options, 0)
        for option in self.truth.get(poll_id, {}).values():
            counts[option] += 1
        return counts


class VoteLoad:
    def __init__(
        self, target: str, spec: LoadSpec, *, metadata: tuple[tuple[str, str], ...] = ()
    ) -> None:
        self.target = target
        self.spec = spec
        self.record = LoadRecord(truth={p: {} for p in spec.polls})
        self.gate: Callable[[], bool] = lambda: True
        self._metadata = metadata
        self._rng = random.Random(20261122)
        self._next_voter = dict.fromkeys(spec.polls, 0)
        self._acked_voters: dict[str, list[str]] = {p: [] for p in spec.polls}
        self._sent = 0
        self._prefix = uuid.uuid4().hex[:6]

    async def run(self, stop: Callable[[], bool], *, seconds: float | None = None) -> None:
        """Casts votes until ``stop()`` (or ``seconds``); returns once every vote sent has
        been acknowledged."""
        started = time.monotonic()

        def done() -> bool:
            return stop() or (seconds is not None and time.monotonic() - started >= seconds)

        async with grpc.aio.insecure_channel(self.target, options=CLIENT_OPTIONS) as channel:
            stub: Any = command_service_pb2_grpc.CommandServiceStub(channel)
            await asyncio.gather(
                *(self._lane(stub, lane, started, done) for lane in range(self.spec.lanes))
            )

    async def _lane(self, stub: Any, lane: int, started: float, done: Callable[[], bool]) -> None:
        spec = self.spec
        while not done():
            if not self.gate():
                await asyncio.sleep(0.01)
                continue
            if spec.rate > 0:
                due = started + self._sent / spec.rate
                if due > time.monotonic():
                    await asyncio.sleep(due - time.monotonic())
                    continue
            poll_id = spec.polls[self._sent // spec.batch % len(spec.polls)]
            requests = [self._request(poll_id) for _ in range(spec.batch)]
            self._sent += len(requests)
            await self._until_acknowledged(stub, requests)

    def _request(self, poll_id: str) -> cmd.CastVoteRequest:
        acked = self._acked_voters[poll_id]
        fresh = self._next_voter[poll_id] < self.spec.voters
        if acked and (not fresh or self._rng.random() < self.spec.repeat_ratio):
            voter = self._rng.choice(acked)
        else:
            voter = f"{self._prefix}-{self._next_voter[poll_id]}"
            self._next_voter[poll_id] += 1
        return cmd.CastVoteRequest(
            request_id=uuid.uuid4().hex,
            poll_id=poll_id,
            voter_id=voter,
            option_id=self._rng.choice(self.spec.options),
        )

    async def _until_acknowledged(self, stub: Any, requests: list[cmd.CastVoteRequest]) -> None:
        pending = requests
        while pending:
            began = time.monotonic()
            try:
                if len(pending) == 1:
                    reply = await stub.CastVote(
                        pending[0], timeout=self.spec.timeout_s, metadata=self._metadata
                    )
                    outcomes: list[tuple[int, Any]] = [(0, reply)]
                else:
                    replies = await stub.CastVotes(
                        cmd.CastVotesRequest(requests=pending),
                        timeout=self.spec.timeout_s,
                        metadata=self._metadata,
                    )
                    outcomes = [(r.status.code, r.response) for r in replies.results]
            except grpc.aio.AioRpcError as exc:
                self._failed(began, exc.code().name)
                if exc.code() not in RETRYABLE:
                    self.record.refused += len(pending)
                    return
                await asyncio.sleep(self.spec.retry_pause_s)
                continue
            now = time.monotonic()
            retry = []
            for request, (code, response) in zip(pending, outcomes, strict=True):
                if code != 0:
                    name = _CODE_NAMES.get(code, str(code))
                    self.record.failure_codes[name] = self.record.failure_codes.get(name, 0) + 1
                    if code in RETRYABLE_CODES:
                        retry.append(request)
                    else:
                        self.record.refused += 1
                    continue
                self._acknowledged(now, request, response)
            self.record.calls.append(Call(began, now, not retry, len(pending) - len(retry)))
            if retry:
                self.record.attempts_failed += 1
                await asyncio.sleep(self.spec.retry_pause_s)
            pending = retry

    def _acknowledged(self, at: float, request: cmd.CastVoteRequest, response: Any) -> None:
        position = response.consistency_token.position
        voters = self.record.truth[request.poll_id]
        if request.voter_id not in voters:
            voters[request.voter_id] = request.option_id
            self._acked_voters[request.poll_id].append(request.voter_id)
        self.record.acks.append(
            Ack(
                at,
                request.poll_id,
                request.voter_id,
                request.option_id,
                position.partition,
                position.offset,
            )
        )

    def _failed(self, began: float, code: str) -> None:
        self.record.calls.append(Call(began, time.monotonic(), False, 0))
        self.record.attempts_failed += 1
        self.record.failure_codes[code] = self.record.failure_codes.get(code, 0) + 1


def down_windows(events: list[tuple[float, bool]]) -> list[tuple[float, float]]:
    """Periods during which the latest outcome was a failure: from the first failure
    to the next success. ``events`` are (time, ok), in any order."""
    windows = []
    down_since: float | None = None
    for at, ok in sorted(events):
        if not ok and down_since is None:
            down_since = at
        elif ok and down_since is not None:
            windows.append((down_since, at))
            down_since = None
    if down_since is not None:
        windows.append((down_since, max(t for t, _ in events)))
    return windows


def within(at: float, windows: list[tuple[float, float]]) -> bool:
    return any(start <= at <= end for start, end in windows)
