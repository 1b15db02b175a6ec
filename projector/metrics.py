"""Prometheus series of the projector and the recount."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

RECORDS = Counter("voting_projector_records_total", "Records the projector has applied or skipped")
BATCH_SECONDS = Histogram(
    "voting_projector_batch_seconds",
    "Time to apply one batch to the read model",
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
PROJECTION_LAG = Histogram(
    "voting_projection_lag_seconds",
    "From a vote's cast time to its decision being applied to the read model",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
STALENESS = Gauge(
    "voting_projection_staleness_seconds",
    "How far behind the decisions the read model may be (0 when caught up)",
    ["partition"],
)
UNDECODABLE = Counter("voting_projector_undecodable_total", "Records the projector could not read")
RECOUNTS = Counter(
    "voting_recounts_total", "Recounts that finalized a poll, by outcome", ["outcome"]
)
RECOUNT_MISMATCHES = Counter(
    "voting_recount_mismatches_total", "Finalized polls whose live count differed from the recount"
)
