"""Children of the stack never outlive it, even when the parent is killed with -9."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

from devkit.process import Child, ProcessSpec, spawn

PARENT = """
import sys, time
from devkit.process import ProcessSpec, spawn
child = spawn(ProcessSpec("sleeper", ["sleep", "600"]))
print(child.pid, flush=True)
time.sleep(600)
"""


def test_a_child_is_stopped_when_its_parent_is_killed() -> None:
    with subprocess.Popen(
        [sys.executable, "-c", PARENT], stdout=subprocess.PIPE, text=True
    ) as parent:
        assert parent.stdout is not None
        child_pid = int(parent.stdout.readline())
        os.kill(child_pid, 0)  # the child runs
        parent.send_signal(signal.SIGKILL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(child_pid, 0)
        except ProcessLookupError:
            return
        # Reaped by init once it got SIGTERM; a zombie counts as gone.
        with open(f"/proc/{child_pid}/stat") as stat:
            if stat.read().rsplit(")", 1)[1].split()[0] == "Z":
                return
        time.sleep(0.1)
    raise AssertionError("the child outlived its killed parent")


def test_a_child_started_from_a_short_lived_thread_outlives_that_thread() -> None:
    """The parent-death signal fires when the thread that forked the child ends, not the
    process (prctl(2)): a process restarted from a worker thread (the chaos nemesis does
    that) was stopped the moment that thread finished."""
    started: list[Child] = []
    thread = threading.Thread(
        target=lambda: started.append(spawn(ProcessSpec("sleeper", ["sleep", "30"])))
    )
    thread.start()
    thread.join()
    (child,) = started
    try:
        time.sleep(1.0)
        assert child.alive(), "the child died with the thread that started it"
    finally:
        child.kill()
