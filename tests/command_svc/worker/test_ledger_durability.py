"""DynamoDB Local on disk acknowledges a TransactWriteItems before it is durable: killed
within about a second of the reply, it comes back without it. Found by `devkit chaos`
(votes counted live and absent from DynamoDB after a kill of DynamoDB Local); the worker's
ledger barrier (VOTING_LEDGER_BARRIER) makes each batch durable before it commits."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from command_svc.worker.ledger import DynamoDBVoteLedger, LedgerEntry
from devkit.process import Child, spawn
from devkit.stack import components
from voting import dynamodb
from voting.config import DynamoDBSettings

pytestmark = [pytest.mark.slow, pytest.mark.local_infra]

ROUNDS = 3


class DiskDynamoDB:
    """A DynamoDB Local of the test's own, keeping its data on disk."""

    def __init__(self, data_dir: Path) -> None:
        self.port = components.free_port()
        self._component = components.dynamodb(
            port=self.port,
            data_dir=data_dir,
            log_dir=data_dir.parent,
            project_dirs=[Path.cwd(), Path(__file__).resolve().parents[3]],
        )
        self.child: Child | None = None

    def start(self) -> None:
        self.child = spawn(self._component.spec)
        for _ in range(600):
            if self._component.ready():
                return
            time.sleep(0.1)
        raise AssertionError("DynamoDB Local did not start")

    def kill(self) -> None:
        assert self.child is not None
        self.child.kill()

    def settings(self) -> DynamoDBSettings:
        return DynamoDBSettings(
            endpoint_url=f"http://127.0.0.1:{self.port}",
            access_key_id="local",
            secret_access_key="local",
            votes_table="votes",
            checkpoints_table="checkpoints",
        )


@pytest.fixture
def disk_dynamodb(tmp_path: Path) -> Iterator[DiskDynamoDB]:
    (tmp_path / "dynamodb").mkdir()
    store = DiskDynamoDB(tmp_path / "dynamodb")
    store.start()
    yield store
    store.kill()


def _entries(prefix: str) -> list[LedgerEntry]:
    return [
        LedgerEntry(
            poll_id="p",
            shard=0,
            voter_key=f"{prefix}-v{i}",
            vote_id=f"{prefix}-vote-{i}",
            option_id="a",
            cast_at_ms=0,
            partition=0,
            offset=i,
        )
        for i in range(25)
    ]


async def _record_then_kill(
    store: DiskDynamoDB, settings: DynamoDBSettings, round_: int
) -> set[str]:
    """Eight writers record batches for two seconds, as busy workers do; DynamoDB Local
    is killed the moment the last one returns. Returns the vote ids reported written."""
    written: set[str] = set()
    async with dynamodb.client(settings) as ddb:
        ledger = DynamoDBVoteLedger(
            ddb, settings.votes_table, concurrency=8, barrier=(settings.checkpoints_table, "b")
        )
        deadline = time.monotonic() + 2.0

        async def writer(index: int) -> None:
            batch = 0
            while time.monotonic() < deadline:
                entries = _entries(f"r{round_}-w{index}-b{batch}")
                assert await ledger.record(entries, 0) == {}
                written.update(e.vote_id for e in entries)
                batch += 1

        await asyncio.gather(*(writer(i) for i in range(8)))
        store.kill()
    return written


def test_votes_the_ledger_wrote_survive_a_kill_of_dynamodb_local_right_after(
    disk_dynamodb: DiskDynamoDB,
) -> None:
    settings = disk_dynamodb.settings()
    asyncio.run(dynamodb.ensure_tables(settings))
    written: set[str] = set()
    for round_ in range(ROUNDS):
        written |= asyncio.run(_record_then_kill(disk_dynamodb, settings, round_))
        disk_dynamodb.start()
        client = dynamodb.sync_client(settings)
        stored = {
            item["vote_id"]["S"]
            for page in client.get_paginator("scan").paginate(
                TableName=settings.votes_table, ConsistentRead=True
            )
            for item in page["Items"]
        }
        assert written <= stored, f"round {round_}: {len(written - stored)} votes lost"
