"""The bad-input matrix (issue 6) at the decoder and the core: rejected with a precise reason, or accepted."""

from __future__ import annotations

import orjson
import pytest

from streams.domain.events import CallEvent, EventType, InvalidEvent
from streams.domain.processor import Processor, RulesConfig
from streams.serialization import check_not_in_future, codec, decode_call_event

T = 1_767_225_600_000
VALID = {"event_id": "e1", "event_type": "CONTACT_CONNECTED", "occurred_at": T, "agent_id": "a1", "contact_id": "c1"}
AVRO = codec("call_event").encode(CallEvent("e1", EventType.CONTACT_CONNECTED, T, "a1", contact_id="c1").to_record())


def _reason(raw: bytes, fmt: str, schema_ids: frozenset[int] = frozenset()) -> str:
    with pytest.raises(InvalidEvent) as exc:
        decode_call_event(raw, fmt, schema_ids)  # type: ignore[arg-type]
    assert exc.value.detail
    return exc.value.reason


def test_a_confluent_header_with_an_unknown_schema_id_is_rejected_when_ids_are_configured() -> None:
    framed = b"\x00" + (7).to_bytes(4, "big") + AVRO
    assert decode_call_event(framed, "avro").event_id == "e1"  # no ids configured: any id
    assert decode_call_event(framed, "avro", frozenset({7})).event_id == "e1"
    assert _reason(framed, "avro", frozenset({1, 2})) == "unknown_schema_id"


def test_valid_avro_of_another_schema_is_unparseable() -> None:
    interval = {
        "interval_id": "i",
        "agent_id": "a1",
        "contact_id": "c1",
        "channel": "VOICE",
        "team_id": None,
        "queue_id": None,
        "disconnected_at": T,
        "ended_at": T + 1000,
        "acw_seconds": 1.0,
        "end_reason": "AVAILABLE",
        "talk_seconds": None,
        "hold_seconds": None,
        "handle_seconds": None,
        "disposition_code": None,
        "status": None,
    }
    assert _reason(codec("acw_interval").encode(interval), "avro") == "unparseable"


@pytest.mark.parametrize("fmt", ["avro", "json"])
def test_truncated_records_are_unparseable(fmt: str) -> None:
    raw = AVRO if fmt == "avro" else orjson.dumps(VALID)
    assert _reason(raw[: len(raw) // 2], fmt) == "unparseable"


def test_huge_strings_are_rejected_as_too_long_in_both_formats() -> None:
    huge = "x" * 1_000_000
    assert _reason(orjson.dumps({**VALID, "disposition_code": huge}), "json") == "field_too_long"
    record = CallEvent("e1", EventType.CONTACT_CONNECTED, T, "a1", contact_id=huge).to_record()
    assert _reason(codec("call_event").encode(record), "avro") == "field_too_long"


def test_non_utf8_is_unparseable_in_both_formats() -> None:
    assert _reason(orjson.dumps(VALID).replace(b'"a1"', b'"a\xff"'), "json") == "unparseable"
    assert _reason(AVRO.replace(b"a1", b"a\xff"), "avro") == "unparseable"


@pytest.mark.parametrize(
    ("occurred_at", "reason"),
    [
        (T // 1000, "timestamp_out_of_range"),  # seconds instead of milliseconds
        ("1999-12-31T23:59:59+00:00", "timestamp_out_of_range"),
        (4_200_000_000_000, "timestamp_out_of_range"),  # year 2103
        ("", "bad_timestamp"),
    ],
)
def test_timestamps_outside_the_plausible_range_are_rejected(occurred_at: object, reason: str) -> None:
    assert _reason(orjson.dumps({**VALID, "occurred_at": occurred_at}), "json") == reason


def test_events_far_ahead_of_the_clock_are_rejected_before_they_drag_stream_time() -> None:
    event = decode_call_event(orjson.dumps({**VALID, "occurred_at": T + 2 * 86_400_000}), "json")
    with pytest.raises(InvalidEvent) as exc:
        check_not_in_future(event, now_ms=T, max_ahead_ms=86_400_000)
    assert exc.value.reason == "timestamp_in_future"
    assert check_not_in_future(event, now_ms=T + 86_400_000, max_ahead_ms=86_400_000) is event


def test_empty_ids_are_missing_fields() -> None:
    for field in ("event_id", "agent_id", "contact_id"):
        assert _reason(orjson.dumps({**VALID, field: ""}), "json") == "missing_field"


def test_an_available_for_an_unknown_agent_and_a_disconnect_for_an_unseen_contact_follow_the_rules() -> None:
    proc = Processor(RulesConfig(allowed_lateness_ms=0))
    out = []
    for event in [
        CallEvent("1", EventType.AGENT_AVAILABLE, T, "stranger"),  # accepted: nothing open, nothing closes
        CallEvent("2", EventType.CONTACT_DISCONNECTED, T + 1000, "a1", contact_id="never-seen"),
        CallEvent("3", EventType.AGENT_AVAILABLE, T + 61_000, "a1"),
    ]:
        out.extend(proc.offer(event).intervals)
    out.extend(proc.finish())
    [interval] = out
    assert (interval.contact_id, interval.acw_seconds, interval.end_reason.value) == ("never-seen", 60.0, "AVAILABLE")
    assert interval.talk_seconds is None and interval.handle_seconds is None  # its connect was never seen
    assert proc.counts["late"] == proc.counts["duplicates"] == 0
