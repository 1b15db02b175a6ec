"""Every benchmark in a smoke run of seconds, through the real command line: each one
still starts, produces every figure it promises, names the commit it ran, and (for the
pipeline) exits non-zero when the results are not exact. What the figures are is not
judged here: that is the benchmarks' job, on a quiet box."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from devkit.bench.environment import SOURCE, machine

pytestmark = [pytest.mark.slow, pytest.mark.local_infra]

LIMITS = (
    "bare_batch_server_votes_per_s",
    "raw_consume_per_s",
    "raw_dynamodb_writes_per_s",
    "raw_redis_increments_per_s",
    "bare_grpc_unary_per_s",
    "query_get_results_per_s",
)


def bench(tmp_path: Path, *args: str) -> dict[str, Any]:
    out = tmp_path / "figures.json"
    run = subprocess.run(
        [sys.executable, "-m", "devkit", "bench", *args, "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=SOURCE,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    figures: dict[str, Any] = json.loads(out.read_text())
    head = machine()["commit"]
    assert figures["commit"] == head
    assert isinstance(figures["dirty"], bool)
    assert figures["command"].startswith("python -m devkit bench")
    return figures


def test_the_pipeline_comparison_and_its_limits(tmp_path: Path) -> None:
    figures = bench(tmp_path, "--profile", "smoke")
    for key in (
        "baseline_counted_per_s_quiet",
        "baseline_counted_per_s_heavy_reads",
        "cqrs_counted_per_s_quiet",
        "cqrs_counted_per_s_heavy_reads",
        "e2e_votes_per_s",
        "acked_votes_per_s",
    ):
        assert figures[key] > 0, key
    assert figures["exact"]
    assert figures["cqrs_exact"]
    assert figures["baseline_exact"]
    assert figures["runs_order"] == [
        "baseline_quiet",
        "cqrs_quiet",
        "baseline_heavy_reads",
        "cqrs_heavy_reads",
    ]
    for name in LIMITS:
        limit = figures["limits"][name]
        assert limit["median"] > 0, name
        assert limit["min"] <= limit["median"] <= limit["max"], name
        assert len(limit["windows"]) == figures["profile"]["limit_windows"], name
        assert limit["conditions"], name
    assert figures["watchers"]["delivered_per_s_each"] > 0
    assert figures["baseline_reads"]["reads_per_s"] > 0
    assert figures["cqrs_reads"]["reads_per_s"] > 0
    assert Path(figures["plot"]).exists()


def test_the_write_side_beside_its_bare_anchors(tmp_path: Path) -> None:
    figures = bench(tmp_path, "write", "--seconds", "6")
    for key in (
        "ingest_bulk_votes_per_s",
        "ingest_unary_votes_per_s",
        "bare_batch_server_votes_per_s",
        "bare_unary_per_s",
        "worker_votes_per_s",
        "worker_cpu_us_per_record",
        "worker_records_per_cpu_s",
    ):
        assert figures[key] > 0, key
    assert set(figures["cpu_us_per_vote"]) == {
        "command_bulk",
        "command_unary",
        "bare_bulk",
        "bare_unary",
    }
    assert all(v > 0 for v in figures["cpu_us_per_vote"].values())
    assert figures["raw_dynamodb_writes_per_s"]["median"] > 0


def test_the_read_side(tmp_path: Path) -> None:
    figures = bench(tmp_path, "read", "--seconds", "4", "--max-followers", "250")
    assert figures["visible_p99_ms"] > 0
    # Whether 250 followers stay under the p99 bound is a figure of this box, not a
    # property of the code: the smoke test checks that every follower was served.
    for key in ("steps_10hz", "steps_1hz", "raw_steps_10hz"):
        served_all(figures[key][0])
    assert figures["subscribers_per_process_10hz"] in (0, 250)


def served_all(step: dict[str, Any], followers: int = 250) -> None:
    assert step["subscribers"] == followers, step
    assert step["connected"] == followers, step
    assert step["failures"] == 0, step
    assert step["delivered_per_s_each"] > 0, step


def test_sse_followers(tmp_path: Path) -> None:
    figures = bench(tmp_path, "sse", "--seconds", "4", "--max-followers", "250")
    for name in ("sse", "grpc"):
        served_all(figures[f"{name}_steps_10hz"][0])
        assert figures[f"{name}_followers_per_process_10hz"] in (0, 250), figures


def test_recount_and_restore(tmp_path: Path) -> None:
    recount = bench(tmp_path, "recount", "--votes", "3000")
    assert recount["recount_votes_per_s"] > 0
    restore = bench(tmp_path, "restore", "--records", "20000", "--live", "1000")
    assert restore["from_start"]["records_read"] > 0
    assert restore["from_checkpoint"]["records_read"] > 0


def test_redis_memory_per_vote(tmp_path: Path) -> None:
    figures = bench(tmp_path, "memory", "--votes", "5000")
    assert figures["request_id_bytes_per_vote"] > 0
    assert figures["status_bytes_per_vote"] > 0
    assert figures["statuses_gib_at_rate"] > 0


def test_fanout_beside_its_bare_servers(tmp_path: Path) -> None:
    figures = bench(tmp_path, "fanout", "--steps", "100", "--seconds", "8")
    for key in (
        "gateway_pushes_per_cpu_s",
        "bare_pushes_per_cpu_s",
        "query_pushes_per_cpu_s",
        "bare_grpc_pushes_per_cpu_s",
    ):
        assert figures[key] > 0, key
    for key in ("gateway_max_followers_1hz", "gateway_max_followers_10hz"):
        assert figures[key] in (0, 100), key
    assert isinstance(figures["rss_mb_per_1k_followers"], float)
    for kind, rates in figures["steps"].items():
        for hz, (step,) in rates.items():
            # Every follower connected and heard of (nearly) every version.
            assert step["connected"] == step["followers"] == 100, (kind, hz, step)
            assert step["failures"] == 0, (kind, hz, step)
            assert step["versions"] > 0, (kind, hz, step)
            assert step["delivered"] > 0, (kind, hz, step)
    assert (tmp_path / "figures.png").stat().st_size > 0
