"""The README's sessions work literally: every annotated ``sh`` block is run as shown.

A block after ``<!-- readme-test: with devkit up -->`` runs in a shell beside a fresh
``devkit up``; ``<!-- readme-test: continued -->`` goes on in the shell (and stack) of the
block before; ``<!-- readme-test: standalone -->`` starts its own shell and no stack. Lines
starting with ``$ `` are commands (continued by a trailing backslash), the lines after one
are its output. The commands run unchanged in a scratch directory holding a ``.venv`` link,
except that the stack's ports are free ones rather than the defaults (``devkit up`` gets
them as options, and the default addresses are rewritten). Outputs are compared by shape:
JSON by its keys and its fixed values (ids, times, versions and digests differ from run to
run; a later command gets the values this run produced), text line by line with numbers
and ``...`` as wildcards; an output starting with ``ERROR:`` is a failing command.
"""

from __future__ import annotations

import json
import os
import queue
import re
import shlex
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from devkit.stack.components import free_port, free_run
from tests import processes
from voting.config import describe

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
MARK = re.compile(r"<!-- readme-test: (with devkit up|continued|standalone) -->")
DEFAULT_ADDRESSES = {"127.0.0.1:50051": "command", "127.0.0.1:50052": "query"}
DEFAULT_URL = "http://127.0.0.1:8080"
PORT_OPTIONS = ("kafka", "dynamodb", "redis", "command", "query", "worker", "projector", "gateway")
VARIABLE = re.compile(r"^[A-Za-z0-9+/=_-]{16,}$")  # ids, digests, signatures
NUMBER = re.compile(r"(\.\.\.|\d+(?:\.\d+)?)")


@dataclass
class Command:
    text: str
    output: list[str] = field(default_factory=list)


@dataclass
class Block:
    kind: str
    line: int
    commands: list[Command]


def readme_blocks(text: str) -> list[Block]:
    lines = text.splitlines()
    blocks = []
    for i, line in enumerate(lines):
        mark = MARK.fullmatch(line.strip())
        if mark is None:
            continue
        assert lines[i + 1] == "```sh", f"README.md:{i + 2}: an annotated block is ```sh"
        end = lines.index("```", i + 2)
        blocks.append(Block(mark.group(1), i + 3, list(_commands(lines[i + 2 : end]))))
    return blocks


def _commands(lines: list[str]) -> Iterator[Command]:
    current: Command | None = None
    continuing = False
    for line in lines:
        if continuing and current is not None:
            current.text += "\n" + line
        elif line.startswith("$ "):
            if current is not None:
                yield _trimmed(current)
            current = Command(line[2:])
        elif current is not None:
            current.output.append(line)
        else:
            raise AssertionError(f"README block line before any command: {line!r}")
        continuing = not current.output and _incomplete(current.text)
    if current is not None:
        yield _trimmed(current)


def _incomplete(command: str) -> bool:
    if command.endswith("\\"):
        return True
    try:
        shlex.split(command, comments=True)
    except ValueError:  # a quoted string goes on on the next line
        return True
    return False


def _trimmed(command: Command) -> Command:
    while command.output and not command.output[-1].strip():
        command.output.pop()
    return command


def groups(blocks: list[Block]) -> list[list[Block]]:
    runs: list[list[Block]] = []
    for block in blocks:
        if block.kind == "continued":
            assert runs, f"README.md:{block.line}: 'continued' follows no block"
            runs[-1].append(block)
        else:
            runs.append([block])
    return runs


class Session:
    """One bash process for a run of blocks, fed one command at a time."""

    END = "__readme_command_ended__"

    def __init__(self, cwd: Path) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("VOTING_")}
        env["PYTHONPATH"] = str(ROOT)
        self.proc = subprocess.Popen(
            ["bash", "--noprofile", "--norc"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=env,
            text=True,
            start_new_session=True,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def run(self, command: str, timeout_s: float) -> tuple[int, list[str]]:
        assert self.proc.stdin is not None
        # Grouped so that stderr joins the output and nothing reads the script's stdin; a
        # trailing `&` still makes a job of this shell, for `wait` and `kill %1` later.
        self.proc.stdin.write(
            f"{{\n{command}\n}} </dev/null 2>&1\n__rc=$?\necho\necho {self.END} $__rc\n"
        )
        self.proc.stdin.flush()
        output: list[str] = []
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(
                    f"no end after {timeout_s:.0f} s of {command!r}; so far: {output}"
                ) from None
            if line is None:
                raise AssertionError(f"the shell ended during {command!r}: {output}")
            if line.startswith(self.END):
                while output and not output[-1].strip():
                    output.pop()
                return int(line.split()[1]), output
            output.append(line)

    def close(self) -> None:
        for sig, grace in ((signal.SIGTERM, 60.0), (signal.SIGKILL, 10.0)):
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                break
            # `devkit up` stops its stack on SIGTERM; wait until the group is gone.
            deadline = time.monotonic() + grace
            while time.monotonic() < deadline and _group_alive(self.proc.pid):
                time.sleep(0.2)
            if not _group_alive(self.proc.pid):
                break
        self.proc.wait(10)
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                pipe.close()


def _group_alive(pgid: int) -> bool:
    # A group of zombies only waits for its parent to reap it.
    return any(group == pgid for _, group in processes.running().values())


class Ports:
    def __init__(self) -> None:
        self.port = {name: free_port() for name in PORT_OPTIONS}
        self.metrics_base = free_run(5)

    def options(self) -> str:
        return " ".join(
            [f"--{name}-port {port}" for name, port in self.port.items()]
            + [f"--metrics-port-base {self.metrics_base}"]
        )

    def rewrite(self, command: str) -> str:
        for address, name in DEFAULT_ADDRESSES.items():
            command = command.replace(address, f"127.0.0.1:{self.port[name]}")
        command = command.replace(DEFAULT_URL, f"http://127.0.0.1:{self.port['gateway']}")
        return re.sub(r"(-m devkit up)\b", rf"\1 {self.options()}", command)


# -- comparing outputs --------------------------------------------------------------------


def line_matches(expected: str, actual: str) -> bool:
    pattern = "".join(
        ".*"
        if part == "..."
        else r"\d+(?:\.\d+)?"
        if part and part[0].isdigit()
        else re.escape(part)
        for part in NUMBER.split(expected)
    )
    return re.fullmatch(pattern, actual) is not None


def json_documents(text: str) -> list[Any]:
    decoder = json.JSONDecoder()
    docs, at = [], 0
    while (at := _skip_space(text, at)) < len(text):
        doc, at = decoder.raw_decode(text, at)
        docs.append(doc)
    return docs


def _skip_space(text: str, at: int) -> int:
    while at < len(text) and text[at].isspace():
        at += 1
    return at


def same_shape(expected: Any, actual: Any, path: str, learned: dict[str, str]) -> list[str]:
    """What differs beyond what differs between runs; records the values this run made."""
    if isinstance(expected, dict):
        if not isinstance(actual, dict) or set(expected) != set(actual):
            return [f"{path}: {sorted(expected)} != {actual!r}"]
        if path.endswith(".consistency_token"):
            learned[json.dumps(expected)] = json.dumps(actual)
        return [
            problem
            for key in expected
            for problem in same_shape(expected[key], actual[key], f"{path}.{key}", learned)
        ]
    if isinstance(expected, list):
        if not isinstance(actual, list) or bool(expected) != bool(actual):
            return [f"{path}: {expected!r} != {actual!r}"]
        pairs = zip(expected, actual, strict=False) if len(expected) == len(actual) else []
        pairs = pairs or [(expected[0], actual[0])] if expected else []
        return [
            problem
            for i, (e, a) in enumerate(pairs)
            for problem in same_shape(e, a, f"{path}[{i}]", learned)
        ]
    if isinstance(expected, str) and isinstance(actual, str):
        if expected == actual:
            return []
        if VARIABLE.match(expected) and any(c.isdigit() for c in expected):
            if VARIABLE.match(actual):
                learned[expected] = actual
                return []
        elif line_matches(expected, actual):
            return []
    elif expected == actual:
        return []
    return [f"{path}: {expected!r} != {actual!r}"]


def check_output(command: Command, code: int, actual: list[str], learned: dict[str, str]) -> None:
    expected = command.output
    where = f"{command.text!r}"
    if expected[:1] == ["ERROR:"]:
        assert code != 0, f"{where} succeeded: {actual}"
    else:
        assert code == 0, f"{where} exited {code}: {actual}"
    if expected[:1] and expected[0].startswith("{"):
        problems = []
        want, got = json_documents("\n".join(expected)), json_documents("\n".join(actual))
        assert want, f"README.md: no JSON in the output shown for {where}"
        assert got, f"{where}: no JSON in {actual}"
        for e, a in {(0, 0), (len(want) - 1, len(got) - 1)}:
            problems += same_shape(want[e], got[a], "$", learned)
        assert not problems, f"{where}:\n" + "\n".join(problems) + "\n" + "\n".join(actual)
        return
    shown = f"{where}: expected\n" + "\n".join(expected) + "\ngot\n" + "\n".join(actual)
    assert len(actual) == len(expected), shown
    assert all(line_matches(e, a) for e, a in zip(expected, actual, strict=True)), shown


# -- the tests ----------------------------------------------------------------------------


BLOCKS = readme_blocks(README.read_text())


def test_the_readme_has_sessions_to_run() -> None:
    kinds = [block.kind for block in BLOCKS]
    assert "with devkit up" in kinds
    assert "standalone" in kinds
    assert all(command.text for block in BLOCKS for command in block.commands)


@pytest.mark.parametrize("run", groups(BLOCKS), ids=lambda run: f"README.md:{run[0].line}")
def test_a_readme_session_works_as_shown(run: list[Block], tmp_path: Path) -> None:
    (tmp_path / ".venv").symlink_to(ROOT / ".venv")
    ports = Ports()
    session = Session(tmp_path)
    learned: dict[str, str] = {}
    try:
        if run[0].kind == "with devkit up":
            for prelude in (
                # Not a job of the session's shell: the README's `wait` waits for its own.
                "(.venv/bin/python -m devkit up > up.log 2>&1 &)",
                'until grep -q "devkit up: ready" up.log; do sleep 1; done',
            ):
                code, out = session.run(ports.rewrite(prelude), timeout_s=300)
                assert code == 0, out
        for block in run:
            for command in block.commands:
                text = ports.rewrite(command.text)
                for mine, theirs in learned.items():
                    text = text.replace(mine, theirs)
                code, actual = session.run(text, timeout_s=300)
                check_output(command, code, actual, learned)
    except AssertionError:
        log = tmp_path / "up.log"
        if log.exists():
            print("up.log:", *log.read_text().splitlines()[-30:], sep="\n")
        raise
    finally:
        session.close()


def test_the_configuration_table_shows_the_defaults_the_code_has() -> None:
    table = README.read_text().split("## Configuration", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `(VOTING_[A-Z0-9_]+)` \| ([^|]*) \|", table, re.MULTILINE)
    assert len(rows) >= 5
    defaults = {env: default for env, default, _ in describe()}
    for name, shown in rows:
        assert name in defaults, f"README's configuration table names unknown {name}"
        if shown.strip().startswith("`"):
            assert shown.strip().strip("`") == defaults[name], (name, shown, defaults[name])
