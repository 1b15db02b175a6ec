"""The README's grpcurl session works as shown: reflection, no proto files needed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.harness import Deployment

GRPCURL = str(Path(sys.executable).with_name("grpcurl"))
pytestmark = pytest.mark.slow


def grpcurl(*args: str, data: dict[str, Any] | None = None) -> str:
    command = [
        GRPCURL,
        "-plaintext",
        *(["-d", json.dumps(data)] if data is not None else []),
        *args,
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_the_readme_grpcurl_session(running: Deployment) -> None:
    command = f"127.0.0.1:{running.stack.options.command_port}"
    query = f"127.0.0.1:{running.stack.options.query_port}"
    assert "voting.v1.CommandService" in grpcurl(command, "list")
    assert "rpc WatchResults" in grpcurl(query, "describe", "voting.v1.QueryService")
    created = json.loads(
        grpcurl(
            command,
            "voting.v1.CommandService/CreatePoll",
            data={
                "request_id": "r1",
                "poll_id": "lunch",
                "title": "Lunch?",
                "options": [
                    {"option_id": "pizza", "label": "Pizza"},
                    {"option_id": "sushi", "label": "Sushi"},
                ],
            },
        )
    )
    assert created["poll_id"] == "lunch"
    vote = json.loads(
        grpcurl(
            command,
            "voting.v1.CommandService/CastVote",
            data={"request_id": "v1", "poll_id": "lunch", "voter_id": "ada", "option_id": "sushi"},
        )
    )
    token = vote["consistency_token"]
    results = json.loads(
        grpcurl(
            "-max-time",
            "30",
            query,
            "voting.v1.QueryService/GetResults",
            data={"poll_id": "lunch", "consistency_token": token},
        )
    )["results"]
    assert results["total"] == "1"
    counts = {c["option_id"]: c.get("votes", "0") for c in results["counts"]}
    assert counts == {"pizza": "0", "sushi": "1"}
