"""What runs in production is layered, and the linter enforces it (each package's
ruff.toml): the runtime imports no service, no service imports another, and nothing in
production imports the development package or the tests."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RUFF = Path(sys.executable).with_name("ruff")
SERVICES = ("command_svc", "query_svc", "projector", "gateway")

FORBIDDEN = [
    *(("voting", s) for s in SERVICES),
    *((s, other) for s in SERVICES for other in SERVICES if other != s),
    *((p, "devkit") for p in ("voting", *SERVICES)),
    *((p, "tests") for p in ("voting", *SERVICES)),
]
ALLOWED = [
    *((s, "voting") for s in SERVICES),
    ("command_svc", "command_svc"),
    ("devkit", "command_svc"),
    ("devkit", "voting"),
    ("tests", "devkit"),
]


def lint(package: str, imported: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(RUFF), "check", "--select", "TID251", "--stdin-filename", f"{package}/probe.py", "-"],
        input=f"from {imported}.anything import name\n",
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )


@pytest.mark.parametrize(("package", "imported"), FORBIDDEN)
def test_a_forbidden_import_fails_the_lint(package: str, imported: str) -> None:
    result = lint(package, imported)
    assert result.returncode == 1, result.stdout
    assert f"`{imported}` is banned" in result.stdout


@pytest.mark.parametrize(("package", "imported"), ALLOWED)
def test_an_allowed_import_passes(package: str, imported: str) -> None:
    result = lint(package, imported)
    assert result.returncode == 0, result.stdout
