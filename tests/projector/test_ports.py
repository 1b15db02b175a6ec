"""The projector's read model port: one contract, kept by the in-memory adapter (the
projection and the recount are unit tested on it) and by Redis, which production runs."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import pytest
import redis.asyncio as aioredis

from projector.errors import GuardMismatch
from projector.memory import InMemoryReadModel
from projector.ports import ReadModel
from projector.projection import Update, fold
from projector.store import ReadModelWriter
from tests.harness import Deployment
from tests.projector.decisions import POLLS, accepted, definition, drained, rejected
from tests.records import Log
from voting.readmodel import Keys, VoteStatus
from voting.redis import raw as as_bytes
from voting.v1 import events_pb2, results_pb2, vote_pb2

Case = Callable[[ReadModel, Callable[[str], Coroutine[Any, Any, VoteStatus | None]]], Any]


def marker(poll_id: str, src: int, at: int, partitions: int) -> events_pb2.PollClosed:
    closed = drained(poll_id, src=src, at=at)
    closed.partition_count = partitions
    return closed


class ReadModelContract:
    def model(self) -> contextlib.AbstractAsyncContextManager[tuple[ReadModel, Any]]:
        """The adapter, and how to read a vote's status back (the projector never does)."""
        raise NotImplementedError

    def run(self, case: Case) -> None:
        async def go() -> None:
            async with self.model() as (model, status_of):
                await model.claim_log()
                await case(model, status_of)

        asyncio.run(go())

    @staticmethod
    async def apply(
        model: ReadModel, log: Log, guards: dict[tuple[str, int], int], positions: dict[str, int]
    ) -> Update:
        unknown = {
            (d.poll_id, d.partition)
            for d in fold(log.records, guards, polls_topic=POLLS).deltas.values()
        } - guards.keys()
        guards.update(await model.guards(unknown))
        update = fold(log.records, guards, polls_topic=POLLS)
        await model.apply(update, guards, positions)
        log.records.clear()
        return update

    def test_each_decision_counts_once_however_often_it_is_delivered(self) -> None:
        async def case(model: ReadModel, _: Any) -> None:
            poll_id = f"p-{uuid.uuid4().hex[:8]}"
            log = Log()
            definition(poll_id, log)
            for at in range(3):
                log.append(accepted(poll_id, "a", at=at))
            log.append(accepted(poll_id, "b", src=1, at=0), partition=1)
            copies = list(log.records)
            guards: dict[tuple[str, int], int] = {}
            positions: dict[str, int] = {}
            await self.apply(model, log, guards, positions)
            log.records.extend(copies)  # delivered again: a redelivery, or a replay
            again = fold(log.records, guards, polls_topic=POLLS)
            assert again.deltas == {}
            assert await model.live_counts(poll_id, ["a", "b"]) == {"a": 3, "b": 1}
            assert await model.poll_options(poll_id) == ["a", "b"]

        self.run(case)

    def test_a_delta_against_a_guard_that_moved_changes_no_count(self) -> None:
        async def case(model: ReadModel, _: Any) -> None:
            poll_id = f"p-{uuid.uuid4().hex[:8]}"
            log = Log()
            definition(poll_id, log)
            log.append(accepted(poll_id, "a", at=0))
            await self.apply(model, log, {}, {})
            late = Log()
            late.append(accepted(poll_id, "a", at=5))
            stale = fold(late.records, {}, polls_topic=POLLS)  # believes the guard is absent
            with pytest.raises(GuardMismatch):
                await model.apply(stale, {}, {})
            assert await model.live_counts(poll_id, ["a", "b"]) == {"a": 1, "b": 0}

        self.run(case)

    def test_positions_move_only_from_where_the_caller_believes_they_are(self) -> None:
        async def case(model: ReadModel, _: Any) -> None:
            poll_id = f"p-{uuid.uuid4().hex[:8]}"
            log = Log()
            log.append(accepted(poll_id, "a", at=0))
            positions: dict[str, int] = {}
            await self.apply(model, log, {}, positions)
            assert await model.positions(positions) == positions
            log.append(accepted(poll_id, "a", at=1))
            with pytest.raises(GuardMismatch):
                await self.apply(model, log, {}, {})  # believes nothing was stored

        self.run(case)

    def test_a_votes_first_decision_stands(self) -> None:
        async def case(model: ReadModel, status_of: Any) -> None:
            poll_id = f"p-{uuid.uuid4().hex[:8]}"
            log = Log()
            log.append(accepted(poll_id, "a", at=0, vote_id="v1"))
            log.append(rejected(poll_id, vote_pb2.REJECT_REASON_CLOSED, at=1, vote_id="v1"))
            log.append(rejected(poll_id, vote_pb2.REJECT_REASON_DUPLICATE, at=2, vote_id="v2"))
            log.append(rejected(poll_id, vote_pb2.REJECT_REASON_CLOSED, at=3, vote_id="v2"))
            await self.apply(model, log, {}, {})
            first = await status_of("v1")
            second = await status_of("v2")
            assert (first.state, first.option_id) == (vote_pb2.VOTE_STATE_ACCEPTED, "a")
            assert second.reason == vote_pb2.REJECT_REASON_DUPLICATE

        self.run(case)

    def test_a_drained_poll_is_finalized_once_and_its_counts_never_change_again(self) -> None:
        async def case(model: ReadModel, _: Any) -> None:
            poll_id = f"p-{uuid.uuid4().hex[:8]}"
            log = Log()
            definition(poll_id, log)
            log.append(accepted(poll_id, "a", at=0))
            log.append(marker(poll_id, 0, 1, partitions=2))
            guards: dict[tuple[str, int], int] = {}
            positions: dict[str, int] = {}
            await self.apply(model, log, guards, positions)
            assert not await model.drained(poll_id)
            log.append(marker(poll_id, 1, 0, partitions=2), partition=1)
            await self.apply(model, log, guards, positions)
            assert await model.drained(poll_id)
            report = results_pb2.RecountReport(matched=False)
            finalized, version = await model.finalize(poll_id, {"a": 2, "b": 0}, report, 10**13)
            assert finalized
            assert await model.finalize(poll_id, {"a": 9, "b": 9}, report, 10**13) == (
                False,
                version,
            )
            log.append(accepted(poll_id, "a", at=2))  # a replay after a loss, say
            await self.apply(model, log, guards, positions)
            assert await model.live_counts(poll_id, ["a", "b"]) == {"a": 2, "b": 0}
            assert poll_id not in await model.closing()

        self.run(case)


@pytest.mark.unit
class TestInMemoryReadModel(ReadModelContract):
    @contextlib.asynccontextmanager
    async def _model(self) -> AsyncIterator[tuple[ReadModel, Any]]:
        model = InMemoryReadModel()

        async def status_of(vote_id: str) -> VoteStatus | None:
            return model.ns.statuses.get(vote_id)

        yield model, status_of

    def model(self) -> contextlib.AbstractAsyncContextManager[tuple[ReadModel, Any]]:
        return self._model()


class TestRedisReadModel(ReadModelContract):
    @pytest.fixture(autouse=True)
    def _redis(self, deployment: Deployment) -> None:
        self.url = deployment.settings.redis.url

    @contextlib.asynccontextmanager
    async def _model(self) -> AsyncIterator[tuple[ReadModel, Any]]:
        client = aioredis.from_url(self.url)
        keys = Keys(f"contract-{uuid.uuid4().hex[:6]}")
        writer = ReadModelWriter(client, keys, log_id="log", status_ttl_s=600)

        async def status_of(vote_id: str) -> VoteStatus | None:
            raw = await client.get(keys.vote_status(vote_id))
            return VoteStatus.decode(as_bytes(raw)) if raw is not None else None

        try:
            yield writer, status_of
        finally:
            await client.aclose()

    def model(self) -> contextlib.AbstractAsyncContextManager[tuple[ReadModel, Any]]:
        return self._model()
