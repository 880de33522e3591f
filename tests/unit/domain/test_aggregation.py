"""Window aggregates: scenarios per measure and scope, and a brute-force comparison over random streams."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from streams.domain.pipeline import AggregationConfig
from streams.domain.processor import RulesConfig
from streams.domain.windows import parse_windows
from streams.traffic import TrafficShape, generate
from tests.unit.domain.aggregation import brute_force, run
from tests.unit.domain.builders import T0, ev

RULES = RulesConfig(max_acw_ms=600_000, allowed_lateness_ms=5_000)
CONFIG = AggregationConfig(windows=parse_windows("15m,1h/5m"), grace_ms=60_000)
W15 = 900  # window_size_seconds of the tumbling window


def _start(t_s: float, size_s: int) -> int:
    t = T0 + round(t_s * 1000)
    return t - t % (size_s * 1000)


B = 900 - (T0 // 1000) % 900  # seconds after T0 where a 15-minute window starts


def _scenario() -> list:
    """Two agents of team t1 in queue q1, all inside one 15-minute window starting at B."""
    a1 = dict(agent="a1", team_id="t1", queue_id="q1")
    a2 = dict(agent="a2", team_id="t1", queue_id="q1")
    return [
        ev(B + 0, "AGENT_LOGGED_IN", **a1),
        ev(B + 0, "AGENT_LOGGED_IN", **a2),
        ev(B + 10, "CONTACT_OFFERED", "c1", **a1),
        ev(B + 12, "CONTACT_CONNECTED", "c1", **a1),
        ev(B + 100, "HOLD_STARTED", "c1", **a1),
        ev(B + 130, "HOLD_ENDED", "c1", **a1),
        ev(B + 200, "CONTACT_DISCONNECTED", "c1", **a1),  # talk 158 s, hold 30 s
        ev(B + 260, "WRAPUP_COMPLETED", "c1", **a1),  # ACW 60 s
        ev(B + 20, "CONTACT_OFFERED", "c2", **a2),
        ev(B + 21, "CONTACT_CONNECTED", "c2", **a2),
        ev(B + 81, "CONTACT_DISCONNECTED", "c2", **a2),  # talk 60 s
        ev(B + 81, "AGENT_AVAILABLE", **a2),  # ACW 0 s
        ev(B + 300, "CONTACT_OFFERED", "c3", **a2),
        ev(B + 301, "CONTACT_CONNECTED", "c3", **a2),
        ev(B + 400, "CONTACT_DISCONNECTED", "c3", **a2),
        ev(B + 700, "WRAPUP_COMPLETED", "c3", **a2),  # ACW 300 s
        ev(B + 5_000, "AGENT_LOGGED_OUT", **a1),
    ]


def test_each_measure_of_a_team_window() -> None:
    results = run(sorted(_scenario(), key=lambda e: e.sort_key()), RULES, CONFIG)
    team = results.finals[("TEAM", "t1", _start(B, W15), W15)]
    assert team["contacts"] == 3
    assert team["contacts_with_acw"] == 2
    assert team["acw_sum_seconds"] == 360.0
    assert team["acw_avg_seconds"] == 120.0  # over all contacts
    assert team["acw_avg_nonzero_seconds"] == 180.0  # over contacts with ACW
    assert team["acw_p50_seconds"] == 60.0 and team["acw_p90_seconds"] == 300.0 and team["acw_max_seconds"] == 300.0
    assert team["percentiles_exact"] is True
    assert team["talk_sum_seconds"] == 158 + 60 + 99 and team["hold_sum_seconds"] == 30.0
    assert team["handle_avg_seconds"] == (158 + 30 + 60 + 60 + 0 + 99 + 300) / 3
    assert team["acw_pct"] == 100 * 360 / (158 + 30 + 60 + 60 + 0 + 99 + 300)
    assert team["agent_acw_seconds"] == 60 + 300  # a1's 60 s and a2's 300 s; the 0 s contact adds nothing
    assert team["end_reasons"] == {"AVAILABLE": 1, "WRAPUP_COMPLETED": 2} and team["timed_out"] == 0
    assert team["final"] is True and team["window_end"] == team["window_start"] + 900_000
    assert team["updated_at"] == team["window_end"] + 60_000


def test_scopes_split_the_same_intervals() -> None:
    results = run(sorted(_scenario(), key=lambda e: e.sort_key()), RULES, CONFIG)
    start = _start(B, W15)
    assert results.finals[("AGENT", "a1", start, W15)]["contacts"] == 1
    assert results.finals[("AGENT", "a2", start, W15)]["contacts"] == 2
    assert results.finals[("QUEUE", "q1", start, W15)]["contacts"] == 3
    assert results.finals[("CENTER", "*", start, W15)]["contacts"] == 3
    hourly = [k for k in results.finals if k[0] == "CENTER" and k[3] == 3600]
    # ends at B+81 and B+260 lie in hours starting B-55m..B, the end at B+700 in B-45m..B+10m: 14 hours
    assert len(hourly) == 14


def test_missing_team_and_queue_count_under_unknown() -> None:
    events = [
        ev(0, "CONTACT_OFFERED", "c1"),
        ev(1, "CONTACT_CONNECTED", "c1"),
        ev(50, "CONTACT_DISCONNECTED", "c1"),
        ev(70, "AGENT_AVAILABLE"),
    ]
    results = run(events, RULES, CONFIG)
    assert results.finals[("TEAM", "unknown", _start(0, W15), W15)]["contacts"] == 1
    assert results.finals[("QUEUE", "unknown", _start(0, W15), W15)]["acw_sum_seconds"] == 20.0


def test_an_interval_counts_where_its_acw_ends_and_agent_time_is_split_at_the_boundary() -> None:
    boundary = B
    events = [
        ev(boundary - 100, "CONTACT_OFFERED", "c1"),
        ev(boundary - 90, "CONTACT_CONNECTED", "c1"),
        ev(boundary - 40, "CONTACT_DISCONNECTED", "c1"),
        ev(boundary + 20, "WRAPUP_COMPLETED", "c1"),
    ]
    results = run(events, RULES, CONFIG)
    before = results.finals[("AGENT", "a1", _start(boundary - 1, W15), W15)]
    after = results.finals[("AGENT", "a1", _start(boundary, W15), W15)]
    assert before["contacts"] == 0 and before["agent_acw_seconds"] == 40.0
    assert after["contacts"] == 1 and after["acw_sum_seconds"] == 60.0 and after["agent_acw_seconds"] == 20.0


def test_overlapping_chats_count_once_in_agent_time() -> None:
    events = [
        ev(0, "CONTACT_CONNECTED", "c1", channel="CHAT"),
        ev(1, "CONTACT_CONNECTED", "c2", channel="CHAT"),
        ev(10, "CONTACT_DISCONNECTED", "c1", channel="CHAT"),
        ev(20, "CONTACT_DISCONNECTED", "c2", channel="CHAT"),
        ev(40, "WRAPUP_COMPLETED", "c1", channel="CHAT"),
        ev(50, "WRAPUP_COMPLETED", "c2", channel="CHAT"),
    ]
    results = run(events, RULES, CONFIG)
    agent = next(r for k, r in results.finals.items() if k[0] == "AGENT" and k[3] == W15)
    assert agent["acw_sum_seconds"] == 30 + 30
    assert agent["agent_acw_seconds"] == 40.0  # 10 s to 50 s, overlap counted once


def test_timeouts_are_counted() -> None:
    events = [ev(0, "CONTACT_CONNECTED", "c1"), ev(10, "CONTACT_DISCONNECTED", "c1"), ev(3_000, "AGENT_LOGGED_IN")]
    results = run(events, RULES, CONFIG)
    record = results.finals[("AGENT", "a1", _start(610, W15), W15)]
    assert record["timed_out"] == 1 and record["end_reasons"] == {"TIMED_OUT": 1}
    assert record["acw_max_seconds"] == 600.0


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), agents=st.integers(1, 12), contacts=st.integers(1, 12))
def test_aggregates_equal_a_brute_force_recomputation(seed: int, agents: int, contacts: int) -> None:
    shape = TrafficShape(agents=agents, contacts_per_agent=contacts, teams=3, queues=4)
    events = generate(shape, seed)
    results = run(events, RULES, CONFIG)
    expected = brute_force(results.intervals, results.open_spans, CONFIG)  # type: ignore[attr-defined]
    assert results.finals.keys() == expected.keys()
    for key, want in expected.items():
        got = results.finals[key]
        assert {k: got[k] for k in want} == want, key


def test_only_the_configured_scopes_are_aggregated() -> None:
    from streams.domain.aggregates import Scope

    config = AggregationConfig(windows=parse_windows("15m"), grace_ms=60_000, scopes=frozenset({Scope.TEAM}))
    events = [
        ev(0, "CONTACT_CONNECTED", "c1", team_id="t1", queue_id="q1"),
        ev(60, "CONTACT_DISCONNECTED", "c1", team_id="t1", queue_id="q1"),
        ev(120, "WRAPUP_COMPLETED", "c1"),
    ]
    results = run(events, RulesConfig(), config)
    assert {k[0] for k in results.finals} == {"TEAM"}
    assert sum(r["contacts"] for r in results.finals.values()) == 1
