"""The projector's ports in memory, for unit tests of the projection and the recount.
They keep the contracts of the Redis and DynamoDB adapters
(``tests/projector/test_ports.py``): guards and positions checked before anything is
changed, versions that only grow, final counts that never change, a vote's first
decision that stands."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from projector.errors import GuardMismatch, PollNotClosed, ProjectorError
from projector.ports import FinalState
from projector.projection import Update
from voting.readmodel import DEFAULT_NAMESPACE, Keys, VoteStatus, drained_field, guard_field
from voting.v1 import poll_pb2, results_pb2, vote_pb2


@dataclass
class Namespace:
    """One read model, as a Redis namespace holds it."""

    polls: dict[str, bytes] = field(default_factory=dict)  # serialized Poll
    created: dict[str, int] = field(default_factory=dict)
    counts: dict[str, Counter[str]] = field(default_factory=dict)
    meta: dict[str, dict[str, str]] = field(default_factory=dict)
    statuses: dict[str, VoteStatus] = field(default_factory=dict)
    progress: dict[int, int] = field(default_factory=dict)
    positions: dict[str, dict[str, int]] = field(default_factory=dict)  # log id -> positions
    log: str = ""
    closing: set[str] = field(default_factory=set)
    recount_reports: dict[str, bytes] = field(default_factory=dict)


class InMemoryReadModel:
    def __init__(self, *, keys: Keys | None = None, log_id: str = "log", now_ms: int = 0) -> None:
        self.keys = keys or Keys(DEFAULT_NAMESPACE)
        self.log_id = log_id
        self.namespaces: dict[str, Namespace] = {}
        self.active = DEFAULT_NAMESPACE
        self.notified: list[dict[str, int]] = []
        self._clock = now_ms  # 0: versions count changes only

    @property
    def ns(self) -> Namespace:
        return self.namespaces.setdefault(self.keys.namespace, Namespace())

    def _now(self) -> int:
        self._clock += 1
        return self._clock

    def _bump(self, poll_id: str, now: int) -> int:
        meta = self.ns.meta.setdefault(poll_id, {})
        version = max(int(meta.get("version", "0")) + 1, now)
        meta["version"] = str(version)
        return version

    async def active_namespace(self) -> str:
        return self.active

    async def claim_log(self) -> None:
        self.ns.log = self.log_id

    async def positions(self, fields: Iterable[str]) -> dict[str, int]:
        stored = self.ns.positions.get(self.log_id, {})
        return {n: stored[n] for n in fields if n in stored}

    async def guards(self, pairs: Iterable[tuple[str, int]]) -> dict[tuple[str, int], int]:
        return {
            (poll_id, partition): int(
                self.ns.meta.get(poll_id, {}).get(guard_field(self.log_id, partition), "-1")
            )
            for poll_id, partition in pairs
        }

    async def apply(
        self, update: Update, guards: dict[tuple[str, int], int], expected_positions: dict[str, int]
    ) -> dict[str, int]:
        ns = self.ns
        now = self._now()
        versions: dict[str, int] = {}
        for vote_id, status in update.statuses:
            if status.state == vote_pb2.VOTE_STATE_ACCEPTED or vote_id not in ns.statuses:
                ns.statuses[vote_id] = status
        for poll_id, definition in update.definitions.items():
            ns.polls[poll_id] = definition.poll
            ns.created[poll_id] = definition.created_at_ms
        for poll_id, closed_at in update.closes.items():
            ns.meta.setdefault(poll_id, {})["closed_at"] = str(closed_at)
            ns.closing.add(poll_id)
        for poll_id in update.definitions.keys() | update.closes.keys():
            versions[poll_id] = self._bump(poll_id, now)
        applied: list[tuple[tuple[str, int], bool, str]] = []
        for key, delta in update.deltas.items():
            meta = ns.meta.setdefault(delta.poll_id, {})
            name = guard_field(self.log_id, delta.partition)
            stored = meta.get(name)
            if (stored is None and guards.get(key, -1) != -1) or (
                stored is not None and int(stored) != guards.get(key, -1)
            ):
                applied.append((key, False, stored or "-1"))
                continue
            if meta.get("final") != "1":
                counts = ns.counts.setdefault(delta.poll_id, Counter())
                counts.update(delta.counts)
            meta.update(delta.meta)
            meta[name] = str(delta.last_offset)
            meta["updated_at"] = str(now)
            applied.append((key, True, str(self._bump(delta.poll_id, now))))
        for key, ok, value in applied:
            if not ok:
                raise GuardMismatch(f"guard of {key} is {value!r}, expected {guards.get(key, -1)}")
            guards[key] = update.deltas[key].last_offset
            poll_id = update.deltas[key].poll_id
            versions[poll_id] = max(versions.get(poll_id, 0), int(value))
        for partition, ms in update.reflected.items():
            ns.progress[partition] = ms
        stored_positions = ns.positions.setdefault(self.log_id, {})
        moves = {f"{t}:{p}": o for (t, p), o in update.positions.items()}
        if any(stored_positions.get(n, -1) != expected_positions.get(n, -1) for n in moves):
            raise GuardMismatch("stored positions moved under us")
        stored_positions.update(moves)
        expected_positions.update(moves)
        await self.notify(versions)
        return versions

    async def mark_caught_up(self, partitions: Iterable[int]) -> None:
        now = self._now()
        for partition in partitions:
            self.ns.progress[partition] = now

    async def closing(self) -> list[str]:
        return sorted(self.ns.closing)

    async def notify(self, versions: dict[str, int]) -> None:
        if versions:
            self.notified.append(dict(versions))

    async def bump_all(self) -> None:
        now = self._now()
        for poll_id in self.ns.polls:
            self._bump(poll_id, now)

    # -- what the recount reads and writes -----------------------------------------------

    async def poll_options(self, poll_id: str) -> list[str]:
        raw = self.ns.polls.get(poll_id)
        if raw is None:
            raise ProjectorError(f"poll {poll_id!r} is not in the read model")
        return [o.option_id for o in poll_pb2.Poll.FromString(raw).options]

    async def drained(self, poll_id: str) -> bool:
        meta = self.ns.meta.get(poll_id, {})
        partitions = int(meta.get("partitions", "0"))
        return partitions > 0 and all(meta.get(drained_field(p)) == "1" for p in range(partitions))

    async def live_counts(self, poll_id: str, options: list[str]) -> dict[str, int]:
        counts = self.ns.counts.get(poll_id, Counter())
        return {o: counts.get(o, 0) for o in options}

    async def finalize(
        self,
        poll_id: str,
        counts: dict[str, int],
        report: results_pb2.RecountReport,
        now_ms: int,
    ) -> tuple[bool, int]:
        meta = self.ns.meta.setdefault(poll_id, {})
        self.ns.closing.discard(poll_id)
        if meta.get("final") == "1":
            return False, int(meta.get("version", "0"))
        self.ns.counts[poll_id] = Counter(counts)
        meta["final"] = "1"
        meta["updated_at"] = str(now_ms)
        self.ns.recount_reports[poll_id] = report.SerializeToString()
        return True, self._bump(poll_id, now_ms)

    async def final_state(self, poll_id: str) -> FinalState:
        meta = self.ns.meta.get(poll_id, {})
        report = results_pb2.RecountReport()
        report.ParseFromString(self.ns.recount_reports.get(poll_id, b""))
        prefix = f"o:{self.log_id}:"
        return FinalState(
            version=int(meta.get("version", "0")),
            updated_at_ms=int(meta.get("updated_at", "0")),
            report=report,
            watermark={
                int(k[len(prefix) :]): int(v) for k, v in meta.items() if k.startswith(prefix)
            },
        )


class InMemoryRecountSource:
    """The source of truth: closed polls (with their shard count) and counted votes."""

    def __init__(self) -> None:
        self.closed: dict[str, int] = {}
        self.votes: dict[tuple[str, int], Counter[str]] = {}  # (poll, shard) -> counts
        self.saved: dict[str, dict[int, Counter[str]]] = {}
        self.finals: dict[str, tuple[dict[str, int], dict[str, int], bool]] = {}
        self.shards_counted = 0

    async def closed_poll_shards(self, poll_id: str) -> int:
        if poll_id not in self.closed:
            raise PollNotClosed(f"poll {poll_id!r} is not closed")
        return self.closed[poll_id]

    async def saved_counts(self, poll_id: str) -> dict[int, Counter[str]]:
        return dict(self.saved.get(poll_id, {}))

    async def count_shard(self, poll_id: str, shard: int) -> Counter[str]:
        self.shards_counted += 1
        return Counter(self.votes.get((poll_id, shard), Counter()))

    async def save_counts(self, poll_id: str, shard: int, counted: Counter[str]) -> None:
        self.saved.setdefault(poll_id, {})[shard] = counted

    async def store_final(
        self,
        poll_id: str,
        counts: dict[str, int],
        live: dict[str, int],
        matched: bool,
        now_ms: int,
    ) -> None:
        self.finals.setdefault(poll_id, (counts, live, matched))

    async def not_final(self) -> list[str]:
        return sorted(p for p in self.closed if p not in self.finals)
