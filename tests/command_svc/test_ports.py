"""The command side's ports: one contract, kept by the in-memory adapters (unit tests of
the command rules run on them) and by the DynamoDB and Redis adapters production runs."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import redis.asyncio as aioredis

from command_svc.counted import DynamoDBCountedVotes
from command_svc.idempotency import Ack, Pending, SharedRequests
from command_svc.memory import InMemoryCountedVotes, InMemoryPollStore, InMemorySharedRequests
from command_svc.polls import DynamoDBPollStore
from command_svc.ports import CountedVotes, PollStore, SharedRequestIds
from tests.harness import Deployment
from voting import dynamodb
from voting.dynamodb import vote_pk
from voting.errors import PollNotFound
from voting.polls import CLOSED, OPEN, PollModel


def poll(**changes: Any) -> PollModel:
    fields: dict[str, Any] = {
        "poll_id": f"p-{uuid.uuid4().hex[:10]}",
        "title": "Lunch?",
        "options": (("a", "A"), ("b", "B")),
        "status": OPEN,
        "created_at_ms": 1_000,
        "ledger_shards": 4,
        "create_request_id": "r1",
    }
    fields.update(changes)
    return PollModel(**fields)


class PollStoreContract:
    """What every PollStore promises. Subclasses say how to get one."""

    def store(self) -> contextlib.AbstractAsyncContextManager[PollStore]:
        raise NotImplementedError

    def run(self, case: Callable[[PollStore], Awaitable[None]]) -> None:
        async def go() -> None:
            async with self.store() as store:
                await case(store)

        asyncio.run(go())

    def test_a_poll_is_created_once_and_a_second_create_finds_the_first(self) -> None:
        async def case(store: PollStore) -> None:
            first = poll()
            assert await store.create(first) == (first, True)
            other = poll(poll_id=first.poll_id, title="Other", create_request_id="r2")
            stored, created = await store.create(other)
            assert not created
            assert (stored.title, stored.create_request_id) == ("Lunch?", "r1")
            assert await store.get(first.poll_id) == first

        self.run(case)

    def test_a_poll_closes_once(self) -> None:
        async def case(store: PollStore) -> None:
            made = poll()
            await store.create(made)
            closed, by_us = await store.close(made.poll_id, "c1", 5_000)
            assert by_us
            assert (closed.status, closed.closed_at_ms, closed.close_request_id) == (
                CLOSED,
                5_000,
                "c1",
            )
            again, by_us = await store.close(made.poll_id, "c2", 6_000)
            assert not by_us
            assert (again.closed_at_ms, again.close_request_id) == (5_000, "c1")
            stored = await store.get(made.poll_id)
            assert stored is not None
            assert stored.status == CLOSED

        self.run(case)

    def test_closing_an_unknown_poll_is_poll_not_found(self) -> None:
        async def case(store: PollStore) -> None:
            with pytest.raises(PollNotFound):
                await store.close(f"never-{uuid.uuid4().hex[:8]}", "c", 1)

        self.run(case)

    def test_an_unknown_poll_is_none(self) -> None:
        async def case(store: PollStore) -> None:
            assert await store.get(f"never-{uuid.uuid4().hex[:8]}") is None

        self.run(case)

    def test_what_needs_attention_is_what_is_unpublished_or_overdue(self) -> None:
        async def case(store: PollStore) -> None:
            fresh = poll()
            published = poll(created_published=True)
            overdue = poll(created_published=True, closes_at_ms=2_000)
            later = poll(created_published=True, closes_at_ms=9_000)
            for p in (fresh, published, overdue, later):
                await store.create(p)
            closing, _ = await store.close(published.poll_id, "c", 3_000)
            wanted = {fresh.poll_id, published.poll_id, overdue.poll_id}
            found = {p.poll_id for p in await store.needing_attention(5_000)}
            assert wanted <= found
            assert later.poll_id not in found
            await store.mark_published(fresh.poll_id, "created_published")
            await store.mark_published(closing.poll_id, "closed_published")
            found = {p.poll_id for p in await store.needing_attention(5_000)}
            assert {fresh.poll_id, published.poll_id}.isdisjoint(found)
            assert overdue.poll_id in found

        self.run(case)


class CountedVotesContract:
    def counted(self) -> contextlib.AbstractAsyncContextManager[tuple[CountedVotes, Any]]:
        """The adapter, and a function that stores a counted vote as the worker does."""
        raise NotImplementedError

    def test_a_counted_vote_reads_back_as_its_first_acknowledgement(self) -> None:
        async def case() -> None:
            async with self.counted() as (counted, put):
                ack = Ack("v-1", 2, 17, 1_234, "b", f"p-{uuid.uuid4().hex[:8]}")
                await put(ack, 3, "voter-key")
                assert await counted.find(ack.poll_id, 3, "voter-key") == ack
                assert await counted.find(ack.poll_id, 3, "somebody-else") is None
                assert await counted.find(ack.poll_id, 1, "voter-key") is None

        asyncio.run(case())


@contextlib.asynccontextmanager
async def _in_memory_store() -> AsyncIterator[PollStore]:
    yield InMemoryPollStore()


@pytest.mark.unit
class TestInMemoryPollStore(PollStoreContract):
    def store(self) -> contextlib.AbstractAsyncContextManager[PollStore]:
        return _in_memory_store()


class TestDynamoDBPollStore(PollStoreContract):
    @pytest.fixture(autouse=True)
    def _tables(self, deployment: Deployment) -> None:
        self.settings = deployment.settings

    @contextlib.asynccontextmanager
    async def _store(self) -> AsyncIterator[PollStore]:
        async with dynamodb.client(self.settings.dynamodb) as ddb:
            yield DynamoDBPollStore(ddb, self.settings.dynamodb.polls_table)

    def store(self) -> contextlib.AbstractAsyncContextManager[PollStore]:
        return self._store()


@pytest.mark.unit
class TestInMemoryCountedVotes(CountedVotesContract):
    @contextlib.asynccontextmanager
    async def _counted(self) -> AsyncIterator[tuple[CountedVotes, Any]]:
        counted = InMemoryCountedVotes()

        async def put(ack: Ack, shard: int, voter_key: str) -> None:
            counted.votes[(ack.poll_id, shard, voter_key)] = ack

        yield counted, put

    def counted(self) -> contextlib.AbstractAsyncContextManager[tuple[CountedVotes, Any]]:
        return self._counted()


class TestDynamoDBCountedVotes(CountedVotesContract):
    @pytest.fixture(autouse=True)
    def _tables(self, deployment: Deployment) -> None:
        self.settings = deployment.settings

    @contextlib.asynccontextmanager
    async def _counted(self) -> AsyncIterator[tuple[CountedVotes, Any]]:
        table = self.settings.dynamodb.votes_table
        async with dynamodb.client(self.settings.dynamodb) as ddb:

            async def put(ack: Ack, shard: int, voter_key: str) -> None:
                await ddb.put_item(
                    TableName=table,
                    Item={
                        "pk": {"S": vote_pk(ack.poll_id, shard)},
                        "voter_key": {"S": voter_key},
                        "poll_id": {"S": ack.poll_id},
                        "vote_id": {"S": ack.vote_id},
                        "option_id": {"S": ack.option_id},
                        "cast_at": {"N": str(ack.received_at_ms)},
                        "source_partition": {"N": str(ack.partition)},
                        "source_offset": {"N": str(ack.offset)},
                    },
                )

            yield DynamoDBCountedVotes(ddb, table, timeout_s=5.0), put

    def counted(self) -> contextlib.AbstractAsyncContextManager[tuple[CountedVotes, Any]]:
        return self._counted()


class SharedRequestsContract:
    """What every store of shared request ids promises, one batch per call."""

    def shared(self) -> contextlib.AbstractAsyncContextManager[SharedRequestIds]:
        raise NotImplementedError

    def run(self, case: Callable[[SharedRequestIds], Awaitable[None]]) -> None:
        async def go() -> None:
            async with self.shared() as shared:
                await case(shared)

        asyncio.run(go())

    def test_a_batch_is_claimed_once_and_a_second_claim_sees_each_vote_pending(self) -> None:
        async def case(shared: SharedRequestIds) -> None:
            run = uuid.uuid4().hex[:8]
            votes = [(f"{run}-v{i}", "p", f"o{i % 2}") for i in range(250)]
            assert await shared.claim(votes) == [None] * 250
            again = await shared.claim([*votes[:2], (f"{run}-new", "p", "a")])
            assert again == [Pending("o0"), Pending("o1"), None]

        self.run(case)

    def test_a_completed_vote_answers_its_acknowledgement_to_claims_and_lookups(self) -> None:
        async def case(shared: SharedRequestIds) -> None:
            run = uuid.uuid4().hex[:8]
            votes = [(f"{run}-v{i}", "p", "b") for i in range(3)]
            await shared.claim(votes)
            acks = [Ack(v, 1, 10 + i, 1_000, "b", "p") for i, (v, _, _) in enumerate(votes)]
            await shared.complete(acks[:2])
            assert await shared.claim(votes) == [acks[0], acks[1], Pending("b")]
            looked = await shared.lookup([(v, p) for v, p, _ in votes])
            assert looked == [acks[0], acks[1], Pending("b")]
            assert await shared.lookup([(f"{run}-unknown", "p")]) == [None]

        self.run(case)

    def test_a_released_claim_can_be_claimed_again(self) -> None:
        async def case(shared: SharedRequestIds) -> None:
            run = uuid.uuid4().hex[:8]
            votes = [(f"{run}-v{i}", "p", "a") for i in range(2)]
            await shared.claim(votes)
            await shared.release([votes[0][0]])
            assert await shared.claim(votes) == [None, Pending("a")]
            assert await shared.claim([]) == []
            assert await shared.lookup([]) == []

        self.run(case)


@contextlib.asynccontextmanager
async def _in_memory_shared() -> AsyncIterator[SharedRequestIds]:
    yield InMemorySharedRequests()


@pytest.mark.unit
class TestInMemorySharedRequests(SharedRequestsContract):
    def shared(self) -> contextlib.AbstractAsyncContextManager[SharedRequestIds]:
        return _in_memory_shared()


class TestRedisSharedRequests(SharedRequestsContract):
    @pytest.fixture(autouse=True)
    def _redis(self, deployment: Deployment) -> None:
        self.settings = deployment.settings

    @contextlib.asynccontextmanager
    async def _shared(self) -> AsyncIterator[SharedRequestIds]:
        client = aioredis.from_url(self.settings.redis.url)
        try:
            yield SharedRequests(client, ttl_s=60, claim_ttl_s=30)
        finally:
            await client.aclose()

    def shared(self) -> contextlib.AbstractAsyncContextManager[SharedRequestIds]:
        return self._shared()
