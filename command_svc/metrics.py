"""Prometheus series of the command service (RPCs by method and code: voting.server)."""

from __future__ import annotations

from prometheus_client import Counter

VOTES_APPENDED = Counter("voting_votes_appended_total", "Votes durably appended to the vote log")
VOTES_REFUSED = Counter(
    "voting_votes_refused_total", "Votes refused before the log, by status code", ["code"]
)
