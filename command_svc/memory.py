"""The command side's ports in memory: for unit tests of the command rules, which then
start no broker and no DynamoDB. Each keeps the contract its production adapter keeps
(``tests/command_svc/test_ports.py`` runs the same suite over both)."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
from collections import defaultdict
from collections.abc import Sequence

from command_svc.idempotency import Ack, Pending
from command_svc.ports import PublishedFlag
from voting.errors import DeliveryError, PollNotFound
from voting.kafka import Delivered
from voting.polls import CLOSED, OPEN, PollModel
from voting.v1 import events_pb2


class InMemoryPollStore:
    def __init__(self) -> None:
        self.polls: dict[str, PollModel] = {}

    async def create(self, poll: PollModel) -> tuple[PollModel, bool]:
        existing = self.polls.get(poll.poll_id)
        if existing is not None:
            return existing, False
        self.polls[poll.poll_id] = poll
        return poll, True

    async def close(self, poll_id: str, request_id: str, now_ms: int) -> tuple[PollModel, bool]:
        poll = self.polls.get(poll_id)
        if poll is None:
            raise PollNotFound(poll_id)
        if poll.status != OPEN:
            return poll, False
        closed = dataclasses.replace(
            poll,
            status=CLOSED,
            closed_at_ms=now_ms,
            close_request_id=request_id,
            closed_published=False,
        )
        self.polls[poll_id] = closed
        return closed, True

    async def mark_published(self, poll_id: str, flag: PublishedFlag) -> None:
        poll = self.polls.get(poll_id)
        if poll is None:
            return
        if flag == "created_published":
            self.polls[poll_id] = dataclasses.replace(poll, created_published=True)
        else:
            self.polls[poll_id] = dataclasses.replace(poll, closed_published=True)

    async def get(self, poll_id: str) -> PollModel | None:
        return self.polls.get(poll_id)

    async def needing_attention(self, now_ms: int) -> list[PollModel]:
        return [
            p
            for p in self.polls.values()
            if not p.created_published
            or (p.status == CLOSED and not p.closed_published)
            or (p.status == OPEN and p.closes_at_ms is not None and p.closes_at_ms <= now_ms)
        ]


class InMemorySharedRequests:
    """Shared request ids in one dict (claims never expire here). ``available=False``
    answers as a Redis that does not answer."""

    def __init__(self) -> None:
        self.entries: dict[str, Ack | Pending] = {}
        self.available = True

    async def claim(
        self, votes: Sequence[tuple[str, str, str]]
    ) -> list[Ack | Pending | None] | None:
        if not self.available:
            return None
        found: list[Ack | Pending | None] = []
        for vote_id, _, option_id in votes:
            existing = self.entries.get(vote_id)
            if existing is None:
                self.entries[vote_id] = Pending(option_id)
            found.append(existing)
        return found

    async def lookup(self, votes: Sequence[tuple[str, str]]) -> list[Ack | Pending | None] | None:
        if not self.available:
            return None
        return [self.entries.get(vote_id) for vote_id, _ in votes]

    async def complete(self, acks: Sequence[Ack]) -> None:
        if self.available:
            self.entries.update((a.vote_id, a) for a in acks)

    async def release(self, vote_ids: Sequence[str]) -> None:
        if self.available:
            for vote_id in vote_ids:
                self.entries.pop(vote_id, None)


class InMemoryCountedVotes:
    def __init__(self) -> None:
        self.votes: dict[tuple[str, int, str], Ack] = {}

    async def find(self, poll_id: str, shard: int, voter_key: str) -> Ack | None:
        return self.votes.get((poll_id, shard, voter_key))


class InMemoryVoteLog:
    """Appends to partitions numbered like the real topic's (by a hash of the key; not
    murmur2, which only cross-language producers need to agree on). ``unavailable``
    makes every append fail as a broker that does not answer would; a ``gate`` holds
    appends until it is set."""

    def __init__(self, *, partitions: int = 4) -> None:
        self.partitions = partitions
        # While cleared, appends wait: a broker slower than the caller's deadline.
        self.gate: asyncio.Event | None = None
        self.votes: dict[int, list[events_pb2.VoteCast | events_pb2.PollClosed]] = defaultdict(list)
        self.polls: list[events_pb2.PollCreated | events_pb2.PollClosed] = []
        self.unavailable = False

    async def append_votes(
        self, votes: Sequence[events_pb2.VoteCast]
    ) -> list[Delivered | DeliveryError]:
        if self.gate is not None:
            await self.gate.wait()
        results: list[Delivered | DeliveryError] = []
        for vote in votes:
            if self.unavailable:
                results.append(DeliveryError("the log is unavailable", retriable=True))
                continue
            key = f"{vote.poll_id}/{vote.voter_key}".encode()
            partition = (
                int.from_bytes(hashlib.blake2b(key, digest_size=4).digest()) % self.partitions
            )
            log = self.votes[partition]
            log.append(vote)
            results.append(Delivered(partition, len(log) - 1))
        return results

    async def append_poll_created(self, event: events_pb2.PollCreated) -> None:
        if self.unavailable:
            raise DeliveryError("the log is unavailable", retriable=True)
        self.polls.append(event)

    async def append_poll_closed(self, event: events_pb2.PollClosed) -> None:
        if self.unavailable:
            raise DeliveryError("the log is unavailable", retriable=True)
        self.polls.append(event)
        for partition in range(self.partitions):
            marker = events_pb2.PollClosed()
            marker.CopyFrom(event)
            marker.partition = partition
            marker.partition_count = self.partitions
            self.votes[partition].append(marker)

    def appended(self) -> list[events_pb2.VoteCast]:
        """Every vote appended, in no particular order across partitions."""
        return [v for log in self.votes.values() for v in log if isinstance(v, events_pb2.VoteCast)]
