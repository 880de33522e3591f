"""`avro` and `json`: our own `CallEvent` contract, one event per record."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from streams.domain.events import event_from_record
from streams.serialization import InputFormat, decode_call_event
from streams.sources import Translation, agent_key


class CallEventSource:
    """Decodes records of the `CallEvent` contract (plain or Confluent-framed Avro, or JSON)."""

    routing_key = staticmethod(agent_key)

    def __init__(self, fmt: InputFormat, schema_ids: frozenset[int] = frozenset()) -> None:
        self.format = fmt
        self.schema_ids = schema_ids

    def translate(self, data: bytes | Mapping[str, Any]) -> Translation:
        """One validated event; raises InvalidEvent with today's reasons (`unparseable`, `missing_field`, ...)."""
        event = event_from_record(data) if isinstance(data, Mapping) else decode_call_event(
            data, self.format, self.schema_ids
        )  # fmt: skip
        return Translation(event.event_type.name, (event,))


class RekeyedSource(CallEventSource):
    """The re-key topic: translated events as Avro; JSON records written there before the re-key carried
    translated events (it once held raw copies of JSON input) are still read."""

    def __init__(self) -> None:
        super().__init__("avro")

    def translate(self, data: bytes | Mapping[str, Any]) -> Translation:
        if isinstance(data, bytes) and data[:1] == b"{":
            return Translation("", (decode_call_event(data, "json"),))
        return super().translate(data)
