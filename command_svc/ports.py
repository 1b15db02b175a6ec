"""The command side's ports: what it needs from the stores, whatever holds them.

Each port has the adapter production runs (``polls.DynamoDBPollStore``,
``counted.DynamoDBCountedVotes``, ``appender.EventAppender`` on Kafka,
``idempotency.SharedRequests`` on Redis) and one in memory
(``command_svc.memory``) that unit tests run the command rules on. One contract suite
runs over both adapters of each port (``tests/command_svc/test_ports.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, Protocol

from command_svc.idempotency import Ack, Pending
from voting.errors import DeliveryError
from voting.kafka import Delivered
from voting.polls import PollModel
from voting.v1 import events_pb2

PublishedFlag = Literal["created_published", "closed_published"]


class PollStore(Protocol):
    """The ``polls`` table: one winner per poll id, per close; also the outbox of poll
    events (a flag stays false until its event is in the log)."""

    async def create(self, poll: PollModel) -> tuple[PollModel, bool]:
        """Stores ``poll`` unless its id exists; the stored poll and whether it is new."""
        ...

    async def close(self, poll_id: str, request_id: str, now_ms: int) -> tuple[PollModel, bool]:
        """Marks the poll closed; the poll and whether this call closed it. Raises
        PollNotFound for an unknown poll."""
        ...

    async def mark_published(self, poll_id: str, flag: PublishedFlag) -> None: ...

    async def get(self, poll_id: str) -> PollModel | None: ...

    async def needing_attention(self, now_ms: int) -> list[PollModel]:
        """Polls with an unpublished event, or open past their closing time."""
        ...


class SharedRequestIds(Protocol):
    """Request ids every command process shares (Redis in production): claimed before a
    vote is appended, holding its acknowledgement afterwards. Each call answers None
    when the store does not answer: nothing is known then."""

    async def claim(
        self, votes: Sequence[tuple[str, str, str]]
    ) -> list[Ack | Pending | None] | None: ...

    async def lookup(
        self, votes: Sequence[tuple[str, str]]
    ) -> list[Ack | Pending | None] | None: ...

    async def complete(self, acks: Sequence[Ack]) -> None: ...

    async def release(self, vote_ids: Sequence[str]) -> None: ...


class CountedVotes(Protocol):
    """The worker's ``votes`` table, as the command side reads it."""

    async def find(self, poll_id: str, shard: int, voter_key: str) -> Ack | None:
        """The voter's counted vote in the poll, as its first acknowledgement."""
        ...


class VoteLog(Protocol):
    """The ``votes`` and ``polls`` topics: where commands become events."""

    async def append_votes(
        self, votes: Sequence[events_pb2.VoteCast]
    ) -> list[Delivered | DeliveryError]:
        """One result per vote, in order, once each is acknowledged (or failed)."""
        ...

    async def append_poll_created(self, event: events_pb2.PollCreated) -> None: ...

    async def append_poll_closed(self, event: events_pb2.PollClosed) -> None:
        """The lifecycle event, and a close marker on every partition of ``votes``."""
        ...
