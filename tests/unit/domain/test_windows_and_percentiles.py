"""Window specs and the exact-or-sketched percentiles of window durations."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.domain.percentiles import EXACT_LIMIT, RELATIVE_ACCURACY, Durations
from streams.domain.windows import WindowSpec, parse_windows


def test_specs_parse_and_print_back() -> None:
    assert [w.name for w in parse_windows("15m, 1h/5m,1d")] == ["15m", "1h/5m", "1d"]
    assert WindowSpec.parse("1h/5m") == WindowSpec(3_600_000, 300_000)


@pytest.mark.parametrize("bad", ["", "15", "1h/7m", "5m/15m", "0m", "15m,15m", "1w"])
def test_bad_specs_are_rejected(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_windows(bad)


@given(t=st.integers(0, 2**42))
def test_starts_are_every_window_holding_the_time(t: int) -> None:
    spec = WindowSpec.parse("1h/5m")
    starts = list(spec.starts(t))
    assert len(starts) == 12 and all(s <= t < s + spec.size_ms for s in starts)
    assert all(s % spec.hop_ms == 0 for s in starts)


def _nearest_rank(values: list[int], q: float) -> int:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q * len(ordered) - 1e-9)) - 1]


@given(values=st.lists(st.integers(0, 3_600_000), min_size=1, max_size=200))
def test_small_sets_are_exact_nearest_rank(values: list[int]) -> None:
    d = Durations()
    for v in values:
        d.add(v)
    assert d.exact
    for q in (0.5, 0.9):
        assert d.quantile(q) == _nearest_rank(values, q)


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**32), n=st.integers(EXACT_LIMIT + 1, 3 * EXACT_LIMIT))
def test_large_sets_stay_within_the_documented_error(seed: int, n: int) -> None:
    rng = random.Random(seed)
    values = [round(rng.lognormvariate(11.5, 1.0)) for _ in range(n)]
    d = Durations()
    for v in values:
        d.add(v)
    assert not d.exact
    for q in (0.5, 0.9):
        exact = _nearest_rank(values, q)
        assert abs(d.quantile(q) - exact) <= RELATIVE_ACCURACY * exact + 1e-9


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**32), parts=st.integers(1, 6), n=st.integers(1, 2 * EXACT_LIMIT))
def test_merging_parts_equals_adding_all(seed: int, parts: int, n: int) -> None:
    rng = random.Random(seed)
    values = [rng.randrange(0, 2_000_000) for _ in range(n)]
    whole = Durations()
    pieces = [Durations() for _ in range(parts)]
    for v in values:
        whole.add(v)
        rng.choice(pieces).add(v)
    merged = Durations()
    for p in pieces:
        merged.merge(Durations.from_dict(p.to_dict()))
    assert merged.to_dict() == whole.to_dict()
