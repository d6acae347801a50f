"""A one-line progress bar on stderr: done, failed, pending, rate and ETA.

It draws only on a terminal unless asked to (``--progress``), redraws at most ten times a
second, and ends its line when closed, so that what follows starts on a clean line.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import TextIO

import click

WIDTH = 24
REDRAW_SECONDS = 0.1


def wanted(flag: bool | None, stream: TextIO | None = None) -> bool:
    """``--progress/--no-progress`` if given, else whether stderr is a terminal."""
    if flag is not None:
        return flag
    stream = stream or sys.stderr
    return bool(getattr(stream, "isatty", lambda: False)())


def duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds + 0.5), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class ProgressBar:
    """Counts settled items out of ``total``; ``update`` draws, ``close`` ends the line."""

    def __init__(self, label: str, total: int, *, enabled: bool) -> None:
        self.label = label
        self.total = total
        self.enabled = enabled and total > 0
        self.done = 0
        self.failed = 0
        self._started = time.monotonic()
        self._drawn_at = 0.0
        self._lock = threading.Lock()

    def update(self, *, done: int = 0, failed: int = 0) -> None:
        """Count ``done`` and ``failed`` more (from any thread) and redraw if it is time."""
        with self._lock:
            self.done += done
            self.failed += failed
            now = time.monotonic()
            if self.enabled and now - self._drawn_at >= REDRAW_SECONDS and not self.finished:
                self._drawn_at = now
                self._draw(now, end="")

    @property
    def finished(self) -> bool:
        return self.done + self.failed >= self.total

    def line(self, elapsed: float) -> str:
        settled = self.done + self.failed
        filled = WIDTH * settled // self.total
        rate = settled / elapsed if elapsed > 0 else 0.0
        eta = duration((self.total - settled) / rate) if rate > 0 else "?"
        return (
            f"{self.label} [{'#' * filled}{'.' * (WIDTH - filled)}] {settled}/{self.total}"
            f"  done {self.done}  failed {self.failed}  pending {self.total - settled}"
            f"  {rate:.1f}/s  ETA {eta} "
        )

    def close(self) -> None:
        if self.enabled:
            self._draw(time.monotonic(), end="\n")
            self.enabled = False  # drawn for the last time

    def _draw(self, now: float, *, end: str) -> None:
        click.echo("\r" + self.line(now - self._started) + end, err=True, nl=False)
