"""`--compare`: sides, the same-mix weighting and the bootstrap's intervals."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from streams.report.compare import SelectorError, compare, parse_side, split
from tests.support.seeds import logged_seed
from tests.unit.report.test_measures import MIN, T, contact


def test_a_different_channel_mix_alone_is_no_change() -> None:
    """Chats take twice the ACW of calls in both groups; B took more chats. Weighted, the groups are equal."""
    a = [contact(i, 100, channel="VOICE") for i in range(80)] + [
        contact(100 + i, 200, channel="CHAT") for i in range(20)
    ]
    b = [contact(i, 100, channel="VOICE") for i in range(20)] + [
        contact(100 + i, 200, channel="CHAT") for i in range(80)
    ]
    raw_a, raw_b = sum(c.acw_s for c in a) / len(a), sum(c.acw_s for c in b) / len(b)
    assert (raw_a, raw_b) == (120, 180)  # unweighted, B looks 60 s worse
    result = compare(a, b, "A", "B", resamples=200)
    assert result.mean.a == pytest.approx(150) and result.mean.b == pytest.approx(150)
    assert result.mean.diff == pytest.approx(0)
    assert result.strata == 2 and result.left_out == 0
    assert "no change" in result.sentence()


def test_a_real_cut_is_found_with_an_interval_that_holds_it() -> None:
    seed = logged_seed("contacts and bootstrap")
    rng = random.Random(seed)
    a = [contact(i, rng.gauss(240, 40), queue=rng.choice("xy")) for i in range(400)]
    b = [contact(1000 + i, rng.gauss(210, 40), queue=rng.choice("xy")) for i in range(400)]
    result = compare(a, b, "before", "after", resamples=500, seed=seed)
    assert result.mean.low < result.mean.diff < result.mean.high < 0
    assert -30 - 12 < result.mean.diff < -30 + 12  # within 3 standard errors of the true -30 s
    assert result.median.high < 0
    assert "lower" in result.sentence() and "after" in result.sentence()


def test_strata_only_one_side_has_are_left_out() -> None:
    a = [contact(1, 100, queue="x"), contact(2, 100, queue="only-a")]
    b = [contact(3, 130, queue="x")]
    result = compare(a, b, "A", "B", resamples=50)
    assert result.left_out == 1 and result.contacts_a == 1 and result.mean.diff == pytest.approx(30)


def test_the_weighted_median_weighs_each_stratum_by_its_pooled_share() -> None:
    # Stratum x: pooled 4 of 8 contacts (weight 0.5); stratum y: 0.5. A's x values weigh 0.5/3 each, y 0.5/1.
    a = [contact(1, 10, queue="x"), contact(2, 20, queue="x"), contact(3, 30, queue="x"), contact(4, 100, queue="y")]
    b = [contact(5, 10, queue="x"), contact(6, 100, queue="y"), contact(7, 100, queue="y"), contact(8, 100, queue="y")]
    result = compare(a, b, "A", "B", resamples=10)
    assert result.median.a == 30  # cumulative 1/6, 2/6, 3/6: the half is reached at 30
    assert result.mean.a == pytest.approx(0.5 * 20 + 0.5 * 100)


def test_nothing_shared_is_an_error() -> None:
    with pytest.raises(SelectorError, match="share no channel and queue"):
        compare([contact(1, 1, queue="x")], [contact(2, 1, queue="y")], "A", "B")


@pytest.mark.parametrize(
    ("text", "inside", "outside"),
    [
        ("team:t2", contact(1, 1, team="t2"), contact(2, 1)),
        ("queue:billing", contact(1, 1, queue="billing"), contact(2, 1)),
        ("agents:a7,a8", contact(1, 1, agent="a8"), contact(2, 1)),
        ("2026-03-02T00:00Z..2026-03-02T01:00Z", contact(1, 1, at_min=59), contact(2, 1, at_min=60)),
        (f"{T}..{T + 10 * MIN}", contact(1, 1), contact(2, 1, at_min=10)),
    ],
)
def test_sides_select_what_they_name(text: str, inside: object, outside: object) -> None:
    side = parse_side(text)
    assert side.test is not None and side.test(inside) and not side.test(outside)  # type: ignore[arg-type]


def test_agents_can_come_from_a_file_and_rest_takes_the_others(tmp_path: Path) -> None:
    path = tmp_path / "pilot.txt"
    path.write_text("a1\na3\n")
    cs = [contact(1, 1, agent="a1"), contact(2, 1, agent="a2"), contact(3, 1, agent="a3")]
    pilot, rest = split(cs, parse_side(f"agents:{path}"), parse_side("rest"))
    assert [c.agent_id for c in pilot] == ["a1", "a3"] and [c.agent_id for c in rest] == ["a2"]


@pytest.mark.parametrize("text", ["nonsense", "2026-03-02..yesterday", "2026-03-03..2026-03-02", "team:"])
def test_bad_sides_say_what_is_wanted(text: str) -> None:
    with pytest.raises(SelectorError, match="--compare"):
        parse_side(text)


def test_two_rests_are_refused() -> None:
    with pytest.raises(SelectorError, match="at most one side"):
        split([], parse_side("rest"), parse_side("rest"))
