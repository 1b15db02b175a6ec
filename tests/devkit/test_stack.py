"""``devkit up``: real child processes, ready when they answer, nothing left behind."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from devkit.stack.components import free_port, free_run
from tests import processes
from tests.harness import wait_until
from voting.v1 import command_service_pb2 as cmd
from voting.v1 import command_service_pb2_grpc, poll_pb2, query_service_pb2_grpc
from voting.v1 import query_service_pb2 as q


def descendants(pid: int) -> set[int]:
    """Every live process whose parent chain leads to ``pid``."""
    parents = {child: parent for child, (parent, _) in processes.running().items()}
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        children = {child for child, parent in parents.items() if parent in frontier}
        frontier = children - found
        found |= children
    return found


def alive(pids: set[int]) -> set[int]:
    return {pid for pid in pids if not processes.gone(pid)}


INFRA = ("kafka", "dynamodb", "redis")
SERVICES = ("command", "worker", "projector", "query", "gateway")  # metrics ports in this order


class Up:
    """A `devkit up` process started the way a user starts it."""

    def __init__(
        self,
        data_dir: Path,
        *extra: str,
        infra_only: bool = True,
        ports: dict[str, int] | None = None,
    ) -> None:
        names = INFRA if infra_only else (*INFRA, *SERVICES)
        self.ports = ports or {name: free_port() for name in names}
        if not infra_only and "metrics-base" not in self.ports:
            self.ports["metrics-base"] = free_run(len(SERVICES))
        args = [sys.executable, "-m", "devkit", "up", "--data-dir", str(data_dir)]
        if infra_only:
            args.append("--infra-only")
        for name, port in self.ports.items():
            option = "--metrics-port-base" if name == "metrics-base" else f"--{name}-port"
            args += [option, str(port)]
        self.proc = subprocess.Popen(
            [*args, *extra],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self.lines: list[str] = []

    def wait_for(self, text: str, timeout_s: float = 120) -> None:
        deadline = time.monotonic() + timeout_s
        assert self.proc.stdout is not None
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            self.lines.append(line)
            if text in line:
                return
        raise AssertionError(f"{text!r} not printed; output:\n{''.join(self.lines[-30:])}")

    def finish(self, timeout_s: float = 60) -> str:
        out, _ = self.proc.communicate(timeout=timeout_s)
        return "".join(self.lines) + (out or "")

    def close(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


@pytest.fixture
def up(tmp_path: Path) -> Iterator[Up]:
    process = Up(tmp_path / "data")
    yield process
    process.close()


def test_infra_only_reaches_ready_and_sigterm_leaves_no_process(up: Up) -> None:
    up.wait_for("devkit up: ready")
    children = descendants(up.proc.pid)
    assert len(children) >= 3, "expected the broker, DynamoDB Local and Redis"
    for port in up.ports.values():
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            pass
    up.proc.send_signal(signal.SIGTERM)
    output = up.finish()
    assert up.proc.returncode == 0
    assert "devkit up: stopped" in output
    assert not alive(children), "processes of the stack outlived it"


def test_a_killed_stack_takes_its_children_with_it(up: Up) -> None:
    up.wait_for("devkit up: ready")
    children = descendants(up.proc.pid)
    up.proc.kill()
    up.proc.wait()
    wait_until(lambda: not alive(children), timeout_s=30, what="the children to exit")


def test_a_taken_port_fails_fast_naming_the_cause_and_the_fix(tmp_path: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        started = time.monotonic()
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "devkit",
                "up",
                "--infra-only",
                "--data-dir",
                str(tmp_path),
                "--redis-port",
                str(taken),
                "--kafka-port",
                str(free_port()),
                "--dynamodb-port",
                str(free_port()),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert result.returncode == 1
    assert f"ports taken: {taken} (redis: --redis-port)" in result.stderr
    assert "fix:" in result.stderr
    assert "--redis-port" in result.stderr
    assert time.monotonic() - started < 20


def test_a_broken_data_directory_fails_naming_it(tmp_path: Path) -> None:
    broken = tmp_path / "not-a-dir"
    broken.write_text("a file where the data directory should be")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "devkit",
            "up",
            "--infra-only",
            "--data-dir",
            str(broken),
            "--kafka-port",
            str(free_port()),
            "--dynamodb-port",
            str(free_port()),
            "--redis-port",
            str(free_port()),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert f"data directory {broken} is not usable" in result.stderr


def test_a_part_that_dies_while_starting_stops_the_parts_already_started(tmp_path: Path) -> None:
    # A corrupt Redis append-only file: Redis refuses to start after the broker and
    # DynamoDB Local are already up; both must be stopped again.
    aof = tmp_path / "data" / "redis" / "appendonlydir"
    aof.mkdir(parents=True)
    (aof / "appendonly.aof.manifest").write_text("this is not a manifest\n")
    up = Up(tmp_path / "data")
    output = up.finish(timeout_s=120)
    up.close()
    assert up.proc.returncode == 1
    assert "redis exited with code" in output
    assert not alive(descendants(up.proc.pid))
    for name in ("kafka", "dynamodb"):
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", up.ports[name])) != 0, f"{name} still listens"


def _child_pid(up: Up, needle: str) -> int:
    for pid in alive(descendants(up.proc.pid)):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if needle in cmdline:
            return pid
    raise AssertionError(f"no child process matches {needle!r}")


@pytest.mark.slow
def test_the_stack_restarts_a_store_that_died_and_the_system_keeps_working(
    tmp_path: Path,
) -> None:
    """kill -9 Redis, then DynamoDB Local: `devkit up` restarts each (bug: it stopped every
    process), and a vote cast afterwards is counted."""
    services = {n: free_port() for n in ("command", "query", "worker", "projector", "gateway")}
    up = Up(
        tmp_path / "data",
        *(a for n, p in services.items() for a in (f"--{n}-port", str(p))),
        infra_only=False,
    )
    try:
        up.wait_for("devkit up: ready", timeout_s=180)
        for needle, name in ((f":{up.ports['redis']}", "redis"), ("DynamoDB", "dynamodb")):
            os.kill(_child_pid(up, needle), signal.SIGKILL)
            up.wait_for(f"devkit up: {name} restarted", timeout_s=120)
            assert up.proc.poll() is None, "voting up gave up"
        target = f"127.0.0.1:{services['command']}"
        with (
            grpc.insecure_channel(target) as cc,
            grpc.insecure_channel(f"127.0.0.1:{services['query']}") as qc,
        ):
            commands: Any = command_service_pb2_grpc.CommandServiceStub(cc)
            queries: Any = query_service_pb2_grpc.QueryServiceStub(qc)
            commands.CreatePoll(
                cmd.CreatePollRequest(
                    request_id="p",
                    poll_id="after-the-crash",
                    title="After",
                    options=[poll_pb2.PollOption(option_id=o, label=o) for o in ("a", "b")],
                ),
                timeout=30,
            )
            ack = commands.CastVote(
                cmd.CastVoteRequest(
                    request_id="v", poll_id="after-the-crash", voter_id="ada", option_id="a"
                ),
                timeout=30,
            )
            results = queries.GetResults(
                q.GetResultsRequest(
                    poll_id="after-the-crash", consistency_token=ack.consistency_token
                ),
                timeout=30,
            ).results
            assert results.total == 1
    finally:
        up.close()


def test_restart_backoff_doubles_and_resets_after_a_healthy_period() -> None:
    from devkit.stack.stack import RestartBackoff

    backoff = RestartBackoff(initial_s=1.0, maximum_s=30.0, healthy_s=60.0)
    delays = [backoff.next_delay("redis", now=0.0) for _ in range(7)]
    assert delays == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    backoff.started("redis", now=100.0)
    assert backoff.next_delay("redis", now=130.0) == 30.0  # died again soon: still backing off
    backoff.started("redis", now=200.0)
    assert backoff.next_delay("redis", now=261.0) == 1.0  # ran for a minute: back to the start


def test_two_stacks_with_their_own_ports_run_side_by_side(tmp_path: Path) -> None:
    first = Up(tmp_path / "first", infra_only=False)
    second = Up(tmp_path / "second", infra_only=False)
    try:
        first.wait_for("devkit up: ready", timeout_s=240)
        second.wait_for("devkit up: ready", timeout_s=240)
        for stack in (first, second):
            port = stack.ports["command"]
            with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
                stub: Any = command_service_pb2_grpc.CommandServiceStub(channel)
                stub.CreatePoll(
                    cmd.CreatePollRequest(
                        request_id="side",
                        poll_id="side-by-side",
                        title="Side by side?",
                        options=[
                            poll_pb2.PollOption(option_id="yes", label="Yes"),
                            poll_pb2.PollOption(option_id="no", label="No"),
                        ],
                    ),
                    timeout=30,
                )
        # A third on the first one's ports hears of every taken port before anything
        # starts; on the first one's data directory, that it is in use.
        clash = subprocess.run(
            [
                sys.executable,
                "-m",
                "devkit",
                "up",
                "--data-dir",
                str(tmp_path / "third"),
                *(
                    arg
                    for name, port in first.ports.items()
                    for arg in (
                        "--metrics-port-base" if name == "metrics-base" else f"--{name}-port",
                        str(port),
                    )
                ),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert clash.returncode == 1
        for name in (*INFRA, *SERVICES):
            assert f"{first.ports[name]} ({name}: --{name}-port)" in clash.stderr
        for i, name in enumerate(SERVICES):
            port = first.ports["metrics-base"] + i
            assert f"{port} ({name} metrics: --metrics-port-base)" in clash.stderr
        assert "Traceback" not in clash.stderr
        assert not (tmp_path / "third" / "logs" / "redis.log").exists(), "nothing started"
        shared = subprocess.run(
            [sys.executable, "-m", "devkit", "up", "--data-dir", str(tmp_path / "first")],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert shared.returncode == 1
        assert "is in use by another stack" in shared.stderr
    finally:
        for stack in (first, second):
            stack.close()
