"""The dedup worker's ports in memory, for unit tests of its decisions. They keep the
contracts of the DynamoDB adapters (``tests/command_svc/worker/test_ports.py``)."""

from __future__ import annotations

from collections.abc import Sequence

from command_svc.worker.errors import LedgerUnavailable
from command_svc.worker.ledger import LedgerEntry
from command_svc.worker.partition import Checkpoint
from voting.dynamodb import vote_pk


class InMemoryVoteLedger:
    """The votes table as a dict; ``unavailable`` fails every call as DynamoDB down would."""

    def __init__(self) -> None:
        self.items: dict[tuple[str, str], LedgerEntry] = {}
        self.unavailable = False

    async def record(self, entries: Sequence[LedgerEntry], decided_at_ms: int) -> dict[int, str]:
        self._check()
        conflicts: dict[int, str] = {}
        for index, entry in enumerate(entries):
            key = (vote_pk(entry.poll_id, entry.shard), entry.voter_key)
            stored = self.items.get(key)
            if stored is None or (
                stored.vote_id == entry.vote_id and stored.option_id == entry.option_id
            ):
                self.items[key] = entry
            else:
                conflicts[index] = stored.vote_id
        return conflicts

    async def stored_votes(self, entries: Sequence[LedgerEntry]) -> dict[tuple[str, str], str]:
        self._check()
        found: dict[tuple[str, str], str] = {}
        for entry in entries:
            stored = self.items.get((vote_pk(entry.poll_id, entry.shard), entry.voter_key))
            found[(entry.poll_id, entry.voter_key)] = stored.vote_id if stored else ""
        return found

    def _check(self) -> None:
        if self.unavailable:
            raise LedgerUnavailable("the ledger is unavailable")


class InMemoryCheckpoints:
    def __init__(self) -> None:
        self.saved: dict[int, Checkpoint] = {}

    async def load(self, partitions: list[int]) -> dict[int, Checkpoint]:
        return {p: self.saved[p] for p in partitions if p in self.saved}

    async def save(self, partition: int, checkpoint: Checkpoint) -> bool:
        current = self.saved.get(partition)
        if current is None or current.input_offset < checkpoint.input_offset:
            self.saved[partition] = checkpoint
        return True
