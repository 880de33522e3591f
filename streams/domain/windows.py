"""Event-time windows: tumbling and hopping specs, and which windows hold a timestamp."""

from __future__ import annotations

import re
from dataclasses import dataclass

_UNITS = {"s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
_DURATION = re.compile(r"^\s*(\d+)\s*([smhd])\s*$")


def parse_duration_ms(text: str) -> int:
    """'90s', '15m', '1h', '1d' -> milliseconds; ValueError otherwise."""
    match = _DURATION.match(text)
    if not match or int(match.group(1)) <= 0:
        raise ValueError(f"{text!r} is not a duration like 30s, 15m, 1h or 1d")
    return int(match.group(1)) * _UNITS[match.group(2)]


def format_duration_ms(ms: int) -> str:
    """The shortest exact spelling of a duration: 900000 -> '15m'."""
    for unit in ("d", "h", "m", "s"):
        if ms % _UNITS[unit] == 0:
            return f"{ms // _UNITS[unit]}{unit}"
    raise ValueError(f"{ms} ms is not a whole number of seconds")


@dataclass(frozen=True, slots=True, order=True)
class WindowSpec:
    """A window of `size_ms` starting every `hop_ms` (tumbling when they are equal), aligned to the epoch."""

    size_ms: int
    hop_ms: int

    def __post_init__(self) -> None:
        if self.size_ms <= 0 or self.hop_ms <= 0:
            raise ValueError("window size and hop must be positive")
        if self.hop_ms > self.size_ms or self.size_ms % self.hop_ms:
            raise ValueError(f"window {self}: the size must be a whole multiple of the hop")

    @classmethod
    def parse(cls, text: str) -> WindowSpec:
        """'15m' (tumbling) or '1h/5m' (1 hour, a new window every 5 minutes)."""
        size, _, hop = text.partition("/")
        size_ms = parse_duration_ms(size)
        return cls(size_ms, parse_duration_ms(hop) if hop else size_ms)

    @property
    def name(self) -> str:
        """The spelling `parse` reads back."""
        size = format_duration_ms(self.size_ms)
        return size if self.hop_ms == self.size_ms else f"{size}/{format_duration_ms(self.hop_ms)}"

    def starts(self, t_ms: int) -> range:
        """Start times of every window [start, start + size) that holds `t_ms`."""
        last = t_ms - t_ms % self.hop_ms
        return range(last - self.size_ms + self.hop_ms, last + 1, self.hop_ms)

    def ends_between(self, after_ms: int, upto_ms: int) -> range:
        """End times of windows ending in (after_ms, upto_ms]."""
        first = after_ms - after_ms % self.hop_ms + self.hop_ms
        return range(first, upto_ms + 1, self.hop_ms)


def parse_windows(text: str) -> tuple[WindowSpec, ...]:
    """A comma-separated list of specs, e.g. '15m,1h/5m'; duplicates rejected."""
    specs = tuple(WindowSpec.parse(part) for part in text.split(",") if part.strip())
    if not specs:
        raise ValueError("at least one window is needed")
    if len(set(specs)) != len(specs):
        raise ValueError(f"{text!r} names a window twice")
    return specs
