"""The production wheel holds what runs in production and nothing else: no development
package (local stack, console, benchmarks, development keys and certificates, code
generation), and the `voting` command finds every service's subcommands."""

from __future__ import annotations

import argparse
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PRODUCTION = {"voting", "command_svc", "query_svc", "projector", "gateway"}


def build_wheel(out: Path) -> zipfile.ZipFile:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "--wheel-dir",
            str(out),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    (wheel,) = out.glob("voting-*.whl")
    return zipfile.ZipFile(wheel)


def test_the_wheel_holds_the_production_packages_only(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path)
    names = wheel.namelist()
    packages = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert packages == PRODUCTION
    development = ("devkit", "bench", "stack", "console", "protogen", "keys.py", "pki", ".java")
    assert [n for n in names if any(d in n for d in development)] == []
    # what the services load at run time is in it
    assert "projector/apply_votes.lua" in names
    assert "gateway/static/app.js" in names
    (entry_points,) = [n for n in names if n.endswith("entry_points.txt")]
    text = wheel.read(entry_points).decode()
    for service in ("command_svc", "query_svc", "projector", "gateway"):
        assert f"{service} = {service}.cli:register" in text


def test_voting_lists_every_production_command_and_no_development_one() -> None:
    from voting.cli import build_parser

    parser = build_parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    commands = set(sub.choices)
    assert {
        "command-svc",
        "worker",
        "projector",
        "query-svc",
        "gateway",
        "init",
        "config",
        "recount",
        "projection",
    } == commands
