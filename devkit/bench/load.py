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

For fault runs it behaves like a careless client too: calls spread over several command
service addresses (a retry often lands on another process), ``unary_lanes`` cast one vote
per CastVote beside the batch lanes, ``short_deadline_ratio`` of first attempts get a
deadline of a few milliseconds (so they time out with the vote possibly appended), and a
request is retried for at most ``retry_budget_s``. With ``history``, every attempt of
every request is recorded (:class:`Attempt`), for a checker to judge afterwards.
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
RETRYABLE_NAMES = {s.name for s in RETRYABLE}
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


@dataclass(frozen=True, slots=True)
class Attempt:
    """One call's answer for one vote: ``code`` is "OK" or a status code name."""

    started: float
    ended: float
    target: int  # index into the load's targets
    code: str
    vote_id: str = ""
    partition: int = -1
    offset: int = -1


@dataclass(slots=True)
class RequestHistory:
    """A vote command and every attempt made to get it acknowledged."""

    request_id: str
    poll_id: str
    voter_id: str
    option_id: str
    attempts: list[Attempt] = field(default_factory=list)

    @property
    def outcome(self) -> str:
        """ "ack" (some attempt was acknowledged), "refused" (the last answer was a refusal
        that is not worth retrying) or "unknown" (every attempt timed out or failed
        retryably: appended or not, only the log can tell)."""
        if any(a.code == "OK" for a in self.attempts):
            return "ack"
        if self.attempts and self.attempts[-1].code not in RETRYABLE_NAMES:
            return "refused"
        return "unknown"


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
    unary_lanes: int = 0  # more lanes, each casting one vote per CastVote
    short_deadline_ratio: float = 0.0  # first attempts sent with a deadline of a few ms
    short_deadline_s: float = 0.005
    retry_budget_s: float = 300.0  # a request is retried for at most this long
    history: bool = False


@dataclass
class LoadRecord:
    """What the load saw: every call, every acknowledgement, and the ground truth."""

    calls: list[Call] = field(default_factory=list)
    acks: list[Ack] = field(default_factory=list)
    # poll -> voter -> option of the voter's first acknowledged vote
    truth: dict[str, dict[str, str]] = field(default_factory=dict)
    attempts_failed: int = 0
    refused: int = 0  # votes refused for good (not retryable); never acknowledged
    unknown: int = 0  # votes given up on after the retry budget
    failure_codes: dict[str, int] = field(default_factory=dict)
    requests: dict[str, RequestHistory] = field(default_factory=dict)  # with spec.history

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
        self,
        target: str | list[str],
        spec: LoadSpec,
        *,
        metadata: tuple[tuple[str, str], ...] = (),
        seed: int = 20261122,
    ) -> None:
        self.targets = [target] if isinstance(target, str) else list(target)
        self.spec = spec
        self.record = LoadRecord(truth={p: {} for p in spec.polls})
        self.gate: Callable[[], bool] = lambda: True
        self._metadata = metadata
        self._rng = random.Random(seed)
        self._next_voter = dict.fromkeys(spec.polls, 0)
        self._acked_voters: dict[str, list[str]] = {p: [] for p in spec.polls}
        self._sent = 0
        self._pace_from = (0.0, 0)  # (time, votes sent then): where the rate counts from
        self._prefix = uuid.uuid4().hex[:6]

    async def run(self, stop: Callable[[], bool], *, seconds: float | None = None) -> None:
        """Casts votes until ``stop()`` (or ``seconds``); returns once every vote sent has
        been acknowledged."""
        started = time.monotonic()
        self._pace_from = (started, self._sent)

        def done() -> bool:
            return stop() or (seconds is not None and time.monotonic() - started >= seconds)

        channels = [grpc.aio.insecure_channel(t, options=CLIENT_OPTIONS) for t in self.targets]
        try:
            stubs: list[Any] = [command_service_pb2_grpc.CommandServiceStub(c) for c in channels]
            lanes = [(stubs, self.spec.batch) for _ in range(self.spec.lanes)]
            lanes += [(stubs, 1) for _ in range(self.spec.unary_lanes)]
            await asyncio.gather(
                *(self._lane(lane_stubs, size, started, done) for lane_stubs, size in lanes)
            )
        finally:
            for channel in channels:
                await channel.close()

    def set_rate(self, rate: float) -> None:
        """Paces the load at ``rate`` votes/s from now on (0: flat out)."""
        self.spec.rate = rate
        self._pace_from = (time.monotonic(), self._sent)

    async def _lane(
        self, stubs: list[Any], batch: int, started: float, done: Callable[[], bool]
    ) -> None:
        spec = self.spec
        while not done():
            if not self.gate():
                await asyncio.sleep(0.01)
                continue
            if spec.rate > 0:
                since, sent = self._pace_from
                due = since + (self._sent - sent) / spec.rate
                if due > time.monotonic():
                    await asyncio.sleep(due - time.monotonic())
                    continue
            poll_id = spec.polls[self._sent // max(spec.batch, 1) % len(spec.polls)]
            requests = [self._request(poll_id) for _ in range(batch)]
            self._sent += len(requests)
            await self._until_acknowledged(stubs, requests)

    def _request(self, poll_id: str) -> cmd.CastVoteRequest:
        acked = self._acked_voters[poll_id]
        fresh = self._next_voter[poll_id] < self.spec.voters
        if acked and (not fresh or self._rng.random() < self.spec.repeat_ratio):
            voter = self._rng.choice(acked)
        else:
            voter = f"{self._prefix}-{self._next_voter[poll_id]}"
            self._next_voter[poll_id] += 1
        request = cmd.CastVoteRequest(
            request_id=uuid.uuid4().hex,
            poll_id=poll_id,
            voter_id=voter,
            option_id=self._rng.choice(self.spec.options),
        )
        if self.spec.history:
            self.record.requests[request.request_id] = RequestHistory(
                request.request_id, poll_id, voter, request.option_id
            )
        return request

    async def _until_acknowledged(
        self, stubs: list[Any], requests: list[cmd.CastVoteRequest]
    ) -> None:
        spec = self.spec
        pending = requests
        first = True
        give_up_at = time.monotonic() + spec.retry_budget_s
        while pending:
            if time.monotonic() > give_up_at:
                self.record.unknown += len(pending)
                return
            target = self._rng.randrange(len(stubs))
            stub = stubs[target]
            timeout = spec.timeout_s
            if (
                first
                and spec.short_deadline_ratio
                and self._rng.random() < spec.short_deadline_ratio
            ):
                timeout = spec.short_deadline_s
            first = False
            began = time.monotonic()
            try:
                if len(pending) == 1:
                    reply = await stub.CastVote(
                        pending[0], timeout=timeout, metadata=self._metadata
                    )
                    outcomes: list[tuple[int, Any]] = [(0, reply)]
                else:
                    replies = await stub.CastVotes(
                        cmd.CastVotesRequest(requests=pending),
                        timeout=timeout,
                        metadata=self._metadata,
                    )
                    outcomes = [(r.status.code, r.response) for r in replies.results]
            except grpc.aio.AioRpcError as exc:
                # A refusal, or a deadline the client chose too short, says nothing about
                # whether the service is up.
                self._failed(
                    began,
                    exc.code().name,
                    down=exc.code() in RETRYABLE and timeout == spec.timeout_s,
                )
                self._attempted(pending, began, target, exc.code().name)
                if exc.code() not in RETRYABLE:
                    self.record.refused += len(pending)
                    return
                await asyncio.sleep(spec.retry_pause_s)
                continue
            now = time.monotonic()
            retry = []
            for request, (code, response) in zip(pending, outcomes, strict=True):
                if code != 0:
                    name = _CODE_NAMES.get(code, str(code))
                    self.record.failure_codes[name] = self.record.failure_codes.get(name, 0) + 1
                    self._attempted([request], began, target, name, now=now)
                    if code in RETRYABLE_CODES:
                        retry.append(request)
                    else:
                        self.record.refused += 1
                    continue
                self._attempted([request], began, target, "OK", response, now=now)
                self._acknowledged(now, request, response)
            self.record.calls.append(Call(began, now, not retry, len(pending) - len(retry)))
            if retry:
                self.record.attempts_failed += 1
                await asyncio.sleep(spec.retry_pause_s)
            pending = retry

    def _attempted(
        self,
        requests: list[cmd.CastVoteRequest],
        began: float,
        target: int,
        code: str,
        response: Any = None,
        *,
        now: float | None = None,
    ) -> None:
        if not self.spec.history:
            return
        ended = time.monotonic() if now is None else now
        for request in requests:
            if response is not None:
                position = response.consistency_token.position
                attempt = Attempt(
                    began,
                    ended,
                    target,
                    code,
                    response.vote_id,
                    position.partition,
                    position.offset,
                )
            else:
                attempt = Attempt(began, ended, target, code)
            self.record.requests[request.request_id].attempts.append(attempt)

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

    def _failed(self, began: float, code: str, *, down: bool = True) -> None:
        self.record.calls.append(Call(began, time.monotonic(), not down, 0))
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


def acked_rate(target: str, spec: LoadSpec, seconds: float) -> tuple[float, VoteLoad]:
    """Votes/s acknowledged by ``target`` under ``spec`` for ``seconds``."""
    load = VoteLoad(target, spec)
    started = time.monotonic()
    asyncio.run(load.run(lambda: False, seconds=seconds))
    return len(load.record.acks) / (time.monotonic() - started), load
