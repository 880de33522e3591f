"""The output router: what a core returns, in the order it must be written, handed to a sink.

The worker's sink encodes records for Kafka; replay's writes JSON Lines files. Both get the same calls
in the same order from the same functions, so they can only differ in how they write.
"""

from __future__ import annotations

from typing import Any, Protocol, TypeVar

from streams.domain.aggregates import WindowKey, WindowStats
from streams.domain.core import Core
from streams.domain.events import CallEvent
from streams.domain.intervals import AcwInterval
from streams.domain.merge import MergeOutput
from streams.domain.pipeline import Output
from streams.domain.processor import Disposition, Step

S = TypeVar("S", contravariant=True)

_LATE = Disposition.LATE


class WindowRecordSink(Protocol):
    """Where a merger's outputs are written: window records and window alerts."""

    def alert(self, alert: dict[str, Any]) -> None:
        """An alert transition (firing or resolved)."""

    def aggregate(self, key: str, record: dict[str, Any]) -> None:
        """A window aggregate record, keyed by its window group."""


class OutputSink(WindowRecordSink, Protocol[S]):
    """Where routed outputs are written; `S` is what names a source record (a Kafka message, a file line)."""

    def interval(self, interval: AcwInterval) -> None:
        """An interval that closed."""

    def rejected(self, source: S | None, interval: AcwInterval, reason: str) -> None:
        """An interval whose window was already final: a dead letter."""

    def pane(self, pane: WindowKey, stats: WindowStats) -> None:
        """A pane aggregate of this source that became final."""

    def progress(self, closed_through_ms: int) -> None:
        """Every pane of this source ending by `closed_through_ms` is final."""

    def dead_letter(self, source: S | None, reason: str, detail: str) -> None:
        """A source record (or one of its events) that cannot be applied, with the reason."""


def route(out: Output, sink: OutputSink[S], source: S | None = None) -> None:
    """Hand one step's outputs to `sink`: intervals, alerts, rejects, final panes, progress, then local windows."""
    for interval in out.intervals:
        sink.interval(interval)
    for alert in out.alerts:
        sink.alert(alert)
    for interval, reason in out.rejected:
        sink.rejected(source, interval, reason)
    for pane, stats in out.final_panes:
        sink.pane(pane, stats)
    if out.progress is not None:
        sink.progress(out.progress)
    for key, record in out.aggregates:
        sink.aggregate(key, record)
    for alert in out.window_alerts:
        sink.alert(alert)


def route_merged(out: MergeOutput, sink: WindowRecordSink) -> None:
    """Hand a merger's outputs to `sink`: window aggregates, then window alerts."""
    for key, record in out.aggregates:
        sink.aggregate(key, record)
    for alert in out.alerts:
        sink.alert(alert)


def apply_event(core: Core, event: CallEvent, sink: OutputSink[S], source: S) -> Step:
    """Offer one event to a core; route what it produced, or dead-letter the event when it came too late."""
    step, out = core.offer(event)
    if out:
        route(out, sink, source)
    elif step.disposition is _LATE:
        sink.dead_letter(
            source,
            "late",
            f"event at {event.occurred_at_ms} is behind stream time {core.processor.watermark_ms} "
            "by more than the allowed lateness",
        )
    return step
