"""`devkit chaos` in the suite: a short random nemesis under load must break no promise,
and the command must fail when one is broken."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from devkit.bench import chaos

pytestmark = [pytest.mark.slow, pytest.mark.local_infra]


def test_a_short_random_nemesis_breaks_no_promise(tmp_path: Path) -> None:
    result = chaos.run(profile="short", json_path=tmp_path / "chaos.json")
    summary = {k: v for k, v in result.items() if k not in {"profile", "machine"}}
    print(json.dumps(summary, indent=2, sort_keys=True))
    assert result["ok"], f"replay with `{result['replay']}`: {result['violations']}"
    assert result["acknowledged"] > 500, summary
    assert {f["kind"] for f in result["faults"]} == {"kill", "pause"}


def test_voting_chaos_exits_non_zero_when_an_invariant_is_broken(tmp_path: Path) -> None:
    out = tmp_path / "broken.json"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "devkit",
            "chaos",
            "--profile",
            "smoke",
            "--seed",
            "1",
            "--inject",
            "miscount",
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert run.returncode == 1, run.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["injected"] == "miscount"
    assert {"wrong_vote_kept", "final_differs_from_dynamodb"} <= result["violations"].keys()
    assert result["wrong_vote_kept"] >= 1
    assert Path(result["history"]).exists()
    assert "seed 1" in run.stderr
