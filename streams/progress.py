"""Progress of long commands (replay, produce, simulate to a file): a bar with events/s and time left.

On a terminal it is a rich progress bar on stderr; otherwise (a pipe, a log file) a plain line every few
seconds, so logs stay readable. `--quiet` turns both off.
"""

from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import Any

LINE_EVERY_S = 5.0


class Progress:
    """Reports how far a long command is: `update(events, fraction)` as it goes, within a `with` block."""

    def __init__(
        self, what: str, enabled: bool = True, terminal: bool | None = None, line_every_s: float = LINE_EVERY_S
    ) -> None:
        self.what = what
        self.line_every_s = line_every_s
        self.enabled = enabled
        self.terminal = sys.stderr.isatty() if terminal is None else terminal
        self._bar: Any = None
        self._task: Any = None
        self._started = time.monotonic()
        self._last_line = self._started

    def __enter__(self) -> Progress:
        if self.enabled and self.terminal:
            from rich.console import Console
            from rich.progress import BarColumn, TaskProgressColumn, TextColumn, TimeRemainingColumn
            from rich.progress import Progress as Bar

            self._bar = Bar(
                TextColumn("{task.description}"),
                BarColumn(),
                TaskProgressColumn(),
                TextColumn("{task.fields[events]:>12,} events  {task.fields[rate]:>9,.0f}/s"),
                TextColumn("left"),
                TimeRemainingColumn(),
                console=Console(stderr=True),
                transient=False,
            )
            self._bar.start()
            self._task = self._bar.add_task(self.what, total=1.0, events=0, rate=0.0)
        return self

    def update(self, events: int, fraction: float | None = None) -> None:
        """`events` done so far, and the share of the work done when it is known (None: unknown)."""
        if not self.enabled:
            return
        now = time.monotonic()
        rate = events / (now - self._started) if now > self._started else 0.0
        if self._bar is not None:
            completed = None if fraction is None else min(1.0, max(0.0, fraction))
            self._bar.update(self._task, completed=completed, events=events, rate=rate)
        elif now - self._last_line >= self.line_every_s:
            self._last_line = now
            share = "" if fraction is None else f" ({100 * min(1.0, fraction):.0f}%"
            left = ""
            if fraction is not None and 0 < fraction < 1:
                left = f", about {(now - self._started) * (1 - fraction) / fraction:.0f} s left"
            print(
                f"  {self.what}: {events:,} events{share}{left}{')' if share else ''}, {rate:,.0f}/s", file=sys.stderr
            )

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._bar is not None:
            if kind is None:
                self._bar.update(self._task, completed=1.0)
            self._bar.stop()
