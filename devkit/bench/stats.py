"""Small statistics helpers for benchmark figures."""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from typing import Any


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile; 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def weighted_percentile(samples: Sequence[tuple[float, int]], pct: float) -> float:
    """:func:`percentile` of values given as (value, how many times): the same answer as
    over the expanded list, without building it."""
    total = sum(n for _, n in samples)
    if not total:
        return 0.0
    rank = max(1, math.ceil(pct / 100 * total))
    seen = 0
    for value, n in sorted(samples):
        seen += n
        if seen >= rank:
            return value
    raise AssertionError("unreachable: rank <= total")


def rounded(value: float, digits: int = 1) -> float:
    return round(value, digits)


def windows(measure: Callable[[], float], count: int, *, warmup: int = 0) -> dict[str, Any]:
    """Runs ``measure`` ``count`` times back to back (after ``warmup`` runs that are
    not kept): the median and the spread."""
    for _ in range(warmup):
        measure()
    values = [measure() for _ in range(count)]
    return {
        "median": rounded(statistics.median(values)),
        "min": rounded(min(values)),
        "max": rounded(max(values)),
        "windows": [rounded(v) for v in values],
    }
