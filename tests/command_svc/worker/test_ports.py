"""The dedup worker's ports: one contract, kept by the in-memory adapters and by the
DynamoDB ones (the ledger in both write modes)."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import pytest

from command_svc.worker.checkpoints import DynamoDBCheckpoints
from command_svc.worker.ledger import DynamoDBVoteLedger, LedgerEntry
from command_svc.worker.memory import InMemoryCheckpoints, InMemoryVoteLedger
from command_svc.worker.partition import Checkpoint
from command_svc.worker.ports import Checkpoints, VoteLedger
from tests.harness import Deployment
from voting import dynamodb


def entry(voter: str, vote_id: str, option: str = "a", *, poll_id: str = "p") -> LedgerEntry:
    return LedgerEntry(
        poll_id=poll_id,
        shard=hash(voter) % 4,
        voter_key=voter,
        vote_id=vote_id,
        option_id=option,
        cast_at_ms=1_000,
        partition=0,
        offset=7,
    )


class VoteLedgerContract:
    def ledger(self) -> contextlib.AbstractAsyncContextManager[VoteLedger]:
        raise NotImplementedError

    def run(self, case: Callable[[VoteLedger, str], Coroutine[Any, Any, None]]) -> None:
        async def go() -> None:
            async with self.ledger() as ledger:
                await case(ledger, f"p-{uuid.uuid4().hex[:8]}")

        asyncio.run(go())

    def test_new_votes_are_stored_and_read_back(self) -> None:
        async def case(ledger: VoteLedger, poll: str) -> None:
            votes = [entry("ada", "v1", poll_id=poll), entry("bob", "v2", "b", poll_id=poll)]
            assert await ledger.record(votes, 0) == {}
            assert await ledger.stored_votes([*votes, entry("cy", "v3", poll_id=poll)]) == {
                (poll, "ada"): "v1",
                (poll, "bob"): "v2",
                (poll, "cy"): "",
            }

        self.run(case)

    def test_writing_the_same_vote_again_changes_nothing(self) -> None:
        async def case(ledger: VoteLedger, poll: str) -> None:
            vote = entry("ada", "v1", poll_id=poll)
            assert await ledger.record([vote], 0) == {}
            assert await ledger.record([vote], 5) == {}

        self.run(case)

    def test_another_vote_of_a_voter_is_not_stored_and_names_the_stored_one(self) -> None:
        async def case(ledger: VoteLedger, poll: str) -> None:
            await ledger.record([entry("ada", "v1", poll_id=poll)], 0)
            batch = [entry("bob", "v2", poll_id=poll), entry("ada", "v9", "b", poll_id=poll)]
            assert await ledger.record(batch, 0) == {1: "v1"}
            found = await ledger.stored_votes(batch)
            assert found == {(poll, "bob"): "v2", (poll, "ada"): "v1"}

        self.run(case)

    def test_a_stored_vote_never_changes_option_even_under_its_own_vote_id(self) -> None:
        """A request id reused for another option keeps its vote id."""

        async def case(ledger: VoteLedger, poll: str) -> None:
            await ledger.record([entry("ada", "v1", "a", poll_id=poll)], 0)
            assert await ledger.record([entry("ada", "v1", "b", poll_id=poll)], 0) == {0: "v1"}

        self.run(case)


class CheckpointsContract:
    def checkpoints(self) -> contextlib.AbstractAsyncContextManager[Checkpoints]:
        raise NotImplementedError

    def test_only_a_later_checkpoint_replaces_a_saved_one(self) -> None:
        async def case() -> None:
            async with self.checkpoints() as checkpoints:
                assert await checkpoints.load([0, 1]) == {}
                assert await checkpoints.save(0, Checkpoint(start=100, input_offset=50))
                assert await checkpoints.save(0, Checkpoint(start=90, input_offset=40))
                assert await checkpoints.load([0, 1]) == {0: Checkpoint(100, 50)}
                assert await checkpoints.save(0, Checkpoint(start=300, input_offset=80))
                assert await checkpoints.load([0]) == {0: Checkpoint(300, 80)}

        asyncio.run(case())


@contextlib.asynccontextmanager
async def _yield(value: Any) -> AsyncIterator[Any]:
    yield value


@pytest.mark.unit
class TestInMemoryVoteLedger(VoteLedgerContract):
    def ledger(self) -> contextlib.AbstractAsyncContextManager[VoteLedger]:
        return _yield(InMemoryVoteLedger())


@pytest.mark.unit
class TestInMemoryCheckpoints(CheckpointsContract):
    def checkpoints(self) -> contextlib.AbstractAsyncContextManager[Checkpoints]:
        return _yield(InMemoryCheckpoints())


class _OnDynamoDB:
    mode = "transact"

    @pytest.fixture(autouse=True)
    def _tables(self, deployment: Deployment) -> None:
        self.settings = deployment.settings


class TestDynamoDBVoteLedger(_OnDynamoDB, VoteLedgerContract):
    @contextlib.asynccontextmanager
    async def _ledger(self) -> AsyncIterator[VoteLedger]:
        async with dynamodb.client(self.settings.dynamodb) as ddb:
            yield DynamoDBVoteLedger(
                ddb,
                self.settings.dynamodb.votes_table,
                concurrency=4,
                mode=self.mode,  # type: ignore[arg-type]
                barrier=(self.settings.dynamodb.checkpoints_table, "barrier"),
            )

    def ledger(self) -> contextlib.AbstractAsyncContextManager[VoteLedger]:
        return self._ledger()


class TestDynamoDBVoteLedgerOnePutAtATime(TestDynamoDBVoteLedger):
    mode = "put"


class TestDynamoDBCheckpoints(_OnDynamoDB, CheckpointsContract):
    @contextlib.asynccontextmanager
    async def _checkpoints(self) -> AsyncIterator[Checkpoints]:
        async with dynamodb.client(self.settings.dynamodb) as ddb:
            yield DynamoDBCheckpoints(
                ddb, self.settings.dynamodb.checkpoints_table, prefix=uuid.uuid4().hex
            )

    def checkpoints(self) -> contextlib.AbstractAsyncContextManager[Checkpoints]:
        return self._checkpoints()
