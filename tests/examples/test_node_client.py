"""The Node.js client example (examples/node) against the real services: it sees every
update of its poll, the FINAL snapshot ends its stream, every vote it cast counts, and
it decodes a refusal's google.rpc details."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.harness import Deployment
from voting.v1 import query_service_pb2 as q

pytestmark = pytest.mark.slow

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "node"


def run_client(running: Deployment, poll_id: str) -> list[dict[str, Any]]:
    node = shutil.which("node")
    assert node is not None, "node is not installed (make setup)"
    assert (EXAMPLE / "node_modules" / "@grpc" / "grpc-js").is_dir(), (
        "examples/node has no node_modules (make setup)"
    )
    options = running.stack.options
    env = {
        **os.environ,
        "VOTING_COMMAND_TARGET": f"127.0.0.1:{options.command_port}",
        "VOTING_QUERY_TARGET": f"127.0.0.1:{options.query_port}",
    }
    result = subprocess.run(
        [node, str(EXAMPLE / "client.js"), poll_id],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"client.js exited {result.returncode}:\n{result.stderr}"
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_the_node_client_watches_its_poll_to_final_and_every_vote_counts(
    running: Deployment,
) -> None:
    poll_id = f"node-{running.suffix}"
    *updates, summary = run_client(running, poll_id)

    assert summary["poll_id"] == poll_id
    # The client decoded the refusal's google.rpc details from the vendored protos alone.
    refused = summary["refused"]
    assert refused["code"] == "INVALID_ARGUMENT"
    (bad_request,) = [d for d in refused["details"] if d["@type"] == "google.rpc.BadRequest"]
    assert [v["field"] for v in bad_request["field_violations"]] == ["voter_id"]
    cast = summary["cast"]
    assert cast >= 30
    assert updates, "no WatchResults update was printed"
    versions = [u["version"] for u in updates]
    assert versions == sorted(set(versions)), f"versions do not increase: {versions}"
    totals = [u["total"] for u in updates]
    assert totals == sorted(totals), f"totals went down: {totals}"
    assert updates[0]["total"] == 0
    assert [u["final"] for u in updates] == [False] * (len(updates) - 1) + [True]
    final = updates[-1]
    assert final["total"] == cast
    assert sum(final["counts"].values()) == cast

    results = running.queries.GetResults(q.GetResultsRequest(poll_id=poll_id), timeout=10).results
    assert results.final
    assert results.version == final["version"]
    assert results.total == cast
    assert {c.option_id: c.votes for c in results.counts} == final["counts"]
    assert results.recount.matched, "the live count missed votes the recount found"
