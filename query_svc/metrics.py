"""Prometheus series of the query service's live results (RPCs: voting.server)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

SUBSCRIBERS = Gauge("voting_subscribers", "Open WatchResults streams")
FEEDS = Gauge("voting_watched_polls", "Polls with at least one subscriber in this process")
PUSHES = Counter("voting_pushes_total", "Snapshots sent to subscribers")
PUSH_LATENCY = Histogram(
    "voting_push_latency_seconds",
    "From a change reaching the read model (updated_at) to its snapshot being sent",
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
