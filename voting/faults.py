"""Fault injection for tests and ``devkit chaos``: off unless VOTING_FAULTS names a point.

A point is a place in the code where a fault is most revealing (e.g. after a
transaction's records were produced but before it commits). Each armed point does one
of two things:

``point=P`` or ``point=crash:P``
    with probability P, exit at once with status 137, exactly as if sent ``kill -9``:
    no cleanup, no flush, no leave-group.
``point=stall:S``, ``point=stall:S:P`` or ``point=stall:S:P:N``
    with probability P (default 1), at most N times (default: every time), block the
    calling thread for S seconds, as a long GC pause, a store in backoff or SIGSTOP
    would; the process then carries on as a zombie that may have lost what it owned
    meanwhile.
"""

from __future__ import annotations

import os
import random
import sys
import time
from dataclasses import dataclass
from typing import Literal

from voting.errors import ConfigError

POINTS = {
    "worker.before-commit": "dedup worker: transaction produced, not committed",
    "worker.after-ledger": "dedup worker: DynamoDB written, transaction not begun",
    "worker.restore": "dedup worker: restoring a partition's state from its changelog",
    "projector.after-counts": "projector: counts applied, positions not advanced",
}


@dataclass(frozen=True, slots=True)
class Fault:
    action: Literal["crash", "stall"]
    probability: float
    seconds: float = 0.0
    times: int | None = None  # None: every time


_armed: dict[str, Fault] = {}


def configure(spec: str) -> None:
    """Arms points from ``"point=spec,point=spec"`` (see the module docstring)."""
    _armed.clear()
    for part in filter(None, (p.strip() for p in spec.split(","))):
        name, _, action = part.partition("=")
        if name not in POINTS:
            raise ConfigError(f"VOTING_FAULTS: unknown point {name!r} (known: {', '.join(POINTS)})")
        try:
            _armed[name] = _parse(action)
        except ValueError as exc:
            raise ConfigError(f"VOTING_FAULTS: bad fault in {part!r}: {exc}") from exc


def _parse(action: str) -> Fault:
    kind, _, rest = action.partition(":")
    if kind == "stall":
        seconds, _, tail = rest.partition(":")
        probability, _, times = tail.partition(":")
        return Fault(
            "stall", float(probability or "1"), float(seconds), int(times) if times else None
        )
    if kind == "crash":
        return Fault("crash", float(rest or "1"))
    return Fault("crash", float(kind or "1"))


def point(name: str) -> None:
    fault = _armed.get(name)
    if fault is None or random.random() >= fault.probability:
        return
    if fault.action == "stall":
        if fault.times is not None:
            if fault.times <= 0:
                return
            _armed[name] = Fault("stall", fault.probability, fault.seconds, fault.times - 1)
        print(f"fault injected at {name}: stalling {fault.seconds}s", file=sys.stderr, flush=True)
        time.sleep(fault.seconds)
        return
    print(f"fault injected at {name}: exiting as if killed", file=sys.stderr, flush=True)
    os._exit(137)
