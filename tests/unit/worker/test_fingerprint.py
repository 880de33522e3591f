"""The checkpoint fingerprint: kept up to date write by write, it equals the one computed from the entries left."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.worker.fingerprint import Fingerprint

NAMES = st.sampled_from([f"a|agent-{i}" for i in range(6)] + [f"p|{i}" for i in range(3)])
VALUES = st.none() | st.fixed_dictionaries({"s": st.integers(-3, 3), "w": st.lists(st.integers(0, 3), max_size=2)})


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.tuples(NAMES, VALUES), max_size=8), max_size=6), st.lists(st.booleans(), max_size=6))
def test_checkpoints_written_or_lost_keep_the_fingerprint_of_the_entries_written(
    checkpoints: list[list[tuple[str, Any]]], lost: list[bool]
) -> None:
    """A lost checkpoint's changes are not committed; its entries are written again with the next one."""
    fp, table, pending = Fingerprint(), {}, {}
    for i, entries in enumerate(checkpoints):
        pending.update(entries)
        change = fp.after((name, None if v is None else orjson.dumps(v)) for name, v in pending.items())
        if i < len(lost) and lost[i]:
            continue
        fp.commit(change)
        table.update(pending)
        pending = {}
        restored = Fingerprint.of(table)
        assert change.meta() == {"n": len(restored.hashes), "fp": f"{restored.digest:016x}"}
        assert restored.matches(change.meta())


def test_a_store_missing_an_entry_or_holding_an_older_value_does_not_match() -> None:
    table = {"a|x": {"s": 1}, "a|y": {"s": 2}, "p|1": {"c": 3}}
    meta = Fingerprint().after((k, orjson.dumps(v)) for k, v in table.items()).meta()
    assert Fingerprint.of(table).matches(meta)
    assert not Fingerprint.of({k: v for k, v in table.items() if k != "a|y"}).matches(meta)
    assert not Fingerprint.of({**table, "a|y": {"s": 1}}).matches(meta)
    assert not Fingerprint.of({**table, "a|z": {"s": 0}}).matches(meta)


def test_a_checkpoint_written_before_fingerprints_matches_any_store() -> None:
    assert Fingerprint.of({"a|x": {"s": 1}}).matches({"core": {}, "offsets": {}})
