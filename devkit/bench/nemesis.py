"""The nemesis: a seeded random schedule of faults over every process and store.

Two kinds of fault, for any target:

``kill``   ``kill -9`` the target's whole process group; restart it ``duration_s`` later.
           The stores keep their data across it as ``devkit up`` runs them (Redis with
           AOF ``everysec``, DynamoDB Local on disk), minus what a kill takes by nature
           (Redis's last second of AOF).
``pause``  ``SIGSTOP`` the target for ``duration_s``, then ``SIGCONT``. For members of a
           consumer group the pause outlasts the session timeout, so they come back as
           zombies: evicted, their partitions fenced by another member, still holding
           what they were doing.

The same seed gives the same schedule: every fault's kind, target, start and duration
come from it (``Schedule.draw``). What actually happened, with real times, is recorded.
"""

from __future__ import annotations

import logging
import random
import signal
import threading
import time
from dataclasses import asdict, dataclass
from typing import Any, Literal

from devkit.stack.errors import StackError
from devkit.stack.stack import Stack

log = logging.getLogger(__name__)

Kind = Literal["kill", "pause"]
GROUP_MEMBERS = frozenset({"worker", "worker-2", "projector"})


@dataclass(frozen=True)
class Fault:
    kind: Kind
    target: str
    at_s: float  # after the schedule starts
    duration_s: float


@dataclass(frozen=True)
class Schedule:
    seed: int
    faults: tuple[Fault, ...]

    @property
    def span_s(self) -> float:
        return max((f.at_s + f.duration_s for f in self.faults), default=0.0)

    @classmethod
    def draw(
        cls,
        seed: int,
        *,
        targets: tuple[str, ...],
        kinds: dict[str, tuple[Kind, ...]],
        rounds: int = 1,
        extra: int = 0,
        session_timeout_s: float = 6.0,
        gap_s: tuple[float, float] = (2.0, 7.0),
    ) -> Schedule:
        """Every (kind, target) of ``kinds`` ``rounds`` times, plus ``extra`` drawn at
        random (a kill and a pause among them), in a random order; a fault starts a
        random gap after the one before, so faults of different targets often overlap,
        and never two on one target."""
        rng = random.Random(seed)
        wanted: list[tuple[Kind, str]] = [
            (kind, target) for _ in range(rounds) for target in targets for kind in kinds[target]
        ]
        everything = [(kind, target) for target in targets for kind in kinds[target]]
        drawn = [rng.choice(everything) for _ in range(extra)]
        for position, kind in enumerate(("kill", "pause")):
            if extra > position and all(k != kind for k, _ in drawn):
                drawn[position] = rng.choice([f for f in everything if f[0] == kind])
        wanted += drawn
        rng.shuffle(wanted)
        faults: list[Fault] = []
        busy_until: dict[str, float] = {}
        at = 0.0
        for kind, target in wanted:
            if kind == "pause" and target in GROUP_MEMBERS:
                duration = rng.uniform(session_timeout_s + 1, session_timeout_s + 5)
            elif kind == "pause":
                duration = rng.uniform(2.0, 8.0)
            else:
                duration = rng.uniform(0.5, 4.0)
            start = max(at, busy_until.get(target, 0.0))
            faults.append(Fault(kind, target, round(start, 2), round(duration, 2)))
            # A restart takes a while too: keep the target's next fault clear of it.
            busy_until[target] = start + duration + 8.0
            at = start + rng.uniform(*gap_s)
        return cls(seed, tuple(faults))


class Nemesis:
    """Carries out a schedule on a stack, each fault on a thread of its own."""

    def __init__(self, stack: Stack, schedule: Schedule) -> None:
        self._stack = stack
        self._schedule = schedule
        self.done: list[dict[str, Any]] = []
        self.errors: list[str] = []
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    def run(self, started: float) -> None:
        """Blocks until every fault has ended and its target answers again."""
        for fault in self._schedule.faults:
            delay = started + fault.at_s - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            thread = threading.Thread(
                target=self._inject, args=(fault, started), name=f"fault-{fault.target}"
            )
            thread.start()
            self._threads.append(thread)
        for thread in self._threads:
            thread.join()

    def _inject(self, fault: Fault, started: float) -> None:
        child = self._stack.children[fault.target]
        began = time.monotonic()
        if fault.kind == "pause":
            child.signal(signal.SIGSTOP)
            time.sleep(fault.duration_s)
            child.signal(signal.SIGCONT)
            back = time.monotonic()
        else:
            child.kill()
            time.sleep(fault.duration_s)
            back = self._restart(fault.target)
        record = {
            **asdict(fault),
            "started_at_s": round(began - started, 2),
            "back_after_s": round(back - began, 2),
        }
        with self._lock:
            self.done.append(record)

    def _restart(self, target: str) -> float:
        for attempt in range(5):
            try:
                self._stack.restart(target)
                if self._stack.is_store(target):
                    self._stack.provision()
                return time.monotonic()
            except StackError as exc:
                log.warning("restart of %s failed (attempt %d): %s", target, attempt + 1, exc)
                time.sleep(2.0)
        with self._lock:
            self.errors.append(f"{target} did not start again")
        return time.monotonic()
