"""Logging: one structured line format, and library messages that repeat in a loop rate-limited."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable

FORMAT = 'ts=%(asctime)s level=%(levelname)s logger=%(name)s msg="%(message)s"'
# Loggers of the libraries under us; ours (acw.*) are never rate-limited.
LIBRARIES = ("aiokafka", "kafka", "faust", "mode")
REPEAT_WINDOW_SECONDS = 30.0


class RepeatLimiter(logging.Filter):
    """Lets one library record per message template through every window, then says how many it held back.

    While the broker is down, aiokafka logs its reconnect attempts thousands of times a second.
    """

    def __init__(self, window_s: float = REPEAT_WINDOW_SECONDS, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.window_s = window_s
        self.clock = clock
        self.seen: dict[tuple[str, int, str], tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith(LIBRARIES):
            return True
        key = (record.name, record.levelno, str(record.msg))
        now = self.clock()
        first, held = self.seen.get(key, (None, 0))
        if first is not None and now - first < self.window_s:
            self.seen[key] = (first, held + 1)
            return False
        self.seen[key] = (now, 0)
        if len(self.seen) > 1000:  # templates are few; forget old ones rather than grow
            self.seen = {k: v for k, v in self.seen.items() if now - v[0] < self.window_s}
        if held:
            record.msg = f"{record.getMessage()} ({held} more like this in the last {self.window_s:.0f} s)"
            record.args = None
        return True


def dict_config(level: str) -> dict[str, object]:
    """The same setup as a `logging.config.dictConfig` document, for Faust's worker to apply."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"acw": {"format": FORMAT}},
        "filters": {"repeats": {"()": RepeatLimiter}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": "acw",
                "filters": ["repeats"],
            }
        },
        "root": {"level": level.upper(), "handlers": ["stderr"]},
    }


def configure(level: str) -> None:
    """Structured lines on stderr at `level`, libraries' repeats limited."""
    logging.basicConfig(level=level.upper(), stream=sys.stderr, format=FORMAT)
    adopt_handlers()


def adopt_handlers() -> None:
    """Put our format and repeat limiter on the root handlers (again after Faust's worker replaced them)."""
    limiter = RepeatLimiter()
    for handler in logging.getLogger().handlers:
        handler.setFormatter(logging.Formatter(FORMAT))
        if not any(isinstance(f, RepeatLimiter) for f in handler.filters):
            handler.addFilter(limiter)
