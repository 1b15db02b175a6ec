"""A private local stack for one benchmark run, and what the machine was."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from devkit.process import ProcessSpec, spawn
from devkit.stack.components import free_port
from devkit.stack.stack import Stack, StackOptions

# Results belong to the checkout, not to a package: bench/results at its root. The
# figures name the checkout's commit, wherever the command was started.
SOURCE = Path(__file__).resolve().parents[2]
RESULTS = SOURCE / "bench" / "results"
# Changes here do not change what a benchmark measures: results and documents.
NOT_CODE = (":!bench/results", ":!*.md", ":!docs")


@contextlib.contextmanager
def private_stack(
    *, partitions: int = 4, services: tuple[str, ...] = (), ephemeral: bool = True
) -> Iterator[Stack]:
    """A stack of its own on free ports. ``ephemeral=False`` keeps the stores' data as
    ``devkit up`` does (Redis with AOF, DynamoDB Local on disk), so kills lose what they
    would in production and no more."""
    with tempfile.TemporaryDirectory(prefix="voting-bench-") as tmp:
        stack = Stack(
            StackOptions.on_free_ports(
                data_dir=Path(tmp), ephemeral=ephemeral, partitions=partitions
            )
        )
        stack.start(infra_only=True)
        try:
            if services:
                stack.start_services(services)
            yield stack
        finally:
            stack.stop(grace_s=5)


@dataclass(frozen=True)
class Served:
    address: str
    pid: int


@contextlib.contextmanager
def served(stack: Stack | None, name: str, *args: str, http: bool = False) -> Iterator[Served]:
    """Runs ``devkit.bench.<name> --port P ARGS`` beside the stack (its settings in the
    environment) until it accepts connections (gRPC ones; ``http``: TCP ones)."""
    port = free_port()
    child = spawn(
        ProcessSpec(
            name,
            [sys.executable, "-m", f"devkit.bench.{name}", "--port", str(port), *args],
            env=stack.env() if stack is not None else {},
            log_path=stack.log_dir / f"{name}.log" if stack is not None else None,
        )
    )
    try:
        deadline = time.monotonic() + 60
        while not (listening(port) if http else accepting(port)):
            if not child.alive() or time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not start:\n{child.log_tail()}")
            time.sleep(0.2)
        yield Served(f"127.0.0.1:{port}", child.pid)
    finally:
        child.terminate(5)


def accepting(port: int) -> bool:
    """A gRPC server listens on the port (no health service needed)."""
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            grpc.channel_ready_future(channel).result(timeout=0.5)
        return True
    except grpc.FutureTimeoutError:
        return False


def listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


def machine() -> dict[str, Any]:
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
        cwd=SOURCE,
    ).stdout.strip()
    # Uncommitted changes to the code: the figures are not that commit's.
    changed = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no", "--", ".", *NOT_CODE],
        capture_output=True,
        text=True,
        check=False,
        cwd=SOURCE,
    ).stdout.strip()
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "commit": commit or "unknown",
        "dirty": bool(changed),
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def write_json(figures: dict[str, Any], path: Path | None) -> Path:
    """Writes the figures with what produced them: the commit, whether the tree was
    dirty (then they are not that commit's), the machine and the command line."""
    about = figures.setdefault("machine", machine())
    figures.setdefault("commit", about["commit"])
    figures.setdefault("dirty", about["dirty"])
    figures.setdefault("command", command_line())
    target = path or RESULTS / f"{time.strftime('%Y%m%d-%H%M%S')}.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(figures, indent=2, sort_keys=True) + "\n")
    return target


def command_line() -> str:
    if Path(sys.argv[0]).parent.name == "devkit":  # python -m devkit ...
        return " ".join(["python", "-m", "devkit", *sys.argv[1:]])
    return " ".join(sys.argv)


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def peak_rss_mib(pid: int) -> float:
    return rss_mib(pid, field="VmHWM")


def rss_mib(pid: int, *, field: str = "VmRSS") -> float:
    """A process's resident memory now (VmRSS) or at its peak (VmHWM), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return 0.0
