"""`acw top`'s view: who is in ACW now (from agent-state records), team windows against the benchmark, alerts."""

from __future__ import annotations

from rich.console import Console

from streams.domain.pipeline import AcwPipeline, AggregationConfig
from streams.domain.processor import RulesConfig
from streams.live import LiveState, render
from streams.settings import Settings
from tests.unit.domain.builders import T0, ev


def _text(state: LiveState) -> str:
    console = Console(record=True, width=160)
    console.print(render(state))
    return console.export_text()


def _agent_states() -> list[tuple[str, dict | None]]:  # type: ignore[type-arg]
    """The records the worker would write: a1 in ACW since t=61 s, a2 logged in then out, at stream time 400 s."""
    pipe = AcwPipeline(RulesConfig(allowed_lateness_ms=0), AggregationConfig())
    kw = {"team_id": "t1", "queue_id": "q1"}
    for e in [
        ev(0, "CONTACT_OFFERED", "c1", agent="a1", **kw),
        ev(1, "CONTACT_CONNECTED", "c1", agent="a1", **kw),
        ev(61, "CONTACT_DISCONNECTED", "c1", agent="a1", **kw),
        ev(300, "AGENT_LOGGED_IN", agent="a2"),
        ev(399, "AGENT_LOGGED_OUT", agent="a2"),
        ev(400, "AGENT_LOGGED_IN", agent="a3"),
    ]:
        pipe.offer(e)
    wm = pipe.processor.watermark_ms
    assert wm is not None
    return [(a, None if v is None else v.to_record(wm)) for a, v in pipe.take_views()]


def test_the_view_shows_agents_in_acw_team_windows_and_alerts() -> None:
    state = LiveState(Settings(input_format="json", benchmark="general"))
    for agent, record in _agent_states():
        state.on_agent_state(agent, record)
    state.on_agent_state("a2", None)  # the tombstone of a2's logout
    aggregate = {
        "scope": "TEAM",
        "key": "t1",
        "window_size_seconds": 900,
        "window_start": 0,
        "contacts": 12,
        "acw_avg_seconds": 300.0,
        "acw_p90_seconds": 200.0,
        "acw_pct": 40.0,
    }
    state.on_aggregate(aggregate)
    state.on_aggregate({**aggregate, "key": "t1", "window_start": -900, "contacts": 99})  # older: ignored
    state.on_alert({"state": "FIRING", "severity": "warning", "message": "The average ACW of team t1 is 5m"})
    text = _text(state)
    assert state.as_of_ms == T0 + 400_000  # stream time; a3's login at 400 s itself is not applied yet
    assert "in ACW now 1 agents, 1 contacts" in text and "agents 1" in text
    assert "a1" in text and "c1" in text and "5:39" in text  # 400 - 61 s
    assert "t1" in text and "12" in text and "5:00" in text and "3:20" in text and "40%" in text
    assert "99" not in text
    assert "The average ACW of team t1 is 5m" in text


def test_contacts_past_the_acw_timeout_are_not_shown_as_in_acw() -> None:
    state = LiveState(Settings(input_format="json", max_acw_seconds=600))
    contact = {"contact_id": "c1", "channel": "VOICE", "queue_id": None, "disconnected_at": T0}
    base = {"team_id": None, "status": "IN_ACW", "status_detail": None, "contacts_active": 0}
    state.on_agent_state("a1", {**base, "agent_id": "a1", "acw_contacts": [contact], "as_of": T0 + 60_000})
    assert len(state.in_acw()) == 1
    state.on_agent_state("a2", {**base, "agent_id": "a2", "acw_contacts": [], "as_of": T0 + 601_000})
    assert state.in_acw() == []
