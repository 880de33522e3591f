"""A core's changed state entries as the JSON bytes the changelog stores, built one entry at a time."""

from __future__ import annotations

from typing import Any

import orjson

from streams.domain.core import Checkpointable


def entry_json(value: Any) -> bytes:
    """One entry's plain data as orjson writes it, in a buffer of its own size.

    orjson 3.12 and later return their whole write buffer, 4 KB or more however short the JSON
    (home-assistant/core#181245): a snapshot of 20,000 agents of about 1 KB each held 160 MB instead of 20.
    """
    return bytes(memoryview(orjson.dumps(value)))


def changed_entries(core: Checkpointable) -> dict[str, bytes | None]:
    """The entries changed since the last call, taken now, as JSON (None deletes); each entry's plain data is
    built and freed before the next one's, so a snapshot never holds all of them as plain data."""
    return {name: None if value is None else entry_json(value) for name, value in core.drain_dirty()}
