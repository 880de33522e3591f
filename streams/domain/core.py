"""The interfaces the shell sees of a core: feeding it events, and checkpointing it."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, Protocol

from streams.domain.events import CallEvent
from streams.domain.pipeline import Output
from streams.domain.processor import Processor, Step


class Core(Protocol):
    """A stream's rules: events in, outputs out (`AcwPipeline`, or the processor alone in replay)."""

    @property
    def processor(self) -> Processor:
        """The interval state machine, for stream time and its counts."""

    def offer(self, event: CallEvent) -> tuple[Step, Output]:
        """Take one arriving event; its disposition and everything that became final."""

    def finish(self) -> Output:
        """End of input: everything pending, made final."""


class ChangeTracking(Protocol):
    """A core that remembers what changed since it was last asked; replay, which never asks, opts out."""

    def forget_changes(self) -> None:
        """Drop what was tracked as changed."""


class Checkpointable(ChangeTracking, Protocol):
    """A core whose changed entries and stream state are written to a changelog and restored from it."""

    def has_dirty(self) -> bool:
        """Whether entries changed since the last `take_dirty`."""

    def take_dirty(self) -> dict[str, Any]:
        """The changed entries (None: deleted), forgetting that they changed."""

    def drain_dirty(self) -> Iterator[tuple[str, Any]]:
        """`take_dirty`'s entries one at a time, built as they are reached; consume them before the next event."""

    def mark_dirty(self, entries: Iterable[str]) -> None:
        """Count these entries as changed again (their checkpoint was not written)."""

    def meta(self) -> dict[str, Any]:
        """The stream state stored beside the entries."""
