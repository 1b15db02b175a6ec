"""The PNG beside each benchmark's JSON: throughput and latencies over time."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def timeline_png(timeline: list[dict[str, Any]], title: str, path: Path) -> Path:
    import matplotlib  # noqa: PLC0415 - only the benchmark needs it

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    seconds = [row["t"] for row in timeline]
    fig, (rates, latencies) = plt.subplots(2, 1, figsize=(10, 7), sharex=True)
    rates.plot(seconds, [row["acked_per_s"] for row in timeline], label="acknowledged votes/s")
    rates.plot(seconds, [row["counted_per_s"] for row in timeline], label="counted in Redis/s")
    rates.set_ylabel("votes/s")
    rates.legend(loc="upper right")
    rates.grid(alpha=0.3)
    for key, label in (
        ("ack_p99_ms", "ack p99 (per call)"),
        ("visible_p50_ms", "vote to visible p50"),
        ("visible_p99_ms", "vote to visible p99"),
    ):
        latencies.plot(seconds, [row.get(key) for row in timeline], label=label)
    latencies.set_ylabel("ms")
    latencies.set_xlabel("seconds into the run")
    latencies.set_yscale("log")
    latencies.legend(loc="upper right")
    latencies.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
