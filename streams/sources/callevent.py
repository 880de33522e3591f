"""`avro` and `json`: our own `CallEvent` contract, one event per record."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from streams.domain.events import CallEvent, event_from_record
from streams.serialization import InputFormat, WriterSchemas, decode_call_event, event_from_json
from streams.sources import Translation, agent_key


class CallEventSource:
    """Decodes records of the `CallEvent` contract (plain or Confluent-framed Avro, or JSON)."""

    routing_key = staticmethod(agent_key)

    def __init__(
        self, fmt: InputFormat, schema_ids: frozenset[int] = frozenset(), writers: WriterSchemas | None = None
    ) -> None:
        self.format = fmt
        self.schema_ids = schema_ids
        self.writers = writers
        self._json = fmt == "json"

    def decode(self, data: bytes | Mapping[str, Any] | None) -> CallEvent:
        """The record's validated event; raises InvalidEvent with today's reasons (`unparseable`, `bad_channel`...)."""
        if type(data) is bytes and data and self._json:
            return event_from_json(data)
        if data is None or type(data) is bytes:
            return decode_call_event(data, self.format, self.schema_ids, self.writers)
        return event_from_record(data)

    def translate(self, data: bytes | Mapping[str, Any] | None) -> Translation:
        """`decode`'s event as a Translation."""
        return _single(self.decode(data))


def _single(event: CallEvent) -> Translation:
    """A one-event translation, built without NamedTuple's argument handling (this is the per-event path)."""
    return tuple.__new__(Translation, ("", (event,), False, ()))  # type: ignore[return-value]


class RekeyedSource(CallEventSource):
    """The re-key topic: translated events as Avro; JSON records written there before the re-key carried
    translated events (it once held raw copies of JSON input) are still read."""

    def __init__(self) -> None:
        super().__init__("avro")

    def decode(self, data: bytes | Mapping[str, Any] | None) -> CallEvent:
        if isinstance(data, bytes) and data[:1] == b"{":
            return decode_call_event(data, "json")
        return super().decode(data)
