"""One input's way to the core, shared by the worker and replay: translate, apply the directory, check the clock."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from streams.domain.events import CallEvent
from streams.serialization import check_not_in_future
from streams.sources import Source, Translation
from streams.sources.callevent import CallEventSource
from streams.sources.directory import AgentDirectory


class Intake:
    """Reads records of one format; raises InvalidEvent (with the format's reason) for a record to dead-letter."""

    def __init__(
        self, source: Source, directory: AgentDirectory | None = None, max_future_ms: int = 86_400_000
    ) -> None:
        self.source = source
        self.format = source.format
        self.routing_key = source.routing_key
        self.directory = directory if directory else None
        self.max_future_ms = max_future_ms
        self._translate = source.translate
        # Our own contract has one event per record and nothing else to say: `read_event` reads it without
        # building a Translation (the per-record path of replay and the worker).
        self._decode: Callable[[bytes | Mapping[str, Any]], CallEvent] | None = (
            source.decode if isinstance(source, CallEventSource) else None
        )
        self.single = self._decode is not None

    def read_event(self, data: bytes | Mapping[str, Any], now_ms: int) -> CallEvent:
        """`read`'s one event, for an intake that is `single`."""
        if self._decode is None:
            raise TypeError(f"read_event needs a single-event source, not {self.format}")
        event = self._decode(data)
        if event.occurred_at_ms > now_ms + self.max_future_ms:
            check_not_in_future(event, now_ms, self.max_future_ms)
        if self.directory is not None:
            return self.directory.apply((event,))[0]
        return event

    def read(self, data: bytes | Mapping[str, Any], now_ms: int) -> Translation:
        """The record's translation, with directory teams applied and no event too far ahead of `now_ms`."""
        translation = self._translate(data)
        limit = now_ms + self.max_future_ms
        events = translation.events
        if len(events) == 1:
            if events[0].occurred_at_ms > limit:
                check_not_in_future(events[0], now_ms, self.max_future_ms)
        else:
            for event in events:
                if event.occurred_at_ms > limit:
                    check_not_in_future(event, now_ms, self.max_future_ms)
        if self.directory is not None and translation.events:
            return translation._replace(events=self.directory.apply(translation.events))
        return translation
