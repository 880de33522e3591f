"""JSON CallEvents decoded by msgspec equal what the validator makes of them, and rejects keep its reasons."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.domain.events import MAX_ID_LENGTH, MAX_TEXT_LENGTH, InvalidEvent, event_from_record
from streams.serialization import _checked_json_event, _JsonEvent, event_from_json, load_schema

T = 1_767_225_600_000

# For each field: values the validator accepts and values it rejects, of every JSON type and at every limit.
_ANY_BAD = st.one_of(st.none(), st.booleans(), st.floats(allow_nan=False), st.lists(st.integers(), max_size=2))
_ID = st.one_of(
    st.text(min_size=1, max_size=8),
    st.just(""),
    st.just("x" * MAX_ID_LENGTH),
    st.just("x" * (MAX_ID_LENGTH + 1)),
    st.integers(),
    _ANY_BAD,
)
_TEXT = st.one_of(st.text(max_size=8), st.just("y" * MAX_TEXT_LENGTH), st.just("y" * (MAX_TEXT_LENGTH + 1)), _ANY_BAD)
_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "event_id": _ID,
    "event_type": st.one_of(
        st.sampled_from(["CONTACT_CONNECTED", "CONTACT_DISCONNECTED", "AGENT_AVAILABLE", "UNKNOWN", "nope", ""]),
        st.integers(),
        _ANY_BAD,
    ),
    "occurred_at": st.one_of(
        st.integers(T - 10**6, T + 10**6),
        st.integers(),
        st.sampled_from([946_684_800_000 - 1, 946_684_800_000, 4_102_444_800_000 - 1, 4_102_444_800_000, 2**64]),
        st.sampled_from(["2026-01-01T00:00:00Z", "2026-01-01T00:00:00", "soon", float(T)]),
        _ANY_BAD,
    ),
    "agent_id": _ID,
    "contact_id": _ID,
    "team_id": _ID,
    "queue_id": _ID,
    "status": _TEXT,
    "disposition_code": _TEXT,
    "source": _TEXT,
    "channel": st.one_of(st.sampled_from(["VOICE", "CHAT", "EMAIL", "TASK", "voice", ""]), _ANY_BAD),
    "attributes": st.one_of(
        st.dictionaries(st.text(max_size=4), st.text(max_size=4), max_size=3),
        st.dictionaries(st.text(max_size=4), st.integers(), min_size=1, max_size=2),
        _ANY_BAD,
        st.just(""),
    ),
    "talk_ms": st.one_of(st.sampled_from([-1, 0]), st.integers(-5, 10**7), _ANY_BAD),
    "hold_ms": st.one_of(st.sampled_from([-1, 0]), st.integers(-5, 10**7), _ANY_BAD),
    "restated": st.one_of(st.booleans(), st.none(), st.sampled_from([0, 1, "yes"])),
}
_VALID = {"event_id": "e1", "event_type": "CONTACT_CONNECTED", "occurred_at": T, "agent_id": "a1", "contact_id": "c1"}


@st.composite
def _records(draw: st.DrawFn) -> dict[str, Any]:
    """A mostly valid record with a few fields replaced, dropped or added."""
    record: dict[str, Any] = dict(_VALID)
    for name in draw(st.lists(st.sampled_from(sorted(_FIELDS)), max_size=4, unique=True)):
        if draw(st.booleans()) or name not in record:
            record[name] = draw(_FIELDS[name])
        else:
            del record[name]
    if draw(st.booleans()):
        record["extra"] = draw(st.one_of(st.text(max_size=4), st.integers()))
    return record


def _outcome(decode: Any, data: bytes) -> Any:
    try:
        return decode(data)
    except InvalidEvent as exc:
        return ("rejected", exc.reason, exc.detail)


def _validator(data: bytes) -> Any:
    """JSON decoding as it was before msgspec: orjson, then the validator."""
    try:
        record = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise InvalidEvent("unparseable", f"not JSON: {exc}") from None
    return event_from_record(record)


@settings(max_examples=600, deadline=None)
@given(record=_records())
def test_msgspec_decoding_gives_what_the_validator_gives(record: dict[str, Any]) -> None:
    data = json.dumps(record).encode()  # json: big ints and floats as written, unlike orjson
    assert _outcome(event_from_json, data) == _outcome(_validator, data)
    fast = _checked_json_event(data)
    if fast is not None:  # whatever msgspec accepts the validator accepts, as the same event
        assert fast == _validator(data)


_EDGES = [
    {"occurred_at": 946_684_800_000 - 1},
    {"occurred_at": 946_684_800_000},
    {"occurred_at": 4_102_444_800_000 - 1},
    {"occurred_at": 4_102_444_800_000},
    {"occurred_at": 2**63},
    {"occurred_at": "2026-01-01T00:00:00+00:00"},
    {"talk_ms": -1},
    {"hold_ms": -1, "talk_ms": 0},
    {"talk_ms": 0, "hold_ms": 0, "restated": True},
    {"restated": 1},
    {"restated": "yes", "talk_ms": 5},
    {"contact_id": ""},
    {"contact_id": None, "event_type": "AGENT_AVAILABLE"},
    {"contact_id": "", "event_type": "AGENT_AVAILABLE"},
    {"event_id": "x" * MAX_ID_LENGTH},
    {"event_id": "x" * (MAX_ID_LENGTH + 1)},
    {"queue_id": "q" * (MAX_ID_LENGTH + 1)},
    {"source": "s" * MAX_TEXT_LENGTH},
    {"status": "s" * (MAX_TEXT_LENGTH + 1)},
    {"channel": "voice"},
    {"channel": None},
    {"attributes": {}},
    {"attributes": []},
    {"attributes": {"k": 1}},
    {"event_type": "UNKNOWN"},
]


@pytest.mark.parametrize("change", _EDGES, ids=[str(sorted(c))[:60] for c in _EDGES])
def test_at_every_limit_both_paths_agree(change: dict[str, Any]) -> None:
    data = json.dumps({**_VALID, **change}).encode()
    assert _outcome(event_from_json, data) == _outcome(_validator, data)


_VALID_BYTES = json.dumps(_VALID).encode()


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\xff",
        b"null",
        b"[]",
        b"{}",
        b'"text"',
        _VALID_BYTES.replace(b'"a1"', b'"a\xff"'),
        _VALID_BYTES + b" trailing",
        _VALID_BYTES + b"\n",
        _VALID_BYTES.replace(b'"a1"', b'"\\u00e9"'),
        b"\xef\xbb\xbf" + _VALID_BYTES,
    ],
)
def test_bytes_that_are_not_one_json_object_get_the_same_answer(data: bytes) -> None:
    assert _outcome(event_from_json, data) == _outcome(_validator, data)


@given(record=_records(), which=st.integers(0, 1))
def test_a_repeated_key_means_its_last_value_on_both_paths(record: dict[str, Any], which: int) -> None:
    first, second = ("e-first", "e-second") if which else ("", "e-second")
    body = json.dumps(record)[1:]
    data = f'{{"event_id": "{first}", {body[:-1]}, "event_id": "{second}"}}'.encode()
    assert _outcome(event_from_json, data) == _outcome(_validator, data)


def test_the_json_struct_has_the_schema_fields_in_order() -> None:
    assert list(_JsonEvent.__struct_fields__) == [f["name"] for f in load_schema("call_event")["fields"]]
