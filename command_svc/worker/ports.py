"""The dedup worker's ports: the ledger of counted votes (the source of truth) and where
each partition's restore starts. Production runs them on DynamoDB (``ledger``,
``checkpoints``); unit tests on the in-memory adapters (``command_svc.worker.memory``).
One contract suite runs over both (``tests/command_svc/worker/test_ports.py``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from command_svc.worker.ledger import LedgerEntry
from command_svc.worker.partition import Checkpoint


class VoteLedger(Protocol):
    async def record(self, entries: Sequence[LedgerEntry], decided_at_ms: int) -> dict[int, str]:
        """Stores every entry unless the voter already has a vote in the poll that is not
        this one (another vote id, or the same id with another option). Returns {index:
        the vote id stored for that voter} of the entries it did not store; every other
        entry is durably stored. Storing an entry again changes nothing. Raises
        LedgerUnavailable when it cannot tell."""
        ...

    async def stored_votes(self, entries: Sequence[LedgerEntry]) -> dict[tuple[str, str], str]:
        """(poll, voter) -> the vote id stored for the voter ("" for none), as of now."""
        ...


class Checkpoints(Protocol):
    async def load(self, partitions: list[int]) -> dict[int, Checkpoint]:
        """The saved checkpoints of ``partitions``; none when the store does not answer."""
        ...

    async def save(self, partition: int, checkpoint: Checkpoint) -> bool:
        """Saves it unless a later one is saved; False if the store failed."""
        ...
