"""Checkpoint entries as JSON: the bytes orjson writes, built from the core's changed entries."""

from __future__ import annotations

import orjson

from streams.domain.partition import PartitionCore
from streams.settings import Settings
from streams.traffic import TrafficShape, generate
from streams.worker.state_entries import changed_entries, entry_json


def test_entry_json_is_orjsons_output_in_a_buffer_of_its_own() -> None:
    value = {"s": {"contacts": {"c-1": [1, None, "VOICE"]}}, "w": [[1, 2, 3]]}
    written = orjson.dumps(value)
    got = entry_json(value)
    assert got == written
    assert type(got) is bytes and got is not written


def test_changed_entries_are_the_taken_entries_as_json_and_forget_the_changes() -> None:
    settings = Settings.from_env({})
    rules, config = settings.rules(), settings.aggregation()
    events = generate(TrafficShape(agents=6, contacts_per_agent=5, stagger_ms=3_600_000), seed=7)
    a, b = PartitionCore.new(rules, config), PartitionCore.new(rules, config)
    for event in events:
        a.offer(event)
        b.offer(event)
    expected = {name: None if v is None else orjson.dumps(v) for name, v in a.take_dirty().items()}
    got = changed_entries(b)
    assert got == expected and len(got) > 6
    assert not b.has_dirty() and changed_entries(b) == {}
