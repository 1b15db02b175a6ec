"""The Dockerfile, read structurally (no Docker engine here): a slim final stage without
build tools, running `voting` as the unprivileged user the chart expects, with every
port the chart uses exposed and everything the package needs at run time inside."""

from __future__ import annotations

import fnmatch
import json
import re
import shutil
import subprocess
import tomllib
from dataclasses import dataclass, field
from pathlib import PurePosixPath

import helm_python
import pytest
from packaging.specifiers import SpecifierSet

from devkit.k8s import CHART, ROOT, documents, render

DOCKERFILE = ROOT / "Dockerfile"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
BUILD_TOOLS = re.compile(r"apt-get install|apk add|build-essential|\bgcc\b|\bmake\b|pip install")


@dataclass
class Stage:
    image: str
    name: str
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for kw, args in self.instructions if kw == keyword]

    def copied(self) -> set[str]:
        """The sources of the stage's COPY instructions from the build context."""
        sources: set[str] = set()
        for args in self.all("COPY"):
            words = args.split()
            if not any(w.startswith("--from") for w in words):
                sources |= {w for w in words[:-1] if not w.startswith("--")}
        return sources


def parse(text: str) -> tuple[dict[str, str], list[Stage]]:
    """(ARGs before the first FROM, with defaults; the stages in order)."""
    logical = re.sub(r"\\\n", " ", text)
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for raw in logical.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, rest = line.partition(" ")
        keyword, rest = keyword.upper(), rest.strip()
        if keyword == "ARG" and not stages:
            name, _, default = rest.partition("=")
            args[name] = default
        elif keyword == "FROM":
            image, _, name = rest.partition(" AS ")
            for arg, default in args.items():
                image = image.replace("${" + arg + "}", default)
            stages.append(Stage(image.strip(), name.strip()))
        else:
            stages[-1].instructions.append((keyword, rest))
    return args, stages


_, STAGES = parse(DOCKERFILE.read_text())
BUILDER, FINAL = STAGES[0], STAGES[-1]


def test_two_stages_on_a_python_the_package_supports() -> None:
    assert len(STAGES) == 2
    assert BUILDER.image == FINAL.image  # the virtualenv's python is the base image's
    match = re.fullmatch(r"python:(\d+\.\d+)-slim(-\w+)?", FINAL.image)
    assert match, FINAL.image
    assert match.group(1) in SpecifierSet(PYPROJECT["project"]["requires-python"])


def test_final_stage_runs_voting_as_the_charts_user() -> None:
    with helm_python.Chart.load(CHART) as chart:
        expected = chart.values["containerSecurityContext"]
    (user,) = FINAL.all("USER")  # the one user: the container's
    uid, _, gid = user.partition(":")
    assert int(uid) == expected["runAsUser"] != 0
    assert int(gid) == expected["runAsGroup"]
    assert json.loads(FINAL.all("ENTRYPOINT")[-1]) == ["voting"]
    assert json.loads(FINAL.all("CMD")[-1]) == ["--help"]
    env = " ".join(FINAL.all("ENV"))
    assert "PYTHONDONTWRITEBYTECODE=1" in env


def test_final_stage_holds_the_virtualenv_and_no_build_tools() -> None:
    for run in FINAL.all("RUN"):
        assert not BUILD_TOOLS.search(run), run
    copies = FINAL.all("COPY")
    assert copies == ["--from=builder /opt/voting /opt/voting"]
    assert BUILDER.name == "builder"


def test_builder_installs_the_package_without_extras() -> None:
    (install,) = [r for r in BUILDER.all("RUN") if "pip install" in r]
    target = install.split("pip install", 1)[1].split("&&")[0].split()
    assert target == ["."], "runtime dependencies only: no [dev] or [local] extras"
    packages = {
        p.rstrip("*") for p in PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]
    }
    assert BUILDER.copied() == packages | {"pyproject.toml", "README.md"}, (
        "the image holds the production packages and nothing else (no devkit)"
    )


def test_every_port_the_chart_uses_is_exposed() -> None:
    exposed = {int(p) for expose in FINAL.all("EXPOSE") for p in expose.split()}
    used = {
        port["containerPort"]
        for o in documents(render())
        if o["kind"] == "Deployment"
        for c in o["spec"]["template"]["spec"]["containers"]
        for port in c["ports"]
    }
    assert used <= exposed


def test_dockerignore_keeps_the_context_small_and_complete() -> None:
    ignored = {
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".git", ".venv", "node_modules", ".voting", "test-artifacts"} <= ignored
    assert BUILDER.copied()
    assert not BUILDER.copied() & ignored


def _package_files() -> list[PurePosixPath]:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("needs a git checkout")
    roots = [p.rstrip("*") for p in PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]]
    listed = subprocess.run(
        ["git", "ls-files", "--", *roots], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    return [PurePosixPath(line) for line in listed.splitlines()]


def _matches(relative: PurePosixPath, pattern: str) -> bool:
    parts = PurePosixPath(pattern).parts
    return len(parts) == len(relative.parts) and all(
        fnmatch.fnmatchcase(name, glob) for name, glob in zip(relative.parts, parts, strict=True)
    )


def test_package_data_ships_every_resource_file() -> None:
    """Lua scripts, the gateway's static files...: what `pip install .` leaves out is
    missing from the image."""
    package_data: dict[str, list[str]] = PYPROJECT["tool"]["setuptools"]["package-data"]
    missing = []
    for path in _package_files():
        if path.suffix in (".py", ".pyi") or path.name.startswith(".") or path.name == "ruff.toml":
            continue  # code, and each package's import-layering rules for the linter
        if path.is_relative_to("bench"):
            continue  # figures of past runs the README quotes: outputs, not resources
        package = path.parent
        while not (ROOT / package / "__init__.py").exists():
            package = package.parent
        relative = path.relative_to(package)
        patterns = package_data.get("*", []) + package_data.get(".".join(package.parts), [])
        if not any(_matches(relative, p) for p in patterns):
            missing.append(str(path))
    assert missing == [], "add them to [tool.setuptools.package-data] in pyproject.toml"
