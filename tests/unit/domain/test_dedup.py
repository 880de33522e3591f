"""SeenEvents remembers exactly what an id -> time dict pruned the same way would, in the same order; its snapshots."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.domain.dedup import MIN_PRUNE_AT, SeenEvents, json_default

# (event id, event time, cutoff) per add; a cutoff of None prunes explicitly instead of adding.
_steps = st.lists(
    st.tuples(st.integers(0, 150).map(str), st.integers(0, 10_000), st.integers(0, 10_000) | st.none()),
    max_size=400,
)


@given(_steps)
def test_it_keeps_what_a_pruned_dict_keeps(steps: list[tuple[str, int, int | None]]) -> None:
    seen, model, prune_at = SeenEvents(), {}, MIN_PRUNE_AT
    for event_id, t, cutoff in steps:
        if cutoff is None:
            seen.prune(t)
            model = {k: v for k, v in model.items() if v >= t}
            prune_at = max(MIN_PRUNE_AT, 2 * len(model))
            continue
        new = event_id not in model
        assert seen.add(event_id, t, cutoff) is new
        if new:
            model[event_id] = t
            if len(model) >= prune_at:
                model = {k: v for k, v in model.items() if v >= cutoff}
                prune_at = max(MIN_PRUNE_AT, 2 * len(model))
        assert seen.to_dict() == model and list(seen.to_dict()) == list(model)  # same ids, times and order
        assert len(seen) == len(model) and seen.oldest_ms() == (min(model.values()) if model else None)


def test_the_changelog_form_restores_an_equal_memory() -> None:
    seen = SeenEvents()
    for i, t in enumerate([30, 10, 20]):
        seen.add(f"e{i}", t, 0)
    restored = SeenEvents.of(seen.to_dict())
    assert restored == seen and list(restored.to_dict().items()) == [("e0", 30), ("e1", 10), ("e2", 20)]
    restored.add("e3", 40, 0)
    assert restored != seen and "e3" in restored and "e3" not in seen


@given(_steps, st.integers(0, 400))
def test_a_snapshot_keeps_the_memory_as_of_when_it_was_taken(steps: list[tuple[str, int, int | None]], at: int) -> None:
    seen, snapshot, expected = SeenEvents(), None, {}
    for i, (event_id, t, cutoff) in enumerate(steps):
        if i == at:
            snapshot, expected = seen.snapshot(), seen.to_dict()
        if cutoff is None:
            seen.prune(t)
        else:
            seen.add(event_id, t, cutoff)
    if snapshot is None:
        snapshot, expected = seen.snapshot(), seen.to_dict()
    assert (
        snapshot == expected and list(snapshot) == list(expected) and list(snapshot.values()) == list(expected.values())
    )
    assert orjson.dumps({"s": snapshot}, default=json_default) == orjson.dumps({"s": expected})  # the changelog's bytes
    assert SeenEvents.of(snapshot) == SeenEvents.of(expected)


def test_only_snapshots_have_a_json_default() -> None:
    with pytest.raises(TypeError, match="not JSON serializable"):
        orjson.dumps(SeenEvents(), default=json_default)
