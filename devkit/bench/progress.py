"""A one-line progress bar on stderr for long runs (stdout carries the JSON)."""

from __future__ import annotations

import sys
import time

WIDTH = 30


class Progress:
    def __init__(self, planned_s: float) -> None:
        self._planned_s = max(planned_s, 1.0)
        self._started = time.monotonic()
        self._tty = sys.stderr.isatty()
        self._last_line = 0.0

    def show(self, phase: str, note: str = "") -> None:
        elapsed = time.monotonic() - self._started
        if not self._tty and elapsed - self._last_line < 5:
            return  # a log, not a terminal: one line every few seconds is enough
        self._last_line = elapsed
        done = min(elapsed / self._planned_s, 0.99)
        filled = int(done * WIDTH)
        bar = "#" * filled + "-" * (WIDTH - filled)
        line = f"[{bar}] {done:4.0%} {elapsed:5.0f}s  {phase}" + (f": {note}" if note else "")
        end = "\r" if self._tty else "\n"
        print(f"{line:<100}", end=end, file=sys.stderr, flush=True)

    def done(self) -> None:
        elapsed = time.monotonic() - self._started
        print(f"{'[' + '#' * WIDTH + ']'} done in {elapsed:.0f}s{' ' * 60}", file=sys.stderr)
