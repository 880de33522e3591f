"""The compiled Avro codecs agree with fastavro on every schema of ours.

Encoders write fastavro's bytes for any valid record; decoders read fastavro's record from any valid
encoding, and from damaged bytes they either raise (the codec then asks fastavro) or read what fastavro reads.
"""

from __future__ import annotations

import io
import json
import pickle
from typing import Any

import fastavro
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.compiled_avro import compile_decoder, compile_encoder, zigzag
from streams.serialization import _without_logical_types, codec, load_schema, schemas_dir

SCHEMAS = sorted(p.name.removesuffix(".avsc") for p in schemas_dir().iterdir() if p.name.endswith(".avsc"))


def _records(schema: Any) -> st.SearchStrategy[Any]:
    """Valid values of a schema (fields with a default are sometimes left out, as writers may)."""
    if isinstance(schema, list):
        return st.one_of(*(_records(branch) for branch in schema))
    kind = schema if isinstance(schema, str) else schema["type"]
    if isinstance(kind, (list, dict)):
        return _records(kind)
    simple: dict[str, st.SearchStrategy[Any]] = {
        "null": st.none(),
        "boolean": st.booleans(),
        "int": st.integers(-(2**31), 2**31 - 1),
        "long": st.integers(-(2**63), 2**63 - 1),
        "double": st.floats(),
        "float": st.floats(width=32),
        "string": st.text(max_size=20),
        "bytes": st.binary(max_size=20),
    }
    if kind in simple:
        return simple[kind]
    if kind == "enum":
        return st.sampled_from(schema["symbols"])
    if kind == "array":
        return st.lists(_records(schema["items"]), max_size=4)
    if kind == "map":
        return st.dictionaries(st.text(max_size=8), _records(schema["values"]), max_size=4)
    assert kind == "record", kind
    required = {f["name"]: _records(f["type"]) for f in schema["fields"] if "default" not in f}
    optional = {f["name"]: _records(f["type"]) for f in schema["fields"] if "default" in f}
    return st.fixed_dictionaries(required, optional=optional)


def _compiled(name: str) -> tuple[Any, Any, Any]:
    """A schema of ours without logical types, and its compiled encoder and decoder."""
    schema = _without_logical_types(load_schema(name))
    encode, decode = compile_encoder(schema), compile_decoder(schema)
    assert encode is not None and decode is not None
    return schema, encode, decode


def _fastavro(schema: Any, record: Any) -> bytes:
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, fastavro.parse_schema(schema), record)
    return buf.getvalue()


@pytest.mark.parametrize("name", SCHEMAS)
def test_every_schema_of_ours_compiles(name: str) -> None:
    _compiled(name)


def _fastavro_read(schema: Any, data: bytes) -> Any:
    """fastavro's reading of a whole encoding (raising when bytes are left over), as `AvroCodec` does it."""
    buf = io.BytesIO(data)
    value = fastavro.schemaless_reader(buf, fastavro.parse_schema(schema), None)
    if buf.tell() != len(data):
        raise ValueError("bytes left over")
    return value


def _same(a: Any, b: Any) -> bool:
    """Equal, NaNs included (the same bits read from the same bytes)."""
    return pickle.dumps(a) == pickle.dumps(b)


@pytest.mark.parametrize("name", SCHEMAS)
@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_compiled_decoder_reads_fastavros_record(name: str, data: st.DataObject) -> None:
    schema, _, decode = _compiled(name)
    encoded = _fastavro(schema, data.draw(_records(schema)))
    assert _same(decode(encoded), _fastavro_read(schema, encoded))


@pytest.mark.parametrize("name", SCHEMAS)
@settings(max_examples=400, deadline=None)
@given(data=st.data())
def test_compiled_decoder_reads_damaged_bytes_as_fastavro_does_or_raises(name: str, data: st.DataObject) -> None:
    """Bytes flipped, cut off or added: whatever the compiled decoder returns, fastavro returns too."""
    schema, _, decode = _compiled(name)
    encoded = bytearray(_fastavro(schema, data.draw(_records(schema))))
    for _ in range(data.draw(st.integers(1, 3))):
        how = data.draw(st.sampled_from(["flip", "cut", "add"]))
        at = data.draw(st.integers(0, len(encoded)))
        if how == "flip" and at < len(encoded):
            encoded[at] = data.draw(st.integers(0, 255))
        elif how == "cut":
            del encoded[at:]
        else:
            encoded[at:at] = data.draw(st.binary(min_size=1, max_size=3))
    damaged = bytes(encoded)
    try:
        ours = decode(damaged)
    except Exception:
        return  # the codec asks fastavro: its reading or its error, whatever it is
    assert _same(ours, _fastavro_read(schema, damaged))


@pytest.mark.parametrize("name", SCHEMAS)
@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_compiled_encoder_writes_fastavros_bytes(name: str, data: st.DataObject) -> None:
    schema, encode, _ = _compiled(name)
    record = data.draw(_records(schema))
    assert encode(record) == _fastavro(schema, record)


@given(st.integers(-(2**63), 2**63 - 1))
def test_zigzag_is_avros_long(n: int) -> None:
    assert zigzag(n) == _fastavro("long", n)


@pytest.mark.parametrize("edge", [2**34, 2**41, -(2**34), -(2**41)])
@pytest.mark.parametrize("offset", [-2, -1, 0, 1])
def test_zigzag_is_avros_long_around_its_six_byte_path(edge: int, offset: int) -> None:
    assert zigzag(edge + offset) == _fastavro("long", edge + offset)
    assert zigzag(1772438400000 + offset) == _fastavro("long", 1772438400000 + offset)  # an epoch-ms timestamp


def test_unions_of_more_than_null_and_one_type_and_named_references_are_left_to_fastavro() -> None:
    three = {"type": "record", "name": "R", "fields": [{"name": "u", "type": ["null", "int", "string"]}]}
    enum = {"type": "enum", "name": "E", "symbols": ["X"]}
    named = {"type": "record", "name": "R", "fields": [{"name": "a", "type": enum}, {"name": "b", "type": "E"}]}
    assert compile_encoder(three) is None
    assert compile_encoder(named) is None


def test_a_value_the_compiled_encoder_rejects_is_written_or_rejected_by_fastavro() -> None:
    avro = codec("acw_aggregate")
    record = json.loads(
        '{"scope":"TEAM","key":"t1","window_start":0,"window_end":900000,"window_size_seconds":900,"contacts":1,'
        '"contacts_with_acw":1,"acw_sum_seconds":"NaN","acw_avg_seconds":null,"acw_avg_nonzero_seconds":null,'
        '"acw_p50_seconds":null,"acw_p90_seconds":null,"acw_max_seconds":null,"percentiles_exact":true,'
        '"talk_sum_seconds":0.0,"hold_sum_seconds":0.0,"handle_avg_seconds":null,"acw_pct":null,'
        '"agent_acw_seconds":0.0,"timed_out":0,"end_reasons":{},"final":true,"updated_at":900000}'
    )
    assert avro.encode(record) == avro.fastavro_encode(record)  # fastavro reads "NaN" as a double
    bad = {**record, "scope": "NOPE"}
    with pytest.raises(Exception) as by_fastavro:
        avro.fastavro_encode(bad)
    with pytest.raises(type(by_fastavro.value)):
        avro.encode(bad)


@pytest.mark.parametrize(
    "varint",
    [
        b"\x80\x80\x80\x80\x80\x80\x80\x80\x80\x02",  # bit 64 set: past 64 bits (fastavro wraps it)
        b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01",  # the largest 64-bit value
        b"\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x01",  # eleven bytes
    ],
)
def test_a_long_past_64_bits_is_left_to_fastavro(varint: bytes) -> None:
    avro = codec("call_event")
    valid = avro.encode(
        {"event_id": "e", "event_type": "AGENT_AVAILABLE", "occurred_at": 1, "agent_id": "a", "attributes": {}}
    )
    data = valid[:3] + varint + valid[4:]  # occurred_at (the one byte after the id and the type) replaced
    try:
        expected = avro.fastavro_decode(data)
    except Exception as exc:
        with pytest.raises(type(exc)):
            avro.decode(data)
    else:
        assert _same(avro.decode(data), expected)
