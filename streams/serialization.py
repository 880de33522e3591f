"""Bytes to records and back: JSON and Avro (plain or Confluent-framed), driven by the `schemas/` files."""

from __future__ import annotations

import copy
import io
import json
import os
from collections.abc import Iterator
from functools import cache
from importlib import resources
from importlib.abc import Traversable
from pathlib import Path
from typing import Any, Literal

import fastavro
import orjson

from streams.domain.events import CallEvent, InvalidEvent, event_from_record

InputFormat = Literal["avro", "json"]
CONFLUENT_MAGIC = 0


def schemas_dir() -> Traversable:
    """Where the `.avsc` files live: ACW_SCHEMAS_DIR, else the installed package data `streams.schemas`.

    An editable install of a checkout has no `streams.schemas` package (the wheel maps `schemas/` there):
    it reads the checkout's `schemas/` itself.
    """
    override = os.environ.get("ACW_SCHEMAS_DIR")
    if override:
        return Path(override)
    try:
        return resources.files("streams.schemas")
    except ModuleNotFoundError:
        return Path(__file__).resolve().parent.parent / "schemas"


@cache
def schema_text(name: str) -> str:
    """The text of `schemas/NAME.avsc` (NAME may be `history/NAME.vN`), exactly as written."""
    node = schemas_dir()
    for part in f"{name}.avsc".split("/"):
        node = node / part
    return node.read_text(encoding="utf-8")


@cache
def load_schema(name: str) -> dict[str, Any]:
    """The parsed JSON of `schemas/NAME.avsc`, exactly as written."""
    return json.loads(schema_text(name))  # type: ignore[no-any-return]


def _without_logical_types(node: Any) -> Any:
    """A copy of a schema whose timestamp-millis longs stay plain ints (same bytes on the wire)."""
    if isinstance(node, dict):
        return {k: _without_logical_types(v) for k, v in node.items() if k != "logicalType"}
    if isinstance(node, list):
        return [_without_logical_types(v) for v in node]
    return copy.copy(node)


class AvroCodec:
    """Schemaless Avro binary for one schema, with timestamps as epoch-ms ints (fastavro)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.schema = fastavro.parse_schema(_without_logical_types(load_schema(name)))

    def encode(self, record: dict[str, Any]) -> bytes:
        """Avro binary of one record."""
        buf = io.BytesIO()
        fastavro.schemaless_writer(buf, self.schema, record)
        return buf.getvalue()

    def decode(self, data: bytes) -> dict[str, Any]:
        """One record from Avro binary; raises ValueError when bytes are left over or missing."""
        buf = io.BytesIO(data)
        record = fastavro.schemaless_reader(buf, self.schema, None)
        if buf.tell() != len(data):
            raise ValueError(f"{len(data) - buf.tell()} bytes left after the record")
        return record  # type: ignore[return-value]


@cache
def codec(name: str) -> AvroCodec:
    """The shared codec of one schema."""
    return AvroCodec(name)


def decode_call_event(data: bytes | None, fmt: InputFormat, schema_ids: frozenset[int] = frozenset()) -> CallEvent:
    """A validated CallEvent from a Kafka message value; raises InvalidEvent with a reason.

    A Confluent-framed Avro message must carry one of `schema_ids` when that set is not empty.
    """
    if not data:
        raise InvalidEvent("empty", "the message has no value")
    if fmt == "json":
        return event_from_json(data)
    if data[0] == CONFLUENT_MAGIC:
        if len(data) < 6:
            raise InvalidEvent("unparseable", "Confluent-framed message shorter than its header")
        schema_id = int.from_bytes(data[1:5], "big")
        if schema_ids and schema_id not in schema_ids:
            raise InvalidEvent(
                "unknown_schema_id", f"Confluent schema id {schema_id} is not one of {sorted(schema_ids)}"
            )
        data = data[5:]
    try:
        record = codec("call_event").decode(data)
    except Exception as exc:
        record = _decode_previous_call_event(data, exc)
    return event_from_record(record)


PREVIOUS_CALL_EVENT_SCHEMAS = ("history/call_event.v1",)


def _decode_previous_call_event(data: bytes, error: Exception) -> dict[str, Any]:
    """A plain-Avro CallEvent written with an earlier version of the schema (a producer not yet upgraded).

    Plain Avro carries no writer schema, so the earlier versions kept in `schemas/history/` are tried in turn;
    a record of one of them lacks only fields that have defaults.
    """
    for name in PREVIOUS_CALL_EVENT_SCHEMAS:
        try:
            return codec(name).decode(data)
        except Exception:  # not this version either
            continue
    raise InvalidEvent("unparseable", f"not a CallEvent in Avro binary: {type(error).__name__}: {error}") from None


def check_not_in_future(event: CallEvent, now_ms: int, max_ahead_ms: int) -> CallEvent:
    """Reject an event stamped further ahead of the wall clock than allowed: it would drag stream time along."""
    if event.occurred_at_ms > now_ms + max_ahead_ms:
        raise InvalidEvent(
            "timestamp_in_future",
            f"occurred_at {event.occurred_at_ms} is more than {max_ahead_ms // 1000}s ahead of the clock ({now_ms})",
        )
    return event


def event_from_json(data: bytes | str) -> CallEvent:
    """A validated CallEvent from one JSON object."""
    try:
        record = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise InvalidEvent("unparseable", f"not JSON: {exc}") from None
    return event_from_record(record)


def encode_call_event(event: CallEvent, fmt: InputFormat = "avro") -> bytes:
    """A CallEvent as a Kafka message value."""
    if fmt == "json":
        return orjson.dumps(event.to_record())
    return codec("call_event").encode(event.to_record())


def iter_avro_container(path: Path) -> Iterator[dict[str, Any]]:
    """Records of an Avro object container file, timestamps as epoch ms."""
    with open(path, "rb") as f:
        reader = fastavro.reader(f, return_record_name=False)
        for record in reader:
            ts = record.get("occurred_at") if isinstance(record, dict) else None
            if hasattr(ts, "timestamp"):
                record["occurred_at"] = round(ts.timestamp() * 1000)  # type: ignore[union-attr]
            yield record  # type: ignore[misc]
