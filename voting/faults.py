"""Fault injection for tests and ``voting chaos``: off unless VOTING_FAULTS names a point.

A point is a place in the code where a crash is most revealing (e.g. after a
transaction's records were produced but before it commits). When the point is armed
with probability p, the process exits at once with status 137, exactly as if it had
been sent ``kill -9``: no cleanup, no flush, no leave-group.
"""

from __future__ import annotations

import os
import random
import sys

from voting.errors import ConfigError

POINTS = {
    "worker.before-commit": "dedup worker: transaction produced, not committed",
    "worker.after-ledger": "dedup worker: DynamoDB written, transaction not begun",
    "projector.after-counts": "projector: counts applied, positions not advanced",
}

_armed: dict[str, float] = {}


def configure(spec: str) -> None:
    """Arms points from ``"point=probability,point=probability"``."""
    _armed.clear()
    for part in filter(None, (p.strip() for p in spec.split(","))):
        name, _, probability = part.partition("=")
        if name not in POINTS:
            raise ConfigError(f"VOTING_FAULTS: unknown point {name!r} (known: {', '.join(POINTS)})")
        try:
            _armed[name] = float(probability or "1")
        except ValueError as exc:
            raise ConfigError(f"VOTING_FAULTS: bad probability in {part!r}") from exc


def point(name: str) -> None:
    probability = _armed.get(name)
    if probability is not None and random.random() < probability:
        print(f"fault injected at {name}: exiting as if killed", file=sys.stderr, flush=True)
        os._exit(137)
