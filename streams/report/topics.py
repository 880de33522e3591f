"""The report's input read from the intervals topic, from the beginning (or shortly before --since) to its end."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from streams.consume import Start, consume
from streams.settings import Settings

# Intervals are stamped with their end; one that disconnected at --since ends at most the ACW timeout later,
# and may be written up to the allowed lateness after that. Reading starts this far before, with room to spare.
_LOOKBACK_MARGIN_MS = 3_600_000


async def read_intervals_topic(
    settings: Settings, since_ms: int | None, progress: Callable[[str], None]
) -> list[dict[str, Any]]:
    """The decoded interval records of ACW_INTERVALS_TOPIC up to the end offsets seen at start."""
    records: list[dict[str, Any]] = []
    start = Start(beginning=True)
    if since_ms is not None:
        back = round((settings.max_acw_seconds + settings.allowed_lateness_seconds) * 1000) + _LOOKBACK_MARGIN_MS
        start = Start(since_ms=since_ms - back)

    def keep(record: dict[str, Any]) -> None:
        value = record["value"]
        if isinstance(value, dict) and "interval_id" in value:
            records.append(value)
            if not len(records) % 100_000:
                progress(f"{len(records):,} intervals read…")

    await consume(settings, settings.intervals_topic, start, keep, stop_at_end=True)
    return records
