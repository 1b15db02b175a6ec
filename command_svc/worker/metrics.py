"""Prometheus series of the dedup worker."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

DECISIONS = Counter(
    "voting_worker_decisions_total",
    "Votes decided: accepted, duplicate, closed, repeated",
    ["outcome"],
)
DEAD_LETTERS = Counter(
    "voting_dead_letters_total", "Records sent to the dead-letter topic", ["component"]
)
STAGE_SECONDS = Histogram(
    "voting_worker_stage_seconds",
    "Time a batch spends in each step: decide, ledger (DynamoDB), commit (transaction)",
    ["stage"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
DECISION_LAG = Histogram(
    "voting_worker_decision_lag_seconds",
    "From a vote's acknowledgement (cast time) to its decision being committed",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
