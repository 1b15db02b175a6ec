"""Terminal rendering of live results: bars redrawn in place on a terminal, one summary
line per second when the output is a pipe or a log."""

from __future__ import annotations

import shutil
import sys
import time
from dataclasses import dataclass, field
from typing import TextIO

from voting.v1 import poll_pb2, results_pb2

_STATUS = {
    poll_pb2.POLL_STATUS_OPEN: "open",
    poll_pb2.POLL_STATUS_SCHEDULED: "scheduled",
    poll_pb2.POLL_STATUS_CLOSED: "closed",
}


@dataclass
class Progress:
    """Votes a load generator has cast so far."""

    label: str
    target: int
    done: int = 0
    errors: int = 0
    started: float = field(default_factory=time.monotonic)

    def line(self, width: int) -> str:
        rate = self.done / max(time.monotonic() - self.started, 1e-6)
        share = self.done / self.target if self.target else 1.0
        bar = _bar(share, max(10, width - 60))
        counts = f"{self.done:,}/{self.target:,}  {rate:,.0f}/s  errors {self.errors}"
        return f"{self.label} [{bar}] {counts}"


class LiveView:
    def __init__(self, poll: poll_pb2.Poll, *, out: TextIO | None = None) -> None:
        self.poll = poll
        self.results: results_pb2.Results | None = None
        self.progress: Progress | None = None
        self.updates = 0
        self._out = out or sys.stdout
        self._tty = self._out.isatty()
        self._drawn = 0
        self._last_plain = 0.0

    def update(self, results: results_pb2.Results) -> None:
        self.results = results
        self.updates += 1

    def render(self, *, force: bool = False) -> None:
        if not self._tty:
            now = time.monotonic()
            if force or now - self._last_plain >= 1.0:
                self._last_plain = now
                self._out.write(self._plain() + "\n")
                self._out.flush()
            return
        lines = self.lines(shutil.get_terminal_size((100, 24)).columns)
        if self._drawn:
            self._out.write(f"\x1b[{self._drawn}F")
        for line in lines:
            self._out.write("\x1b[2K" + line + "\n")
        self._drawn = len(lines)
        self._out.flush()

    def lines(self, width: int) -> list[str]:
        poll, results = self.poll, self.results
        status = _STATUS.get(results.status if results else poll.status, "?")
        head = f"{poll.title}  ({poll.poll_id}, {status})"
        lines = [head[:width]]
        counts = {c.option_id: c.votes for c in results.counts} if results else {}
        total = results.total if results else 0
        label_width = max((len(o.label) for o in poll.options), default=5)
        bar_width = max(10, width - label_width - 24)
        for option in poll.options:
            votes = counts.get(option.option_id, 0)
            share = votes / total if total else 0.0
            lines.append(
                f"  {option.label:<{label_width}} {_bar(share, bar_width)} {votes:>9,} {share:6.1%}"
            )
        if results is not None:
            lag = results.staleness.ToMilliseconds() / 1000
            tail = (
                "FINAL" + ("" if results.recount.matched else " (live count was repaired)")
                if results.final
                else f"staleness {lag:.2f}s"
            )
            lines.append(f"  total {total:,}   version {results.version}   {tail}")
        else:
            lines.append("  waiting for the first snapshot...")
        if self.progress is not None:
            lines.append(self.progress.line(width))
        return lines

    def _plain(self) -> str:
        results = self.results
        counts = " ".join(f"{c.option_id}={c.votes}" for c in results.counts) if results else "-"
        parts = [f"{self.poll.poll_id}", counts, f"total={results.total if results else 0}"]
        if results is not None and results.final:
            parts.append("FINAL")
        if self.progress is not None:
            parts.append(f"cast={self.progress.done}/{self.progress.target}")
        return "  ".join(parts)


def _bar(share: float, width: int) -> str:
    filled = round(max(0.0, min(1.0, share)) * width)
    return "█" * filled + "░" * (width - filled)
