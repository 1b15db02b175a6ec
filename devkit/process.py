"""The one way this project starts a child process (local stack, tests, benchmarks).

Children run in their own process group, so signals reach them only when we send them,
and are asked by the kernel to stop (SIGTERM) if the parent dies, even by ``kill -9``:
no orphan outlives the stack.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

# A child gets SIGTERM when its parent dies (no orphaned brokers after a crash). The
# setting is made by util-linux's setpriv, which then execs the program: a preexec_fn
# would make Python run its at-fork handlers and take the import lock before fork, and
# that deadlocked under load with other threads busy in gRPC calls.
_DIE_WITH_PARENT = ["setpriv", "--pdeathsig", "TERM", "--"] if shutil.which("setpriv") else []
# The kernel sends that signal when the *thread* that forked the child ends, not the
# process (prctl(2), PR_SET_PDEATHSIG). So every child is forked by this one thread,
# which lives as long as the process: a child restarted from a short-lived thread would
# otherwise be stopped as soon as that thread returned.
_FORKER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="spawn")


@dataclass(frozen=True)
class ProcessSpec:
    name: str
    argv: Sequence[str]
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    log_path: Path | None = None


class Child:
    def __init__(self, spec: ProcessSpec, popen: subprocess.Popen[bytes]) -> None:
        self.spec = spec
        self.popen = popen

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    @property
    def returncode(self) -> int | None:
        return self.popen.poll()

    def signal(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, sig)

    def kill(self) -> None:
        """``kill -9`` the whole process group, and reap it."""
        self.signal(signal.SIGKILL)
        self.popen.wait()

    def terminate(self, grace_s: float = 10.0) -> int:
        """SIGTERM, then SIGKILL after ``grace_s``; returns the exit code."""
        if self.alive():
            self.signal(signal.SIGTERM)
            try:
                return self.popen.wait(grace_s)
            except subprocess.TimeoutExpired:
                self.signal(signal.SIGKILL)
        code = self.popen.wait()
        # Stragglers of the group (e.g. a JVM's helpers) go with their leader.
        self.signal(signal.SIGKILL)
        return code

    def wait(self, timeout_s: float | None = None) -> int:
        return self.popen.wait(timeout_s)

    def log_tail(self, lines: int = 20) -> str:
        path = self.spec.log_path
        if path is None or not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def spawn(spec: ProcessSpec) -> Child:
    env = {**os.environ, **spec.env}
    if spec.log_path is not None:
        spec.log_path.parent.mkdir(parents=True, exist_ok=True)
        out = open(spec.log_path, "ab")  # noqa: SIM115 - handed to the child
        out.write(f"--- {time.strftime('%H:%M:%S')} start {spec.name}\n".encode())
        out.flush()
    else:
        out = None
    try:
        popen = _FORKER.submit(
            subprocess.Popen,
            [*_DIE_WITH_PARENT, *spec.argv],
            env=env,
            cwd=spec.cwd,
            stdin=subprocess.DEVNULL,
            stdout=out if out is not None else subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        ).result()
    finally:
        if out is not None:
            out.close()
    if _DIE_WITH_PARENT:
        _wait_until_armed(popen.pid)
    return Child(spec, popen)


def _wait_until_armed(pid: int, timeout_s: float = 5.0) -> None:
    # setpriv arms the parent-death signal and only then execs the program: a parent
    # killed before that exec would leave the child unarmed and running for good.
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/comm") as comm:
                if comm.read().strip() != "setpriv":
                    return
        except FileNotFoundError:
            return
        time.sleep(0.001)
