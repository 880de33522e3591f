"""Bytes to records and back: JSON and Avro (plain or Confluent-framed), driven by the `schemas/` files."""

from __future__ import annotations

import copy
import io
import json
import os
from collections.abc import Callable, Iterator
from functools import cache
from importlib import resources
from importlib.abc import Traversable
from pathlib import Path
from typing import IO, Annotated, Any, Literal

import fastavro
import msgspec
import orjson
from fastavro.read import SchemaResolutionError

from streams.compiled_avro import compile_decoder, compile_encoder
from streams.domain.events import (
    CHANNELS_BY_NAME,
    CONTACT_EVENTS,
    EVENT_TYPES_BY_NAME,
    MAX_ID_LENGTH,
    MAX_TEXT_LENGTH,
    MAX_TIMESTAMP_MS,
    MIN_TIMESTAMP_MS,
    CallEvent,
    InvalidEvent,
    event_from_record,
)

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
    """Schemaless Avro binary for one schema, with timestamps as epoch-ms ints (fastavro).

    Records are written and read by an encoder and a decoder compiled from the schema
    (`streams.compiled_avro`: fastavro's bytes and records in about half the time); fastavro handles whatever
    those do not take, and so gives its own errors.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        plain = _without_logical_types(load_schema(name))
        self._compiled_encode = compile_encoder(plain)
        self._compiled_decode = compile_decoder(plain)
        self.schema = fastavro.parse_schema(plain)

    def encode(self, record: dict[str, Any]) -> bytes:
        """Avro binary of one record."""
        if self._compiled_encode is not None:
            try:
                return self._compiled_encode(record)
            except Exception:  # a value the compiled encoder does not take: fastavro's result or error
                pass
        return self.fastavro_encode(record)

    def fastavro_encode(self, record: dict[str, Any]) -> bytes:
        """Avro binary of one record, written by fastavro."""
        buf = io.BytesIO()
        fastavro.schemaless_writer(buf, self.schema, record)
        return buf.getvalue()

    def decode(self, data: bytes) -> dict[str, Any]:
        """One record from Avro binary; raises ValueError when bytes are left over or missing."""
        if self._compiled_decode is not None:
            try:
                return self._compiled_decode(data)  # type: ignore[no-any-return]
            except Exception:  # not a plain, complete encoding: fastavro's reading or error
                pass
        return self.fastavro_decode(data)

    def fastavro_decode(self, data: bytes) -> dict[str, Any]:
        """One record from Avro binary, read by fastavro; raises ValueError when bytes are left over or missing."""
        buf = io.BytesIO(data)
        record = fastavro.schemaless_reader(buf, self.schema, None)
        if buf.tell() != len(data):
            raise ValueError(f"{len(data) - buf.tell()} bytes left after the record")
        return record  # type: ignore[return-value]


@cache
def codec(name: str) -> AvroCodec:
    """The shared codec of one schema."""
    return AvroCodec(name)


class FramedCodec:
    """Confluent wire format for one schema: magic byte 0, the registry's 4-byte schema id, the Avro body."""

    def __init__(self, name: str, schema_id: int) -> None:
        self.name = name
        self.schema_id = schema_id
        self._prefix = bytes([CONFLUENT_MAGIC]) + schema_id.to_bytes(4, "big")
        self._encode = codec(name).encode

    def encode(self, record: dict[str, Any]) -> bytes:
        """The framed Avro binary of one record."""
        return self._prefix + self._encode(record)


def output_decoder(name: str, framed: bool) -> Callable[[bytes], dict[str, Any]]:
    """A reader of our own output records: plain Avro, or Confluent-framed (a registry is configured).

    Which of the two must be known: a plain AcwAggregate of scope AGENT starts with the magic byte too.
    """
    decode = codec(name).decode
    return (lambda data: decode(data[5:])) if framed else decode


def confluent_schema_id(data: bytes | None) -> int | None:
    """The schema id of a Confluent-framed message, or None when it is not framed."""
    if data and len(data) >= 5 and data[0] == CONFLUENT_MAGIC:
        return int.from_bytes(data[1:5], "big")
    return None


class WriterSchemas:
    """Readers of Confluent-framed records by writer schema id, each resolving its writer's records to our schema.

    The shell fills it from the registry (`add`, `reject`) before it decodes; decoding stays synchronous.
    """

    def __init__(self, reader: str = "call_event") -> None:
        self.reader_name = reader
        self._reader_text = json.dumps(load_schema(reader), sort_keys=True)
        self._reader = codec(reader).schema
        self._entries: dict[int, Any] = {}

    def __contains__(self, schema_id: int) -> bool:
        return schema_id in self._entries

    def add(self, schema_id: int, writer_text: str) -> None:
        """Learn one writer schema; one our reader cannot resolve is remembered as `incompatible_schema`."""
        try:
            writer = json.loads(writer_text)
        except ValueError as exc:
            self.reject(schema_id, InvalidEvent("incompatible_schema", f"schema id {schema_id} is not JSON: {exc}"))
            return
        if json.dumps(writer, sort_keys=True) == self._reader_text:
            self._entries[schema_id] = None  # our own schema: the fast path, no resolution
            return
        problem = _resolution_problem(load_schema(self.reader_name), writer)
        if problem:
            self.reject(schema_id, InvalidEvent("incompatible_schema", f"schema id {schema_id}: {problem}"))
            return
        self._entries[schema_id] = fastavro.parse_schema(_without_logical_types(writer))

    def reject(self, schema_id: int, error: InvalidEvent) -> None:
        """Remember that records of this id cannot be read, and why."""
        self._entries[schema_id] = error

    def decode(self, schema_id: int, body: bytes) -> dict[str, Any]:
        """One record of this writer schema, resolved to ours; raises InvalidEvent."""
        entry = self._entries.get(schema_id, _MISSING)
        if entry is _MISSING:
            raise InvalidEvent("unknown_schema_id", f"schema id {schema_id} was not looked up in the registry")
        if isinstance(entry, InvalidEvent):
            raise InvalidEvent(entry.reason, entry.detail)
        buf = io.BytesIO(body)
        try:
            if entry is None:
                record = fastavro.schemaless_reader(buf, self._reader, None)
            else:
                record = fastavro.schemaless_reader(buf, entry, self._reader)
        except SchemaResolutionError as exc:
            raise InvalidEvent("incompatible_schema", f"schema id {schema_id}: {exc}") from None
        except Exception as exc:
            detail = f"not Avro of schema id {schema_id}: {type(exc).__name__}: {exc}"
            raise InvalidEvent("unparseable", detail) from None
        if buf.tell() != len(body):
            raise InvalidEvent("unparseable", f"{len(body) - buf.tell()} bytes left after the record")
        return record  # type: ignore[return-value]


_MISSING = object()


def _resolution_problem(reader: dict[str, Any], writer: dict[str, Any]) -> str | None:
    """Why records of `writer` cannot be read with `reader` (Avro's resolution rules), or None."""
    from avro.compatibility import ReaderWriterCompatibilityChecker, SchemaCompatibilityType
    from avro.errors import SchemaParseException
    from avro.schema import parse

    try:
        writer_schema = parse(json.dumps(writer))
    except (SchemaParseException, ValueError, TypeError) as exc:
        return f"not a valid Avro schema: {exc}"
    result = ReaderWriterCompatibilityChecker().get_compatibility(parse(json.dumps(reader)), writer_schema)
    if result.compatibility is SchemaCompatibilityType.compatible:
        return None
    where = ", ".join(sorted(result.locations))
    return f"our reader cannot resolve this writer schema ({'; '.join(sorted(result.messages))} at {where})"


def decode_call_event(
    data: bytes | None,
    fmt: InputFormat,
    schema_ids: frozenset[int] = frozenset(),
    writers: WriterSchemas | None = None,
) -> CallEvent:
    """A validated CallEvent from a Kafka message value; raises InvalidEvent with a reason.

    With `writers` (a Schema Registry is configured), a Confluent-framed message is read with its writer's
    schema and resolved to ours. Without, its body is read with our schema (or an earlier one we keep), and
    it must carry one of `schema_ids` when that set is not empty.
    """
    if not data:
        raise InvalidEvent("empty", "the message has no value")
    if fmt == "json":
        return event_from_json(data)
    if data[0] == CONFLUENT_MAGIC:
        if len(data) < 6:
            raise InvalidEvent("unparseable", "Confluent-framed message shorter than its header")
        schema_id = int.from_bytes(data[1:5], "big")
        if writers is not None:
            return event_from_record(writers.decode(schema_id, data[5:]))
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


_Id = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_ID_LENGTH)]
_OptionalId = Annotated[str, msgspec.Meta(max_length=MAX_ID_LENGTH)] | None
_OptionalText = Annotated[str, msgspec.Meta(max_length=MAX_TEXT_LENGTH)] | None
_OptionalMs = Annotated[int, msgspec.Meta(ge=0)] | None


class _JsonEvent(msgspec.Struct, gc=False):
    """A CallEvent record as JSON carries it, for msgspec's typed decoding; fields as in call_event.avsc.

    The length, range and sign limits are the validator's, checked by msgspec while it decodes.
    """

    event_id: _Id
    event_type: str
    occurred_at: Annotated[int, msgspec.Meta(ge=MIN_TIMESTAMP_MS, lt=MAX_TIMESTAMP_MS)]  # ISO-8601: the validator
    agent_id: _Id
    contact_id: _OptionalId = None
    team_id: _OptionalId = None
    queue_id: _OptionalId = None
    status: _OptionalText = None
    disposition_code: _OptionalText = None
    source: _OptionalText = None
    channel: str | None = None
    attributes: dict[str, str] | None = None
    talk_ms: _OptionalMs = None
    hold_ms: _OptionalMs = None
    restated: bool | None = None


_decode_json_event = msgspec.json.Decoder(_JsonEvent).decode
_NO_ATTRIBUTES = CallEvent._field_defaults["attributes"]


def _checked_json_event(data: bytes | str) -> CallEvent | None:
    """The CallEvent of a record that passes every check `event_from_record` makes, else None (it then says why)."""
    try:
        w = _decode_json_event(data)
    except (msgspec.MsgspecError, ValueError):  # ValueError: bytes that are not UTF-8
        return None
    event_type = EVENT_TYPES_BY_NAME.get(w.event_type)
    if event_type is None:
        return None
    channel = None
    if w.channel is not None:
        channel = CHANNELS_BY_NAME.get(w.channel)
        if channel is None:
            return None
    if event_type in CONTACT_EVENTS and not w.contact_id:
        return None
    # Every field given: built without NamedTuple's argument handling, a Python function (this is per event).
    return tuple.__new__(CallEvent, (  # type: ignore[return-value]
        w.event_id, event_type, w.occurred_at, w.agent_id, w.contact_id, w.team_id, w.queue_id,
        w.status, w.disposition_code, w.source,
        channel, w.attributes or _NO_ATTRIBUTES, w.talk_ms, w.hold_ms, bool(w.restated),
    ))  # fmt: skip


def event_from_json(data: bytes | str) -> CallEvent:
    """A validated CallEvent from one JSON object: msgspec's typed decoding, or the validator for its reason."""
    event = _checked_json_event(data)
    if event is not None:
        return event
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


class ContainerSchemaError(ValueError):
    """An Avro container file whose writer schema our CallEvent reader cannot resolve."""


def iter_avro_container(path: Path, opened: list[IO[bytes]] | None = None) -> Iterator[dict[str, Any]]:
    """Records of an Avro object container file of CallEvents, resolved from the file's writer schema to ours.

    A file written with a newer compatible schema (an added optional field, an added enum symbol) reads as
    today's records; one whose schema cannot be resolved raises ContainerSchemaError naming the file.
    """
    with open(path, "rb") as f:
        writer = fastavro.reader(f).writer_schema
    problem = _resolution_problem(load_schema("call_event"), writer) if writer is not None else None
    if problem:
        raise ContainerSchemaError(f"{path}: {problem}")
    with open(path, "rb") as f:
        if opened is not None:
            opened.append(f)  # the caller reads how far it is
        reader = fastavro.reader(f, reader_schema=codec("call_event").schema, return_record_name=False)
        for record in reader:
            ts = record.get("occurred_at") if isinstance(record, dict) else None
            if hasattr(ts, "timestamp"):
                record["occurred_at"] = round(ts.timestamp() * 1000)  # type: ignore[union-attr]
            yield record  # type: ignore[misc]
