"""The report's numbers against values computed by hand from a handful of contacts."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest

from streams.domain.benchmarks import BANDS
from streams.domain.events import Channel
from streams.domain.intervals import AcwInterval, EndReason
from streams.report import measures
from streams.report.contacts import NO_TEAM, Contact, unique

T = 1_772_409_600_000  # 2026-03-02T00:00:00Z
MIN = 60_000
UTC = ZoneInfo("UTC")


def contact(
    n: int,
    acw: float,
    *,
    agent: str = "a1",
    team: str = "t1",
    queue: str = "q1",
    channel: str = "VOICE",
    at_min: float = 0,
    talk: float | None = 100.0,
    hold: float | None = 0.0,
    reason: str = "WRAPUP_COMPLETED",
    code: str | None = "SALE",
) -> Contact:
    disconnected = T + round(at_min * MIN)
    handle = None if talk is None else talk + (hold or 0.0) + acw
    return Contact(
        f"i{n}",
        agent,
        team,
        queue,
        channel,
        disconnected,
        disconnected + round(acw * 1000),
        acw,
        talk,
        hold,
        handle,
        reason,
        code,
    )


def test_group_figures_follow_their_formulas() -> None:
    cs = [
        contact(1, 120, talk=200, hold=40),  # handle 360
        contact(2, 0, talk=100, hold=0),  # no ACW: counts as handled, not in the "with ACW" average
        contact(3, 300, talk=None, hold=None),  # connect not seen: out of ACW % and AHT
    ]
    s = measures.summarize("t1", cs)
    assert s.contacts == 3 and s.contacts_with_acw == 2
    assert s.avg_acw_s == pytest.approx(420 / 3)
    assert s.avg_acw_when_any_s == pytest.approx(420 / 2)
    assert s.acw_pct == pytest.approx(100 * 120 / (360 + 100))
    assert s.aht_s == pytest.approx((360 + 100) / 2)


def test_no_handle_time_gives_no_acw_pct_or_aht() -> None:
    s = measures.summarize("t", [contact(1, 60, talk=None)])
    assert s.acw_pct is None and s.aht_s is None


def test_teams_and_queues_are_grouped_and_sorted() -> None:
    cs = [contact(1, 60, team="b", queue="x"), contact(2, 120, team="a", queue="x"), contact(3, 180, team="b")]
    assert [(t.name, t.contacts, t.avg_acw_s) for t in measures.by_team(cs)] == [("a", 1, 120), ("b", 2, 120)]
    assert [(q.name, q.contacts) for q in measures.by_queue(cs)] == [("q1", 1), ("x", 2)]


@pytest.mark.parametrize(
    ("tz", "at_min", "slot"),
    [
        ("UTC", 0, 0),
        ("UTC", 14.99, 0),
        ("UTC", 15, 1),
        ("UTC", 23 * 60 + 59, 95),
        ("Europe/Berlin", 0, 4),  # 01:00 in Berlin in March
        ("America/New_York", 0, 76),  # 19:00 the day before
    ],
)
def test_the_slot_of_the_day_is_read_in_the_report_time_zone(tz: str, at_min: float, slot: int) -> None:
    assert measures.slot_of(T + round(at_min * MIN), ZoneInfo(tz)) == slot


def test_heatmap_cells_are_slot_averages_per_team() -> None:
    cs = [contact(1, 60, at_min=1), contact(2, 120, at_min=14), contact(3, 600, at_min=16), contact(4, 30, team="t2")]
    teams, rows = measures.heatmap(cs, UTC)
    assert teams == ["t1", "t2"]
    assert rows[0][0] == 90 and rows[0][1] == 600 and rows[0][2] is None
    assert rows[1][0] == 30 and sum(v is not None for v in rows[1]) == 1


def test_huddle_and_efficient_agents_respect_band_contacts_and_timeouts() -> None:
    band = BANDS["general"]  # 120-240 s, middle 180
    cs = (
        [contact(i, 300, agent="slow") for i in range(20)]  # above the top with enough contacts
        + [contact(100 + i, 400, agent="few") for i in range(19)]  # above, but one contact short
        + [contact(200 + i, 100, agent="quick") for i in range(20)]  # under the middle, no timeouts
        + [contact(300 + i, 100, agent="timeouts", reason="TIMED_OUT" if i < 2 else "AVAILABLE") for i in range(20)]
    )
    people = measures.agents(cs)
    assert [a.agent_id for a in measures.above_band(people, band, 20)] == ["slow"]
    assert [a.agent_id for a in measures.efficient(people, band, 20, 0.05)] == ["quick"]  # 10% timeouts is not
    assert [a.agent_id for a in measures.efficient(people, band, 20, 0.10)] == ["quick", "timeouts"]
    never = measures.never_close(people, 20)
    assert [(a.agent_id, a.not_closed, a.timeouts) for a in never] == [("timeouts", 2, 2)]


def test_an_agents_interval_is_the_normal_95_percent_interval_of_the_mean() -> None:
    cs = [contact(i, v, agent="a") for i, v in enumerate([100, 200, 300, 400])]
    (a,) = measures.agents(cs)
    sd = (((150**2) * 2 + (50**2) * 2) / 3) ** 0.5
    assert a.avg_acw_s == 250
    assert a.ci95_s == pytest.approx((250 - 1.96 * sd / 2, 250 + 1.96 * sd / 2))


def test_endings_count_reasons_overall_and_per_team() -> None:
    cs = [contact(1, 1, reason="TIMED_OUT"), contact(2, 1), contact(3, 1, team="t2", reason="NEXT_CONTACT")]
    assert measures.endings(cs) == {
        "all": {"WRAPUP_COMPLETED": 1, "NEXT_CONTACT": 1, "TIMED_OUT": 1},
        "t1": {"WRAPUP_COMPLETED": 1, "TIMED_OUT": 1},
        "t2": {"NEXT_CONTACT": 1},
    }


def test_dispositions_costliest_first_rare_codes_and_no_code() -> None:
    cs = (
        [contact(i, 60, code="SALE") for i in range(50)]  # 50 min of ACW
        + [contact(100 + i, 600, code="COMPLAINT") for i in range(10)]  # 100 min
        + [contact(200, 30, code="FAX")]
        + [contact(300 + i, 60, code=None) for i in range(39)]
    )
    codes = measures.dispositions(cs)
    assert [c.code for c in codes] == ["COMPLAINT", "SALE", None, "FAX"]
    assert codes[0].acw_hours == pytest.approx(6000 / 3600) and codes[0].avg_acw_s == 600
    assert codes[2].share == pytest.approx(0.39)
    assert [c.code for c in measures.rare_codes(codes, 0.01)] == ["FAX"]


def test_shifts_split_at_the_gap_and_cost_in_hours_and_ftes() -> None:
    hour = 60
    cs = [
        contact(1, 1800, agent="a", at_min=0),
        contact(2, 1800, agent="a", at_min=2 * hour),
        contact(3, 3600, agent="a", at_min=12 * hour),  # 10 h after the last ended: a second shift
        contact(4, 3600, agent="b", team="t2", at_min=1 * hour),
    ]
    shifts = measures.shifts(cs, 4 * 3_600_000)
    assert [(s.agent_id, s.contacts, s.acw_hours) for s in shifts] == [("a", 2, 1.0), ("a", 1, 1.0), ("b", 1, 1.0)]
    cost = measures.cost(shifts, shift_hours=8, days=1)
    assert [(c.team, c.shifts, c.acw_hours, c.hours_per_shift) for c in cost] == [
        ("t1", 2, 2.0, 1.0),
        ("t2", 1, 1.0, 1.0),
        ("all", 3, 3.0, 1.0),
    ]
    assert cost[-1].fte == pytest.approx(3 / 8)


def test_seed_example_40_contacts_of_4_minutes_cost_over_2_5_hours_a_shift() -> None:
    cs = [contact(i, 240, at_min=10 * i) for i in range(40)]
    (everyone,) = measures.cost(measures.shifts(cs, 4 * 3_600_000), 8, 1)[-1:]
    assert everyone.hours_per_shift == pytest.approx(40 * 4 / 60) and everyone.hours_per_shift > 2.5


def test_days_are_calendar_days_in_the_time_zone() -> None:
    cs = [contact(1, 1, at_min=30), contact(2, 1, at_min=23 * 60 + 30)]
    assert measures.days_in(cs, UTC) == 1
    assert measures.days_in(cs, ZoneInfo("Europe/Berlin")) == 2  # 00:30 UTC is 01:30, 23:30 is 00:30 the next day


def test_unique_keeps_each_interval_once_in_the_period_and_names_missing_teams() -> None:
    first = AcwInterval(
        "x", "a", "c", Channel.CHAT, None, None, T, T + 1000, 1.0, EndReason.AVAILABLE, None, None, None, None, None
    )
    record = first.to_record()
    later = {**record, "interval_id": "y", "disconnected_at": T + 10 * MIN}
    got = unique([record, record, later], since_ms=T, until_ms=T + 10 * MIN)
    assert [c.interval_id for c in got] == ["x"] and got[0].team == NO_TEAM and got[0].channel == "CHAT"
