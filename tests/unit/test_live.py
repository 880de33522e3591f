"""`acw top`'s view: who is in ACW now (from the core), team windows against the benchmark, latest alerts."""

from __future__ import annotations

import orjson
from rich.console import Console

from streams.live import LiveState, render
from streams.settings import Settings
from tests.unit.domain.builders import ev


def _text(state: LiveState) -> str:
    console = Console(record=True, width=160)
    console.print(render(state))
    return console.export_text()


def test_the_view_shows_agents_in_acw_team_windows_and_alerts() -> None:
    state = LiveState(Settings(input_format="json", benchmark="general"))
    kw = {"team_id": "t1", "queue_id": "q1"}
    for e in [
        ev(0, "CONTACT_OFFERED", "c1", agent="a1", **kw),
        ev(1, "CONTACT_CONNECTED", "c1", agent="a1", **kw),
        ev(61, "CONTACT_DISCONNECTED", "c1", agent="a1", **kw),
        ev(400, "AGENT_LOGGED_IN", agent="a2"),  # stream time moves on: a1 has been in ACW 5m 39s
    ]:
        state.on_event(orjson.dumps(e.to_record()))
    state.on_event(b"not json")  # ignored, not counted
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
    assert state.events == 4
    assert "in ACW now 1 agents, 1 contacts" in text
    assert "a1" in text and "c1" in text and "5:39" in text
    assert "t1" in text and "12" in text and "5:00" in text and "3:20" in text and "40%" in text
    assert "99" not in text
    assert "The average ACW of team t1 is 5m" in text
