"""One input's way to the core, shared by the worker and replay: translate, apply the directory, check the clock."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from streams.serialization import check_not_in_future
from streams.sources import Source, Translation
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

    def read(self, data: bytes | Mapping[str, Any], now_ms: int) -> Translation:
        """The record's translation, with directory teams applied and no event too far ahead of `now_ms`."""
        translation = self.source.translate(data)
        events = translation.events
        if not events:
            return translation
        limit = now_ms + self.max_future_ms
        for event in events:
            if event.occurred_at_ms > limit:
                check_not_in_future(event, now_ms, self.max_future_ms)
        if self.directory is not None:
            events = self.directory.apply(events)
            return Translation(translation.kind, events, translation.ignored, translation.notes)
        return translation
