"""SeenEvents answers exactly as an id -> time dict pruned the same way would, and restores from its changelog forms."""

from __future__ import annotations

import hashlib

import orjson
from hypothesis import given
from hypothesis import strategies as st

from streams.domain.dedup import DIGEST_BYTES, MIN_PRUNE_AT, SeenEvents, digest

# (event id, event time, cutoff) per add; a cutoff of None prunes explicitly instead of adding.
_steps = st.lists(
    st.tuples(st.integers(0, 150).map(str), st.integers(0, 10_000), st.integers(0, 10_000) | st.none()),
    max_size=400,
)


# Times as an agent's events mostly bring them: ascending (a step back now and then), often equal, with cutoffs
# (of adds and of explicit prunes) a little behind them.
_ascending_steps = st.lists(
    st.tuples(st.integers(0, 150).map(str), st.integers(-2, 4), st.integers(0, 12), st.booleans()),
    max_size=400,
).map(
    lambda moves: [
        (event_id, t - lag, None) if prunes else (event_id, t, t - lag)
        for (event_id, _, lag, prunes), t in zip(moves, _running_sums([m[1] for m in moves]), strict=True)
    ]
)


def _running_sums(steps: list[int]) -> list[int]:
    total, sums = 1_000, []
    for step in steps:
        total += step
        sums.append(total)
    return sums


@given(_steps)
def test_it_keeps_what_a_pruned_dict_keeps(steps: list[tuple[str, int, int | None]]) -> None:
    _check_against_a_pruned_dict(steps)


@given(_ascending_steps)
def test_times_in_order_keep_what_a_pruned_dict_keeps(steps: list[tuple[str, int, int | None]]) -> None:
    _check_against_a_pruned_dict(steps)


def _check_against_a_pruned_dict(steps: list[tuple[str, int, int | None]]) -> None:
    seen, model, prune_at = SeenEvents(), {}, MIN_PRUNE_AT
    for event_id, t, cutoff in steps:
        if cutoff is None:
            seen.prune(t)
            model = {k: v for k, v in model.items() if v >= t}
            prune_at = max(MIN_PRUNE_AT, 2 * len(model))
        else:
            new = event_id not in model
            assert seen.add(event_id, t, cutoff) is new
            if new:
                model[event_id] = t
                if len(model) >= prune_at:
                    model = {k: v for k, v in model.items() if v >= cutoff}
                    prune_at = max(MIN_PRUNE_AT, 2 * len(model))
        assert seen == SeenEvents.of(model)  # the same digests and times, in the same order
        assert all((str(i) in seen) is (str(i) in model) for i in range(151))
        assert len(seen) == len(model) and seen.oldest_ms() == (min(model.values()) if model else None)


@given(_steps)
def test_the_changelog_form_restores_an_equal_memory(steps: list[tuple[str, int, int | None]]) -> None:
    seen = SeenEvents()
    for event_id, t, cutoff in steps:
        seen.add(event_id, t, 0 if cutoff is None else cutoff)
    plain = orjson.loads(orjson.dumps(seen.to_plain()))  # a trip through the changelog
    restored = SeenEvents.of(plain)
    assert restored == seen and restored.to_plain() == seen.to_plain()
    restored.add("new", 1, 0)
    assert restored != seen and "new" in restored and "new" not in seen


def test_a_checkpoint_written_before_digests_restores_the_same_memory() -> None:
    seen = SeenEvents()
    for i, t in enumerate([30, 10, 20]):
        seen.add(f"e{i}", t, 0)
    assert SeenEvents.of({"e0": 30, "e1": 10, "e2": 20}) == seen
    assert "e1" in SeenEvents.of({"e0": 30, "e1": 10, "e2": 20})


@given(st.text(max_size=200))
def test_a_digest_is_the_ids_64_bit_blake2b(event_id: str) -> None:
    assert digest(event_id) == hashlib.blake2b(event_id.encode(), digest_size=8).digest()


def test_a_digest_found_across_two_others_is_not_a_match() -> None:
    first, second = digest("a"), digest("b")
    straddling = (first + second)[DIGEST_BYTES // 2 : DIGEST_BYTES // 2 + DIGEST_BYTES]
    seen = SeenEvents()
    seen.add("a", 1, 0)
    seen.add("b", 2, 0)
    assert seen._find(first) and seen._find(second) and not seen._find(straddling)
