"""Window aggregates of ACW intervals: mergeable statistics per scope, key and window, and their output records."""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum
from typing import Any, NamedTuple

from streams.domain.intervals import AcwInterval, EndReason
from streams.domain.percentiles import Durations, take_off_counts

UNKNOWN = "unknown"
CENTER_KEY = "*"


class Scope(StrEnum):
    """What an aggregate is grouped by.

    Hot paths spell a member as `str(scope)`: a StrEnum's str() is its value, read at C speed, where `.value`
    runs Enum's property in the interpreter.
    """

    AGENT = "AGENT"
    TEAM = "TEAM"
    QUEUE = "QUEUE"
    CENTER = "CENTER"


def scope_keys(agent_id: str, team_id: str | None, queue_id: str | None) -> tuple[tuple[Scope, str], ...]:
    """The (scope, key) groups an interval of this agent, team and queue counts in."""
    return (
        (Scope.AGENT, agent_id),
        (Scope.TEAM, team_id or UNKNOWN),
        (Scope.QUEUE, queue_id or UNKNOWN),
        (Scope.CENTER, CENTER_KEY),
    )


class WindowKey(NamedTuple):
    """One aggregate: a scope key in one window of one spec (a tuple: hashed and compared at C speed)."""

    scope: Scope
    key: str
    size_ms: int
    start_ms: int

    @property
    def end_ms(self) -> int:
        """Exclusive end of the window."""
        return self.start_ms + self.size_ms

    def record_key(self) -> str:
        """The Kafka key of its records on the aggregates topic: scope|key|window_start|window_size."""
        return f"{self.scope!s}|{self.key}|{self.start_ms}|{self.size_ms // 1000}"

    def group(self) -> str:
        """The partitioning key of its partials: every window of one scope key meets in one place."""
        return f"{self.scope.value}|{self.key}"

    def to_list(self) -> list[Any]:
        """Plain data."""
        return [self.scope.value, self.key, self.size_ms, self.start_ms]

    @classmethod
    def from_list(cls, data: list[Any]) -> WindowKey:
        """Inverse of `to_list`."""
        return window_key(Scope(data[0]), data[1], data[2], data[3])


def window_key(scope: Scope, key: str, size_ms: int, start_ms: int) -> WindowKey:
    """A `WindowKey`, built as the tuple it is: NamedTuple's own `__new__` is a Python function, even compiled."""
    return tuple.__new__(WindowKey, (scope, key, size_ms, start_ms))


class WindowStats:
    """The mergeable sums of one aggregate, in integer milliseconds so any merge order gives the same bytes."""

    __slots__ = (
        "acw_ms",
        "agent_acw_ms",
        "contacts",
        "durations",
        "end_reasons",
        "handle_acw_ms",
        "handle_ms",
        "handled",
        "hold_ms",
        "last_ended_ms",
        "max_ms",
        "talk_ms",
        "timed_out",
        "with_acw",
    )

    def __init__(self) -> None:
        self.contacts = 0
        self.with_acw = 0
        self.acw_ms = 0
        self.max_ms = 0
        self.talk_ms = 0
        self.hold_ms = 0
        self.handled = 0
        self.handle_ms = 0
        self.handle_acw_ms = 0
        self.timed_out = 0
        self.end_reasons: dict[str, int] = {}
        self.durations = Durations()
        self.agent_acw_ms = 0
        self.last_ended_ms = 0

    def add(self, interval: AcwInterval) -> None:
        """Count one interval."""
        self.count(contribution(interval))

    def count(self, c: Contribution) -> None:
        """Count one interval's `contribution` (worked out once for all the panes it counts in)."""
        acw, talk, hold, handled, timed_out, reason, ended = c
        self.contacts += 1
        if acw > 0:
            self.with_acw += 1
        self.acw_ms += acw
        if acw > self.max_ms:
            self.max_ms = acw
        self.talk_ms += talk
        self.hold_ms += hold
        if handled:
            self.handled += 1
            self.handle_ms += talk + hold + acw
            self.handle_acw_ms += acw
        if timed_out:
            self.timed_out += 1
        reasons = self.end_reasons
        reasons[reason] = reasons.get(reason, 0) + 1
        self.durations.add(acw)
        if ended > self.last_ended_ms:
            self.last_ended_ms = ended

    def merge(self, other: WindowStats) -> None:
        """Add another partition's sums."""
        self.contacts += other.contacts
        self.with_acw += other.with_acw
        self.acw_ms += other.acw_ms
        if other.max_ms > self.max_ms:
            self.max_ms = other.max_ms
        self.talk_ms += other.talk_ms
        self.hold_ms += other.hold_ms
        self.handled += other.handled
        self.handle_ms += other.handle_ms
        self.handle_acw_ms += other.handle_acw_ms
        self.timed_out += other.timed_out
        reasons = self.end_reasons
        for reason, n in other.end_reasons.items():
            reasons[reason] = reasons.get(reason, 0) + n
        self.durations.merge(other.durations)
        self.agent_acw_ms += other.agent_acw_ms
        if other.last_ended_ms > self.last_ended_ms:
            self.last_ended_ms = other.last_ended_ms

    def remove(self, other: WindowStats) -> bool:
        """Take off the sums of `other`, which were merged in; False, changing nothing, when that cannot be done.

        Maxima cannot be taken off: `max_ms` and `last_ended_ms` stay as they were, for the caller to work out
        again from what is left. Nor can values a percentile sketch counted (see `Durations.remove`).
        """
        if not self.durations.remove(other.durations):
            return False
        self.contacts -= other.contacts
        self.with_acw -= other.with_acw
        self.acw_ms -= other.acw_ms
        self.talk_ms -= other.talk_ms
        self.hold_ms -= other.hold_ms
        self.handled -= other.handled
        self.handle_ms -= other.handle_ms
        self.handle_acw_ms -= other.handle_acw_ms
        self.timed_out -= other.timed_out
        take_off_counts(self.end_reasons, other.end_reasons)
        self.agent_acw_ms -= other.agent_acw_ms
        return True

    def to_dict(self) -> dict[str, Any]:
        """Plain data for state and partial records."""
        return {
            "n": self.contacts,
            "nz": self.with_acw,
            "acw": self.acw_ms,
            "max": self.max_ms,
            "talk": self.talk_ms,
            "hold": self.hold_ms,
            "hn": self.handled,
            "hs": self.handle_ms,
            "ha": self.handle_acw_ms,
            "to": self.timed_out,
            "er": dict(sorted(self.end_reasons.items())),
            "d": self.durations.to_dict(),
            "aa": self.agent_acw_ms,
            "le": self.last_ended_ms,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> WindowStats:
        """Inverse of `to_dict`."""
        s = cls()
        s.contacts, s.with_acw, s.acw_ms, s.max_ms = d["n"], d["nz"], d["acw"], d["max"]
        s.talk_ms, s.hold_ms, s.handled, s.handle_ms, s.handle_acw_ms = d["talk"], d["hold"], d["hn"], d["hs"], d["ha"]
        s.timed_out, s.end_reasons, s.agent_acw_ms, s.last_ended_ms = d["to"], dict(d["er"]), d["aa"], d["le"]
        s.durations = Durations.from_dict(d["d"])
        return s

    # --- derived figures -------------------------------------------------------------------

    def acw_avg_seconds(self) -> float | None:
        """ACW sum over all contacts (Amazon Connect's denominator)."""
        return self.acw_ms / self.contacts / 1000 if self.contacts else None

    def acw_pct(self) -> float | None:
        """ACW as a percentage of handle time, over contacts with a known handle time."""
        return 100 * self.handle_acw_ms / self.handle_ms if self.handle_ms else None

    def to_record(self, wk: WindowKey, final: bool, updated_at_ms: int) -> dict[str, Any]:
        """The `schemas/acw_aggregate.avsc` record."""
        p50, p90 = self.durations.quantiles((0.5, 0.9))
        return {
            "scope": str(wk.scope),
            "key": wk.key,
            "window_start": wk.start_ms,
            "window_end": wk.end_ms,
            "window_size_seconds": wk.size_ms // 1000,
            "contacts": self.contacts,
            "contacts_with_acw": self.with_acw,
            "acw_sum_seconds": self.acw_ms / 1000,
            "acw_avg_seconds": self.acw_avg_seconds(),
            "acw_avg_nonzero_seconds": self.acw_ms / self.with_acw / 1000 if self.with_acw else None,
            "acw_p50_seconds": None if p50 is None else p50 / 1000,
            "acw_p90_seconds": None if p90 is None else p90 / 1000,
            "acw_max_seconds": self.max_ms / 1000 if self.contacts else None,
            "percentiles_exact": self.durations.exact,
            "talk_sum_seconds": self.talk_ms / 1000,
            "hold_sum_seconds": self.hold_ms / 1000,
            "handle_avg_seconds": self.handle_ms / self.handled / 1000 if self.handled else None,
            "acw_pct": self.acw_pct(),
            "agent_acw_seconds": self.agent_acw_ms / 1000,
            "timed_out": self.timed_out,
            "end_reasons": sorted_counts(self.end_reasons),
            "final": final,
            "updated_at": updated_at_ms,
        }


# What one interval adds to a pane: acw, talk and hold ms, handled, timed out, end reason, ended_at.
Contribution = tuple[int, int, int, bool, bool, str, int]


def contribution(interval: AcwInterval) -> Contribution:
    """The figures an interval adds to every pane it counts in."""
    return (
        interval.ended_at_ms - interval.disconnected_at_ms,
        _ms(interval.talk_seconds),
        _ms(interval.hold_seconds),
        interval.handle_seconds is not None,
        interval.end_reason is EndReason.TIMED_OUT,
        str(interval.end_reason),
        interval.ended_at_ms,
    )


def sorted_counts(counts: dict[str, int]) -> dict[str, int]:
    """A copy of `counts` with its keys in order (one key, the usual case, needs no sort)."""
    if len(counts) < 2:
        return counts.copy()
    return {key: counts[key] for key in sorted(counts)}


def _ms(seconds: float | None) -> int:
    return 0 if seconds is None else round(seconds * 1000)


def union_ms(spans: Iterable[tuple[int, int]], start_ms: int, end_ms: int) -> int:
    """Length of the union of [a, b) spans clipped to [start_ms, end_ms)."""
    total = 0
    cur_a = cur_b = None
    for a, b in sorted((max(a, start_ms), min(b, end_ms)) for a, b in spans):
        if a >= b:
            continue
        if cur_b is None or a > cur_b:
            if cur_b is not None and cur_a is not None:
                total += cur_b - cur_a
            cur_a, cur_b = a, b
        elif b > cur_b:
            cur_b = b
    if cur_b is not None and cur_a is not None:
        total += cur_b - cur_a
    return total
