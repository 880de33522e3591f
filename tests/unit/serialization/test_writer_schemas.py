"""Records of a newer or foreign writer schema: resolved to ours when Avro allows it, dead-lettered when not."""

from __future__ import annotations

import json
from pathlib import Path

import fastavro
import orjson
import pytest

from streams.domain.events import CallEvent, Channel, EventType, InvalidEvent
from streams.domain.processor import RulesConfig
from streams.replay import replay
from streams.serialization import (
    ContainerSchemaError,
    FramedCodec,
    WriterSchemas,
    codec,
    confluent_schema_id,
    decode_call_event,
    load_schema,
)
from streams.traffic import TrafficShape, generate
from tests.unit.serialization.evolution import (
    NEW_CHANNEL,
    NEW_EVENT_TYPE,
    encode_newer,
    newer_call_event_schema,
    newer_record,
)

T = 1_767_225_600_000
EVENT = CallEvent("e1", EventType.CONTACT_OFFERED, T, "a1", contact_id="c1", channel=Channel.CHAT)


def framed(schema_id: int, body: bytes) -> bytes:
    return b"\x00" + schema_id.to_bytes(4, "big") + body


def writers_with_newer(schema_id: int = 7) -> WriterSchemas:
    writers = WriterSchemas()
    writers.add(schema_id, json.dumps(newer_call_event_schema()))
    return writers


def test_a_newer_writers_record_reads_as_the_same_event_in_todays_schema() -> None:
    data = framed(7, encode_newer(newer_record(EVENT)))
    assert decode_call_event(data, "avro", writers=writers_with_newer()) == EVENT


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"event_type": NEW_EVENT_TYPE}, EVENT._replace(event_type=EventType.UNKNOWN)),
        ({"channel": NEW_CHANNEL}, EVENT._replace(channel=Channel.TASK)),
    ],
)
def test_symbols_we_do_not_know_read_as_the_enum_defaults(change: dict[str, str], expected: CallEvent) -> None:
    data = framed(7, encode_newer(newer_record(EVENT, **change)))
    assert decode_call_event(data, "avro", writers=writers_with_newer()) == expected


def test_our_own_schema_takes_the_same_path_as_without_a_registry() -> None:
    writers = WriterSchemas()
    writers.add(3, json.dumps(load_schema("call_event")))
    data = FramedCodec("call_event", 3).encode(EVENT.to_record())
    assert confluent_schema_id(data) == 3 and confluent_schema_id(data[5:]) is None
    assert decode_call_event(data, "avro", writers=writers) == EVENT == decode_call_event(data, "avro")


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda s: s["fields"][0].update(type="long"), "incompatible_schema"),  # event_id: long vs our string
        (lambda s: s.update(name="SomethingElse"), "incompatible_schema"),
        (lambda s: s["fields"].append({"name": "x", "type": "nonsense"}), "incompatible_schema"),
    ],
)
def test_a_writer_schema_we_cannot_resolve_is_a_dead_letter_reason(mutate: object, reason: str) -> None:
    schema = newer_call_event_schema()
    mutate(schema)  # type: ignore[operator]
    writers = WriterSchemas()
    writers.add(9, json.dumps(schema))
    with pytest.raises(InvalidEvent) as info:
        decode_call_event(framed(9, encode_newer(newer_record(EVENT))), "avro", writers=writers)
    assert info.value.reason == reason and "schema id 9" in info.value.detail


def test_an_id_not_looked_up_or_unknown_to_the_registry_is_unknown_schema_id() -> None:
    writers = WriterSchemas()
    with pytest.raises(InvalidEvent, match="unknown_schema_id"):
        decode_call_event(framed(5, codec("call_event").encode(EVENT.to_record())), "avro", writers=writers)
    writers.reject(5, InvalidEvent("unknown_schema_id", "schema id 5 is not in the registry"))
    with pytest.raises(InvalidEvent, match="not in the registry"):
        decode_call_event(framed(5, b"\x02"), "avro", writers=writers)


def _container(path: Path, schema: dict[str, object], records: list[dict[str, object]]) -> Path:
    with open(path, "wb") as f:
        fastavro.writer(f, fastavro.parse_schema(schema), records)
    return path


def test_replay_of_a_container_from_a_newer_writer_gives_exactly_todays_intervals(tmp_path: Path) -> None:
    events = generate(TrafficShape(agents=5, contacts_per_agent=6), seed=11)
    today = _container(tmp_path / "today.avro", load_schema("call_event"), [e.to_record() for e in events])
    newer = _container(tmp_path / "newer.avro", newer_call_event_schema(), [newer_record(e) for e in events])
    rules = RulesConfig()
    replay([today], tmp_path / "a", rules)
    replay([newer], tmp_path / "b", rules)
    a = (tmp_path / "a" / "intervals.jsonl").read_bytes()
    assert a and a == (tmp_path / "b" / "intervals.jsonl").read_bytes()
    assert len(a.splitlines()) == orjson.loads((tmp_path / "a" / "summary.json").read_bytes())["intervals_total"] > 0


def test_replay_of_a_container_of_another_schema_names_the_file(tmp_path: Path) -> None:
    schema = {"type": "record", "name": "Other", "fields": [{"name": "n", "type": "long"}]}
    path = _container(tmp_path / "other.avro", schema, [{"n": 1}])
    with pytest.raises(ContainerSchemaError, match=r"other\.avro"):
        replay([path], tmp_path / "out", RulesConfig())
