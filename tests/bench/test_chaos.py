"""The short chaos profile: every component killed with -9 and restarted under load,
a worker joining and leaving; correctness only (figures belong to `make chaos`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import chaos

pytestmark = [pytest.mark.slow, pytest.mark.local_infra]


def test_short_chaos_loses_nothing_counts_nothing_twice_and_final_equals_truth(
    tmp_path: Path,
) -> None:
    result = chaos.run(profile="short", json_path=tmp_path / "chaos.json")
    summary = {k: v for k, v in result.items() if k not in {"faults", "profile", "machine"}}
    print(summary)
    assert result["acked"] > 1000, summary
    assert result["lost"] == 0, summary
    assert result["double_counted"] == 0, summary
    assert result["miscounted"] == 0, summary
    assert result["final_matches_truth"], summary
    components = {f["component"] for f in result["faults"]}
    assert {"command", "worker", "projector", "query", "redis"} <= components
    # The CQRS claims held at least once each during the run.
    assert result["reads_served_while_writes_down"] > 0, summary
    assert result["writes_accepted_while_reads_down"] > 0, summary
