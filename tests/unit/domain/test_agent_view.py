"""The live agent state: status and contacts in ACW after each kind of event, and only changes handed out."""

from __future__ import annotations

import pytest

from streams.domain.agent_view import STATUSES, view_of
from streams.domain.intervals import AgentState
from streams.domain.pipeline import AcwPipeline, AggregationConfig
from streams.domain.processor import RulesConfig
from tests.unit.domain.builders import T0, ev

RULES = RulesConfig(allowed_lateness_ms=0)


def _pipeline() -> AcwPipeline:
    return AcwPipeline(RULES, AggregationConfig())


def _apply(events: list) -> AcwPipeline:  # type: ignore[type-arg]
    pipe = _pipeline()
    for e in events:
        pipe.offer(e)
    last_s = (max(e.occurred_at_ms for e in events) - T0) / 1000
    pipe.offer(ev(last_s + 1, "AGENT_LOGGED_IN", agent="clock"))  # stream time past every event above
    return pipe


VOICE = {"team_id": "t1", "queue_id": "q1", "channel": "VOICE"}


@pytest.mark.parametrize(
    ("events", "status", "detail", "in_acw", "active"),
    [
        ([ev(0, "AGENT_LOGGED_IN", status="Ready")], "LOGGED_IN", "Ready", [], 0),
        ([ev(0, "AGENT_LOGGED_IN"), ev(1, "AGENT_AVAILABLE")], "AVAILABLE", None, [], 0),
        ([ev(0, "AGENT_LOGGED_IN"), ev(1, "AGENT_UNAVAILABLE", status="Break")], "UNAVAILABLE", "Break", [], 0),
        (
            [ev(0, "CONTACT_OFFERED", "c1", **VOICE), ev(1, "CONTACT_CONNECTED", "c1", **VOICE)],
            "ON_CONTACT",
            None,
            [],
            1,
        ),
        (
            [ev(1, "CONTACT_CONNECTED", "c1", **VOICE), ev(60, "CONTACT_DISCONNECTED", "c1", **VOICE)],
            "IN_ACW",
            None,
            [("c1", "VOICE", "q1", 60)],
            0,
        ),
        (
            [
                ev(1, "CONTACT_CONNECTED", "c1", **VOICE),
                ev(60, "CONTACT_DISCONNECTED", "c1", **VOICE),
                ev(90, "WRAPUP_COMPLETED", "c1", **VOICE),
                ev(91, "AGENT_AVAILABLE"),
            ],
            "AVAILABLE",
            None,
            [],
            0,
        ),
        ([ev(0, "CONTACT_OFFERED", "c1", **VOICE)], "UNKNOWN", None, [], 0),  # offered, not connected
    ],
)
def test_status_and_contacts_in_acw(events: list, status: str, detail: str | None, in_acw: list, active: int) -> None:  # type: ignore[type-arg]
    pipe = _apply(events)
    view = view_of(pipe.processor.agents["a1"])
    assert view is not None and view.status in STATUSES
    assert (view.status, view.status_detail, view.contacts_active) == (status, detail, active)
    assert [(c.contact_id, c.channel, c.queue_id, c.disconnected_at_ms) for c in view.acw_contacts] == [
        (cid, ch, q, T0 + s * 1000) for cid, ch, q, s in in_acw
    ]
    assert view.team_id == ("t1" if any(e.team_id for e in events) else None)


def test_a_logout_is_a_tombstone_and_only_changes_are_handed_out() -> None:
    pipe = _pipeline()
    pipe.offer(ev(0, "AGENT_LOGGED_IN", agent="a1"))
    pipe.offer(ev(1, "AGENT_LOGGED_IN", agent="a2"))
    pipe.offer(ev(2, "CONTACT_CONNECTED", "c1", agent="a1", **VOICE))
    pipe.offer(ev(3, "AGENT_LOGGED_IN", agent="clock"))  # applies what came before it (lateness 0)
    assert [(a, v.status if v else None) for a, v in pipe.take_views()] == [("a1", "ON_CONTACT"), ("a2", "LOGGED_IN")]
    pipe.offer(ev(4, "HOLD_STARTED", "c1", agent="a1", **VOICE))  # applied, but a1's view does not change
    pipe.offer(ev(5, "AGENT_LOGGED_OUT", agent="a2"))
    pipe.offer(ev(6, "AGENT_LOGGED_IN", agent="clock"))
    assert pipe.take_views() == [("a2", None), ("clock", view_of(pipe.processor.agents["clock"]))]
    assert pipe.take_views() == []


def test_the_view_record_matches_the_schema() -> None:
    from streams.serialization import codec

    pipe = _apply([ev(1, "CONTACT_CONNECTED", "c1", **VOICE), ev(60, "CONTACT_DISCONNECTED", "c1", **VOICE)])
    view = view_of(pipe.processor.agents["a1"])
    assert view is not None
    record = view.to_record(T0 + 61_000)
    avro = codec("acw_agent_state")
    assert avro.decode(avro.encode(record)) == record


def test_activity_survives_a_snapshot() -> None:
    agent = AgentState("a1", activity="UNAVAILABLE", activity_status="Lunch")
    again = AgentState.from_dict("a1", agent.to_dict())
    assert (again.activity, again.activity_status) == ("UNAVAILABLE", "Lunch")
    assert "av" not in AgentState("a2").to_dict()  # snapshots of agents with no agent-level event are unchanged
