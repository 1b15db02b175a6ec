"""The read model on Redis (the ReadModel port): updates written each part at most once.

Order matters for readers: vote statuses first, then counts (which advance the
watermark a consistency token is compared with), then positions, then notifications.
A reader that sees the watermark past its vote therefore also sees the vote's status.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from importlib import resources

import redis.asyncio as aioredis
from redis.typing import EncodableT, FieldT

from projector.errors import GuardMismatch, ProjectorError
from projector.ports import FinalState
from projector.projection import Update
from voting import faults
from voting.readmodel import (
    ACTIVE_KEY,
    CHANGES_CHANNEL,
    DEFAULT_NAMESPACE,
    Keys,
    change_message,
    drained_field,
    guard_field,
)
from voting.redis import raw as as_bytes
from voting.redis import text
from voting.v1 import poll_pb2, results_pb2, vote_pb2

_APPLY = resources.files("projector").joinpath("apply_votes.lua").read_text()
_ADVANCE = resources.files("projector").joinpath("advance_positions.lua").read_text()
_BUMP = resources.files("projector").joinpath("bump_version.lua").read_text()
_FINALIZE = resources.files("projector").joinpath("finalize.lua").read_text()


class ReadModelWriter:
    def __init__(
        self,
        client: aioredis.Redis,
        keys: Keys,
        *,
        log_id: str,
        status_ttl_s: int,
        notify: bool = True,
    ) -> None:
        self._redis = client
        self.client = client
        self.keys = keys
        self._notify = notify
        self.log_id = log_id
        self._status_ttl_s = status_ttl_s
        self._apply = client.register_script(_APPLY)
        self._advance = client.register_script(_ADVANCE)
        self._bump = client.register_script(_BUMP)
        self._finalize = client.register_script(_FINALIZE)

    async def active_namespace(self) -> str:
        return text(await self._redis.get(ACTIVE_KEY)) or DEFAULT_NAMESPACE

    async def claim_log(self) -> None:
        """Records which log incarnation the stored offsets refer to."""
        await self._redis.set(self.keys.log, self.log_id)

    async def positions(self, fields: Iterable[str]) -> dict[str, int]:
        names = list(fields)
        if not names:
            return {}
        values = await self._redis.hmget(self.keys.positions(self.log_id), names)
        return {n: int(v) for n, v in zip(names, values, strict=True) if v is not None}

    async def guards(self, pairs: Iterable[tuple[str, int]]) -> dict[tuple[str, int], int]:
        wanted = list(pairs)
        async with self._redis.pipeline(transaction=False) as pipe:
            for poll_id, partition in wanted:
                pipe.hget(self.keys.meta(poll_id), guard_field(self.log_id, partition))
            values = await pipe.execute()
        return {
            pair: int(v) if v is not None else -1 for pair, v in zip(wanted, values, strict=True)
        }

    async def apply(
        self, update: Update, guards: dict[tuple[str, int], int], expected_positions: dict[str, int]
    ) -> dict[str, int]:
        """Applies ``update``; returns {poll_id: new version} of the polls it changed.

        ``guards`` and ``expected_positions`` are what the caller believes is stored;
        they are advanced in place as parts are applied. Raises GuardMismatch (having
        changed nothing more) if the store disagrees.
        """
        keys = self.keys
        now_ms = _now_ms()
        versions: dict[str, int] = {}
        async with self._redis.pipeline(transaction=False) as pipe:
            bumped: list[str] = []
            for vote_id, status in update.statuses:
                # A vote's first decision stands: a later rejection of the same vote id
                # (a late retry of a counted vote) never overwrites it.
                pipe.set(
                    keys.vote_status(vote_id),
                    status.encode(),
                    ex=self._status_ttl_s,
                    nx=status.state != vote_pb2.VOTE_STATE_ACCEPTED,
                )
            for poll_id, definition in update.definitions.items():
                pipe.set(keys.poll(poll_id), definition.poll)
                pipe.zadd(keys.polls, {poll_id: definition.created_at_ms})
            for poll_id, closed_at in update.closes.items():
                pipe.hset(keys.meta(poll_id), "closed_at", str(closed_at))
                pipe.sadd(keys.closing, poll_id)
            for poll_id in update.definitions.keys() | update.closes.keys():
                await self._bump(keys=[keys.meta(poll_id)], args=[now_ms], client=pipe)
                bumped.append(poll_id)
            done = await pipe.execute()
            if bumped:
                versions.update(zip(bumped, map(int, done[-len(bumped) :]), strict=True))
            for key, delta in update.deltas.items():
                args: list[str | int] = [
                    guard_field(self.log_id, delta.partition),
                    guards.get(key, -1),
                    delta.last_offset,
                    now_ms,
                    len(delta.counts),
                ]
                for option_id, count in delta.counts.items():
                    args += [option_id, count]
                for name, value in delta.meta.items():
                    args += [name, value]
                await self._apply(
                    keys=[keys.counts(delta.poll_id), keys.meta(delta.poll_id)],
                    args=args,
                    client=pipe,
                )
            results = await pipe.execute()
        for (key, delta), (applied, value) in zip(update.deltas.items(), results, strict=True):
            if not applied:
                raise GuardMismatch(f"guard of {key} is {value!r}, expected {guards.get(key, -1)}")
            guards[key] = delta.last_offset
            versions[delta.poll_id] = max(versions.get(delta.poll_id, 0), int(value))
        faults.point("projector.after-counts")
        await self._progress(update)
        await self._advance_positions(update, expected_positions)
        await self.notify(versions)
        return versions

    async def _progress(self, update: Update) -> None:
        if update.reflected:
            mapping: dict[FieldT, EncodableT] = {
                str(p): str(ms) for p, ms in update.reflected.items()
            }
            await self._redis.hset(self.keys.progress, mapping=mapping)

    async def mark_caught_up(self, partitions: Iterable[int]) -> None:
        """Every decision of these partitions is applied: nothing cast before now is missing."""
        now = str(_now_ms())
        mapping: dict[FieldT, EncodableT] = {str(p): now for p in partitions}
        if mapping:
            await self._redis.hset(self.keys.progress, mapping=mapping)

    async def _advance_positions(self, update: Update, expected: dict[str, int]) -> None:
        args: list[str | int] = []
        for (topic, partition), offset in update.positions.items():
            name = f"{topic}:{partition}"
            args += [name, expected.get(name, -1), offset]
        if not args:
            return
        if not await self._advance(keys=[self.keys.positions(self.log_id)], args=args):
            raise GuardMismatch("stored positions moved under us")
        for (topic, partition), offset in update.positions.items():
            expected[f"{topic}:{partition}"] = offset

    async def bump_all(self) -> None:
        """Moves every poll's version forward (after a rebuild, before the switch)."""
        now_ms = _now_ms()
        async with self._redis.pipeline(transaction=False) as pipe:
            for member in await self._redis.zrange(self.keys.polls, 0, -1):
                await self._bump(keys=[self.keys.meta(text(member))], args=[now_ms], client=pipe)
            await pipe.execute()

    async def closing(self) -> list[str]:
        """Closed polls whose results are not final yet."""
        return [text(m) for m in await self._redis.smembers(self.keys.closing)]

    async def notify(self, versions: dict[str, int]) -> None:
        if not versions or not self._notify:
            return
        async with self._redis.pipeline(transaction=False) as pipe:
            for poll_id, version in versions.items():
                pipe.publish(CHANGES_CHANNEL, change_message(poll_id, version))
            await pipe.execute()

    # -- what the recount reads and writes -----------------------------------------------

    async def poll_options(self, poll_id: str) -> list[str]:
        raw = await self._redis.get(self.keys.poll(poll_id))
        if raw is None:
            raise ProjectorError(f"poll {poll_id!r} is not in the read model")
        return [o.option_id for o in poll_pb2.Poll.FromString(as_bytes(raw)).options]

    async def drained(self, poll_id: str) -> bool:
        meta = self.keys.meta(poll_id)
        partitions = int(text(await self._redis.hget(meta, "partitions")) or "0")
        if partitions == 0:
            return False
        flags = await self._redis.hmget(meta, [drained_field(p) for p in range(partitions)])
        return all(text(flag) == "1" for flag in flags)

    async def live_counts(self, poll_id: str, options: list[str]) -> dict[str, int]:
        raw = await self._redis.hgetall(self.keys.counts(poll_id))
        return {o: int(raw.get(o.encode(), 0)) for o in options}

    async def finalize(
        self,
        poll_id: str,
        counts: dict[str, int],
        report: results_pb2.RecountReport,
        now_ms: int,
    ) -> tuple[bool, int]:
        args: list[str | int | bytes] = [now_ms, report.SerializeToString()]
        for option_id, count in counts.items():
            args += [option_id, count]
        finalized, version = await self._finalize(
            keys=[self.keys.counts(poll_id), self.keys.meta(poll_id)], args=args
        )
        await self._redis.srem(self.keys.closing, poll_id)
        return bool(finalized), int(version)

    async def final_state(self, poll_id: str) -> FinalState:
        raw = await self._redis.hgetall(self.keys.meta(poll_id))
        meta = {text(k): v for k, v in raw.items()}
        report = results_pb2.RecountReport()
        if "recount" in meta:
            report.ParseFromString(as_bytes(meta["recount"]))
        prefix = f"o:{self.log_id}:"
        return FinalState(
            version=int(text(meta.get("version")) or "0"),
            updated_at_ms=int(text(meta.get("updated_at")) or "0"),
            report=report,
            watermark={
                int(name[len(prefix) :]): int(text(value))
                for name, value in meta.items()
                if self.log_id and name.startswith(prefix)
            },
        )


def _now_ms() -> int:
    return time.time_ns() // 1_000_000
