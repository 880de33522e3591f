"""The compiled Avro encoders write the bytes fastavro writes, for every schema of ours and any valid record."""

from __future__ import annotations

import io
import json
from typing import Any

import fastavro
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.avro_encoder import compile_encoder, zigzag
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


def _fastavro(schema: Any, record: Any) -> bytes:
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, fastavro.parse_schema(schema), record)
    return buf.getvalue()


@pytest.mark.parametrize("name", SCHEMAS)
def test_every_schema_of_ours_compiles(name: str) -> None:
    assert compile_encoder(_without_logical_types(load_schema(name))) is not None


@pytest.mark.parametrize("name", SCHEMAS)
@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_compiled_encoder_writes_fastavros_bytes(name: str, data: st.DataObject) -> None:
    schema = _without_logical_types(load_schema(name))
    encode = compile_encoder(schema)
    assert encode is not None
    record = data.draw(_records(schema))
    assert encode(record) == _fastavro(schema, record)


@given(st.integers(-(2**63), 2**63 - 1))
def test_zigzag_is_avros_long(n: int) -> None:
    assert zigzag(n) == _fastavro("long", n)


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
