"""Prometheus series of the query service's live results (RPCs: voting.server)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

SUBSCRIBERS = Gauge("voting_subscribers", "Open WatchResults streams")
FEEDS = Gauge("voting_watched_polls", "Polls with at least one subscriber in this process")
# Counted and timed once per snapshot for all its subscribers, never per push: at a
# million followers a per-push observation would cost more than the push.
PUSHES = Counter("voting_pushes_total", "Snapshots handed to subscribers (one per subscriber)")
PUSH_LATENCY = Histogram(
    "voting_push_latency_seconds",
    "From a change reaching the read model (updated_at) to its snapshot being handed to "
    "this process's subscribers",
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
