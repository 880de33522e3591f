"""Decoding and validation of input records, and fastavro checked byte for byte against the reference `avro`."""

from __future__ import annotations

import io
import json
import struct

import avro.io
import avro.schema
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.domain.events import CallEvent, Channel, EventType, InvalidEvent
from streams.domain.intervals import AcwInterval, EndReason
from streams.serialization import (
    _without_logical_types,
    codec,
    decode_call_event,
    encode_call_event,
    event_from_json,
    load_schema,
)

T = 1_767_225_600_000
VALID = {"event_id": "e1", "event_type": "CONTACT_CONNECTED", "occurred_at": T, "agent_id": "a1", "contact_id": "c1"}


def reference_encode(schema_name: str, record: dict) -> bytes:
    schema = avro.schema.parse(json.dumps(_without_logical_types(load_schema(schema_name))))
    buf = io.BytesIO()
    avro.io.DatumWriter(schema).write(record, avro.io.BinaryEncoder(buf))
    return buf.getvalue()


texts = st.text(max_size=20)
events = st.builds(
    CallEvent,
    event_id=texts.filter(bool),
    event_type=st.sampled_from(list(EventType)),
    occurred_at_ms=st.integers(946_684_800_000, 4_102_444_799_999),
    agent_id=texts.filter(bool),
    contact_id=st.none() | texts,
    team_id=st.none() | texts,
    # Named, not inferred from the annotations: the mypyc-compiled core keeps no resolvable ones.
    queue_id=st.none() | texts,
    status=st.none() | texts,
    disposition_code=st.none() | texts,
    source=st.none() | texts,
    channel=st.none() | st.sampled_from(list(Channel)),
    attributes=st.dictionaries(texts, texts, max_size=3),
    talk_ms=st.none() | st.integers(0, 10**9),
    hold_ms=st.none() | st.integers(0, 10**9),
    restated=st.booleans(),
)
# Fields that `to_record` leaves out while they hold their schema defaults.
PLATFORM_DEFAULTS = {"talk_ms": None, "hold_ms": None, "restated": False}


@settings(max_examples=200, deadline=None)
@given(events)
def test_fastavro_call_event_is_byte_identical_to_reference_avro(event: CallEvent) -> None:
    record = {**PLATFORM_DEFAULTS, **event.to_record()}
    assert encode_call_event(event) == reference_encode("call_event", record)
    assert codec("call_event").decode(encode_call_event(event)) == record


def test_fastavro_interval_is_byte_identical_to_reference_avro() -> None:
    iv = AcwInterval(
        "id", "a1", "c1", Channel.CHAT, "t", None, T, T + 5000, 5.0, EndReason.AVAILABLE, None, None, None, "X", None
    )
    record = iv.to_record()
    assert codec("acw_interval").encode(record) == reference_encode("acw_interval", record)
    assert AcwInterval.from_record(codec("acw_interval").decode(codec("acw_interval").encode(record))) == iv


def test_avro_with_and_without_confluent_header_decode_alike() -> None:
    event = event_from_json(orjson.dumps(VALID))
    plain = encode_call_event(event)
    framed = b"\x00" + struct.pack(">I", 42) + plain
    assert decode_call_event(plain, "avro") == decode_call_event(framed, "avro") == event


def test_iso_timestamp_with_offset_equals_epoch_ms() -> None:
    iso = event_from_json(orjson.dumps({**VALID, "occurred_at": "2026-01-01T01:00:00+01:00"}))
    assert iso.occurred_at_ms == T


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b'{"event_id": "x"', "unparseable"),
        (b"[1, 2]", "not_an_object"),
        (orjson.dumps({**VALID, "agent_id": None}), "missing_field"),
        (orjson.dumps({**VALID, "agent_id": ""}), "missing_field"),
        (orjson.dumps({k: v for k, v in VALID.items() if k != "occurred_at"}), "missing_field"),
        (orjson.dumps({**VALID, "contact_id": None}), "missing_field"),
        (orjson.dumps({**VALID, "event_id": 7}), "wrong_type"),
        (orjson.dumps({**VALID, "occurred_at": True}), "wrong_type"),
        (orjson.dumps({**VALID, "attributes": {"a": 1}}), "wrong_type"),
        (orjson.dumps({**VALID, "event_type": "TELEPORTED"}), "unknown_enum"),
        (orjson.dumps({**VALID, "channel": "FAX"}), "unknown_enum"),
        (orjson.dumps({**VALID, "occurred_at": T // 1000}), "timestamp_out_of_range"),
        (orjson.dumps({**VALID, "occurred_at": "2026-01-01T00:00:00"}), "bad_timestamp"),
        (orjson.dumps({**VALID, "occurred_at": "soon"}), "bad_timestamp"),
        (orjson.dumps({**VALID, "agent_id": "a" * 300}), "field_too_long"),
    ],
)
def test_invalid_json_is_rejected_with_a_precise_reason(raw: bytes, reason: str) -> None:
    with pytest.raises(InvalidEvent) as exc:
        decode_call_event(raw, "json")
    assert exc.value.reason == reason


@pytest.mark.parametrize("raw", [b"", b"\x00\x01", b"\x02a\xff\xff\xff\xff\xff\xff", b"garbage bytes here"])
def test_bad_avro_is_unparseable_or_empty(raw: bytes) -> None:
    with pytest.raises(InvalidEvent) as exc:
        decode_call_event(raw, "avro")
    assert exc.value.reason in ("unparseable", "empty")


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200), st.sampled_from(["avro", "json"]))
def test_decoder_never_raises_anything_but_invalid_event(raw: bytes, fmt: str) -> None:
    try:
        event = decode_call_event(raw, fmt)  # type: ignore[arg-type]
    except InvalidEvent as exc:
        assert exc.reason and exc.detail
    else:
        assert event.event_id and event.agent_id


def test_plain_avro_of_the_previous_schema_still_decodes() -> None:
    """A producer not yet on the schema with talk_ms, hold_ms and restated sends v1 records: same event."""
    event = CallEvent("e1", EventType.CONTACT_DISCONNECTED, T, "a1", contact_id="c1", channel=Channel.CHAT)
    v1 = codec("history/call_event.v1").encode(event.to_record())
    assert v1 != encode_call_event(event)
    assert decode_call_event(v1, "avro") == event
    with pytest.raises(InvalidEvent) as err:
        decode_call_event(v1[:-3], "avro")
    assert err.value.reason == "unparseable"


def test_platform_fields_round_trip_through_avro_and_json() -> None:
    event = CallEvent("e1", EventType.CONTACT_DISCONNECTED, T, "a1", contact_id="c1", talk_ms=50_000, hold_ms=7_000)
    restated = event._replace(event_id="e2", talk_ms=None, hold_ms=None, restated=True)
    for e in (event, restated):
        assert decode_call_event(encode_call_event(e), "avro") == e
        assert decode_call_event(encode_call_event(e, "json"), "json") == e
    with pytest.raises(InvalidEvent) as err:
        event_from_json(orjson.dumps({**VALID, "talk_ms": -1}))
    assert err.value.reason == "wrong_type"
