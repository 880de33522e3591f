"""Alert rules: presets, validation, and the lifecycle of each rule kind."""

from __future__ import annotations

import pytest

from streams.domain.aggregates import Scope
from streams.domain.alerts import AlertRule, RuleError, RuleKind, format_seconds, load_rules
from streams.domain.pipeline import AggregationConfig
from streams.domain.processor import RulesConfig
from streams.domain.windows import WindowSpec, parse_windows
from tests.unit.domain.aggregation import run
from tests.unit.domain.builders import T0, ev

WINDOWS = parse_windows("15m,1h/5m")
RULES = RulesConfig(max_acw_ms=1_800_000, allowed_lateness_ms=5_000)
B = 900 - (T0 // 1000) % 900


def _config(*rules: AlertRule) -> AggregationConfig:
    return AggregationConfig(windows=WINDOWS, grace_ms=60_000, rules=rules)


def _contact(t: float, contact: str, acw: float, agent: str = "a1", team: str = "t1") -> list:
    kw = dict(agent=agent, team_id=team, queue_id="q1")
    return [
        ev(t, "CONTACT_OFFERED", contact, **kw),
        ev(t + 1, "CONTACT_CONNECTED", contact, **kw),
        ev(t + 60, "CONTACT_DISCONNECTED", contact, **kw),
        ev(t + 60 + acw, "WRAPUP_COMPLETED", contact, **kw),
    ]


# --- presets and validation ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("benchmark", "top"),
    [("general", 240), ("financial_services", 360), ("healthcare", 480), ("technical_support", 300)],
)
def test_presets_follow_the_benchmark_ranges(benchmark: str, top: int) -> None:
    rules = {r.name: r for r in load_rules(None, benchmark, WINDOWS)}
    assert rules["team-acw-avg"].threshold == top and rules["team-acw-avg"].scope is Scope.TEAM
    assert rules["agent-acw-avg"].threshold == top and rules["agent-acw-avg"].kind is RuleKind.AVG_OVER
    assert rules["agent-stuck-in-acw"].threshold == 2 * top and rules["agent-stuck-in-acw"].kind is RuleKind.OPEN_OVER
    assert rules["acw-interval-long"].threshold == 3 * top
    assert rules["team-acw-avg"].clear < top  # hysteresis by default


def test_a_rules_file_overrides_adds_and_disables_by_name() -> None:
    doc = {
        "rules": [
            {"name": "team-acw-avg", "threshold": 500, "clear": 450},
            {"name": "acw-interval-long", "enabled": False},
            {"name": "queue-acw-pct", "kind": "pct_over", "scope": "queue", "threshold": 40, "window": "15m"},
        ]
    }
    rules = {r.name: r for r in load_rules(doc, "healthcare", WINDOWS)}
    assert rules["team-acw-avg"].threshold == 500 and rules["team-acw-avg"].clear == 450
    assert rules["team-acw-avg"].min_contacts == 10  # kept from the preset
    assert "acw-interval-long" not in rules
    assert rules["queue-acw-pct"].window == WindowSpec.parse("15m") and rules["queue-acw-pct"].clear == 36


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ({"name": "x"}, "rule 'x': 'kind' is required"),
        ({"name": "x", "kind": "median_over", "threshold": 1}, "rule 'x': kind must be one of"),
        ({"name": "x", "kind": "avg_over", "threshold": -1}, "rule 'x': 'threshold' must be a positive number"),
        ({"name": "x", "kind": "avg_over", "threshold": 10, "clear": 20}, "rule 'x': 'clear' must be"),
        ({"name": "x", "kind": "avg_over", "threshold": 10, "window": "30m"}, "window 30m is not one of ACW_WINDOWS"),
        ({"name": "x", "kind": "open_over", "scope": "TEAM", "threshold": 10}, "its scope must be AGENT"),
        ({"name": "x", "kind": "avg_over", "threshold": 10, "severity": "fatal"}, "severity must be one of"),
        ({"name": "x", "kind": "avg_over", "threshold": 10, "treshold": 3}, "unknown field(s) treshold"),
        ({"name": "x|y", "kind": "avg_over", "threshold": 10}, "names may only hold"),
        ({"kind": "avg_over"}, "rule #1: every rule needs a 'name'"),
    ],
)
def test_bad_rules_are_named_in_the_error(rule: dict, message: str) -> None:
    with pytest.raises(RuleError, match=None) as exc:
        load_rules({"rules": [rule]}, "general", WINDOWS)
    assert message in str(exc.value)


def test_durations_read_like_a_supervisor_would() -> None:
    assert [format_seconds(s) for s in (45, 480, 845, 3720)] == ["45s", "8m", "14m 05s", "1h 02m"]


# --- lifecycle -----------------------------------------------------------------------------------

OPEN = AlertRule("stuck", RuleKind.OPEN_OVER, Scope.AGENT, 300, 300, "critical")
LONG = AlertRule("long", RuleKind.INTERVAL_OVER, Scope.AGENT, 200, 200, "info")


def test_open_over_fires_while_open_and_resolves_once_when_acw_ends() -> None:
    events = [*_contact(B, "c1", acw=500), ev(B + 2_000, "AGENT_LOGGED_IN", agent="a2")]
    results = run(events, RULES, _config(OPEN))
    states = [(a["state"], a["started_at"], a["resolved_at"]) for a in results.alerts]
    disc = T0 + (B + 60) * 1000
    assert states == [("FIRING", disc + 300_000, None), ("RESOLVED", disc + 300_000, disc + 500_000)]
    firing, resolved = results.alerts
    assert firing["alert_id"] == resolved["alert_id"] and firing["severity"] == "critical"
    assert resolved["message"] == (
        "Agent a1 was in after-call work on contact c1 for 8m 20s (limit 5m); it ended: WRAPUP_COMPLETED"
    )


def test_open_over_fires_as_soon_as_stream_time_passes_the_limit_without_a_closing_event() -> None:
    events = [*_contact(B, "c1", acw=10_000)[:3], ev(B + 60 + 301 + 5, "AGENT_LOGGED_IN", agent="a2")]
    results = run(events[:3], RULES, _config(OPEN))
    assert results.alerts == []  # stream time never passed the limit
    from streams.domain.pipeline import AcwPipeline

    pipe = AcwPipeline(RULES, _config(OPEN))
    fired = []
    for e in events:
        fired.extend(pipe.offer(e)[1].alerts)
    assert [a["state"] for a in fired] == ["FIRING"]
    assert fired[0]["message"].startswith("Agent a1 has been in after-call work on contact c1 for over 5m")


def test_an_acw_under_the_limit_raises_nothing() -> None:
    results = run(_contact(B, "c1", acw=299), RULES, _config(OPEN, LONG))
    assert [a["rule"] for a in results.alerts] == ["long", "long"]  # 299 s is over 200 s only


def test_interval_over_fires_and_resolves_at_the_interval_end() -> None:
    results = run(_contact(B, "c1", acw=250), RULES, _config(LONG))
    assert [a["state"] for a in results.alerts] == ["FIRING", "RESOLVED"]
    assert results.alerts[0]["value"] == 250.0 and results.alerts[0]["contact_id"] == "c1"


def _team_windows(acws: list[float], per_window: int = 2) -> list:
    """`per_window` contacts of each given ACW in consecutive 15-minute windows of team t1."""
    events = []
    for w, acw in enumerate(acws):
        for i in range(per_window):
            events += _contact(B + w * 900 + i * 300, f"c{w}-{i}", acw, agent=f"a{i}")
    return sorted(events, key=lambda e: e.sort_key())


AVG = AlertRule("team-avg", RuleKind.AVG_OVER, Scope.TEAM, 100, 80, "warning", WindowSpec.parse("15m"), 2)


def test_avg_over_fires_once_per_episode_with_hysteresis() -> None:
    # averages per window: 50, 150 (fire), 120, 90 (still above clear 80), 70 (resolve), 150 (fire again)
    results = run(_team_windows([50, 150, 120, 90, 70, 150]), RULES, _config(AVG))
    transitions = [(a["state"], a["value"]) for a in results.alerts]
    # ...and the end of input leaves the team without contacts, which resolves the second episode
    assert transitions == [("FIRING", 150.0), ("RESOLVED", 70.0), ("FIRING", 150.0), ("RESOLVED", 0.0)]
    assert results.alerts[0]["alert_id"] != results.alerts[2]["alert_id"]
    assert results.alerts[0]["message"] == "The average ACW of team t1 is 2m 30s over the last 15m (limit 1m 40s)"


def test_avg_over_ignores_windows_under_min_contacts_and_resolves_when_the_team_goes_quiet() -> None:
    events = _team_windows([150, 150], per_window=2)
    quiet = [ev(B + 4 * 3600, "AGENT_LOGGED_IN", agent="a9")]
    results = run(sorted(events + quiet, key=lambda e: e.sort_key()), RULES, _config(AVG))
    assert [a["state"] for a in results.alerts] == ["FIRING", "RESOLVED"]
    assert results.alerts[1]["message"].startswith("Team t1 had no contacts in the last 15m")
    few = run(_team_windows([500], per_window=1), RULES, _config(AVG))
    assert few.alerts == []  # one contact < min_contacts 2


def test_pct_over_compares_acw_share_of_handle_time() -> None:
    rule = AlertRule("pct", RuleKind.PCT_OVER, Scope.TEAM, 50, 45, "warning", WindowSpec.parse("15m"), 1)
    # talk 59 s + ACW 120 s per contact: ACW% = 67
    results = run(_team_windows([120], per_window=2), RULES, _config(rule))
    assert results.alerts[0]["state"] == "FIRING" and round(results.alerts[0]["value"]) == 67


# --- what fires now (for gauges) -------------------------------------------------------------------


def test_the_live_view_counts_open_acw_agents_and_open_over_alerts_firing_now() -> None:
    from streams.domain.pipeline import AcwPipeline

    pipe = AcwPipeline(RULES, _config(OPEN))
    assert pipe.live().firing == {"stuck": 0} and pipe.live().open_intervals == 0
    events = [
        *_contact(B, "c1", acw=10_000)[:3],  # a1 disconnects at B+60 and stays in ACW
        *_contact(B + 100, "c2", acw=10_000, agent="a2")[:3],  # a2 disconnects at B+160
        ev(B + 60 + 300 + 5 + 50, "AGENT_LOGGED_IN", agent="a3"),  # horizon B+410: only a1 is past 300 s
    ]
    for e in sorted(events, key=lambda e: e.sort_key()):
        pipe.offer(e)
    view = pipe.live()
    assert (view.open_intervals, view.agents_in_acw) == (2, 2)
    assert view.oldest_open_ms == (B + 415 - (B + 60)) * 1000
    assert view.firing == {"stuck": 1}
    pipe.offer(ev(B + 420, "WRAPUP_COMPLETED", "c1", agent="a1", team_id="t1", queue_id="q1"))
    pipe.offer(ev(B + 430, "AGENT_LOGGED_IN", agent="a4"))  # a1's wrap-up is applied; a2 is not due yet
    assert pipe.live().firing == {"stuck": 0} and pipe.live().open_intervals == 1


def test_the_merger_counts_keys_whose_window_alert_fires() -> None:
    from streams.domain.merge import WindowMerger
    from streams.domain.pipeline import AcwPipeline

    config = _config(AVG)
    pipe, merger = AcwPipeline(RULES, config), WindowMerger(config, 1)
    assert merger.firing() == {"team-avg": 0}
    alerts = []
    for e in [*_team_windows([50, 150]), ev(B + 2 * 900 + 120, "AGENT_LOGGED_IN", agent="a9")]:
        _, out = pipe.offer(e)
        for pane, stats in out.final_panes:
            merger.offer_pane(0, pane, stats)
        if out.progress is not None:
            alerts += merger.offer_progress(0, out.progress).alerts
    assert [a["state"] for a in alerts] == ["FIRING"]
    assert merger.firing() == {"team-avg": 1}
