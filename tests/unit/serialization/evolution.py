"""A newer writer's CallEvent schema, as a producer a version ahead of us would register it."""

from __future__ import annotations

import copy
import io
from typing import Any

import fastavro

from streams.domain.events import CallEvent
from streams.serialization import _without_logical_types, load_schema

NEW_EVENT_TYPE = "CONTACT_TRANSFERRED"
NEW_CHANNEL = "VIDEO"


def newer_call_event_schema() -> dict[str, Any]:
    """Ours plus an optional field, an event type and a channel: changes every registry calls compatible."""
    schema = copy.deepcopy(load_schema("call_event"))
    for f in schema["fields"]:
        if f["name"] == "event_type":
            symbols = f["type"]["symbols"]
            symbols.insert(symbols.index("UNKNOWN"), NEW_EVENT_TYPE)
        if f["name"] == "channel":
            f["type"][1]["symbols"].append(NEW_CHANNEL)
    schema["fields"].insert(4, {"name": "site_id", "type": ["null", "string"], "default": None})
    return schema


def newer_record(event: CallEvent, **changes: Any) -> dict[str, Any]:
    """The event as the newer writer sends it (with its new field set), with `changes` applied."""
    return {**event.to_record(), "site_id": "berlin-2", **changes}


def encode_newer(record: dict[str, Any]) -> bytes:
    """Schemaless Avro of one record in the newer writer's schema."""
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, fastavro.parse_schema(_without_logical_types(newer_call_event_schema())), record)
    return buf.getvalue()
