"""The projector's ports: the read model it writes (Redis in production, ``store``) and
the source of truth its recount reads (DynamoDB, ``recount_source``). Unit tests run the
projection and the recount on the in-memory adapters (``projector.memory``); one contract
suite runs over both adapters of each (``tests/projector/test_ports.py``)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

from projector.projection import Update
from voting.readmodel import Keys
from voting.v1 import results_pb2


@dataclass(frozen=True)
class FinalState:
    version: int
    updated_at_ms: int
    report: results_pb2.RecountReport
    watermark: dict[int, int] = field(default_factory=dict)  # partition -> last offset


class ReadModel(Protocol):
    """The read model, as the projector and its recount change it. Every change is made at
    most once: ``apply`` applies a poll's delta only if that poll's guard for the source
    partition is where the caller expects, and the positions only if they are; otherwise
    it raises GuardMismatch having changed nothing more."""

    keys: Keys

    async def active_namespace(self) -> str: ...

    async def claim_log(self) -> None:
        """Records which log incarnation the stored positions and guards refer to."""
        ...

    async def positions(self, fields: Iterable[str]) -> dict[str, int]: ...

    async def guards(self, pairs: Iterable[tuple[str, int]]) -> dict[tuple[str, int], int]: ...

    async def apply(
        self, update: Update, guards: dict[tuple[str, int], int], expected_positions: dict[str, int]
    ) -> dict[str, int]:
        """Applies ``update``, advancing ``guards`` and ``expected_positions`` in place;
        returns {poll: new version}. A vote's first decision stands: a later rejection of
        its vote id never overwrites it. Final counts never change again."""
        ...

    async def mark_caught_up(self, partitions: Iterable[int]) -> None: ...

    async def closing(self) -> list[str]:
        """Closed polls whose results are not final yet."""
        ...

    async def notify(self, versions: dict[str, int]) -> None: ...

    async def bump_all(self) -> None:
        """Moves every poll's version forward (after a rebuild, before the switch)."""
        ...

    # -- what the recount reads and writes -----------------------------------------------

    async def poll_options(self, poll_id: str) -> list[str]:
        """The poll's option ids; raises ProjectorError if the poll is not known."""
        ...

    async def drained(self, poll_id: str) -> bool:
        """Every partition has passed the poll's close point (its marker was applied)."""
        ...

    async def live_counts(self, poll_id: str, options: list[str]) -> dict[str, int]: ...

    async def finalize(
        self,
        poll_id: str,
        counts: dict[str, int],
        report: results_pb2.RecountReport,
        now_ms: int,
    ) -> tuple[bool, int]:
        """Replaces the live counts with ``counts`` and marks them FINAL; (False, version)
        if they already were. Either way the poll leaves ``closing``."""
        ...

    async def final_state(self, poll_id: str) -> FinalState:
        """What FINAL results say besides their counts (the first recount's report)."""
        ...


class RecountSource(Protocol):
    """What the recount counts from: the source of truth (the ``polls``, ``votes`` and
    ``results`` tables)."""

    async def closed_poll_shards(self, poll_id: str) -> int:
        """The poll's ledger shard count; raises PollNotClosed unless it is closed."""
        ...

    async def saved_counts(self, poll_id: str) -> dict[int, Counter[str]]:
        """The counts of the shards an earlier, interrupted recount finished."""
        ...

    async def count_shard(self, poll_id: str, shard: int) -> Counter[str]: ...

    async def save_counts(self, poll_id: str, shard: int, counted: Counter[str]) -> None: ...

    async def store_final(
        self,
        poll_id: str,
        counts: dict[str, int],
        live: dict[str, int],
        matched: bool,
        now_ms: int,
    ) -> None:
        """The final tally; a second call keeps the first one's comparison."""
        ...

    async def not_final(self) -> list[str]:
        """Closed polls whose final tally is not stored yet."""
        ...
