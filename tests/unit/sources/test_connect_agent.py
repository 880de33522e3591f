"""`connect-agent-events`: every pinned mapping rule as a case, and the vendor's worked example in any order."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from streams.domain.events import Channel, EventType, InvalidEvent
from streams.domain.processor import RulesConfig
from streams.replay import replay
from streams.sources.connect_agent import ConnectAgentSource
from streams.sources.intake import Intake
from tests.unit.sources.builders import connect_contact, connect_record, connect_snapshot, vendor_acw_example

T_CONNECT = 1558810521011  # 2019-05-25T18:55:21.011Z
T_END = 1558810527017  # 18:55:27.017Z
T_GONE = 1558810532022  # 18:55:32.022Z
STATUS_START = 1558809839049  # 18:43:59.049Z
SOURCE = ConnectAgentSource()
E = EventType

CONNECTED = connect_contact()
ENDED = connect_contact(state="ENDED", start="2019-05-25T18:55:27.017Z")
ONHOLD = connect_contact(state="CONNECTED_ONHOLD", start="2019-05-25T18:55:24.000Z")
RINGING = connect_contact(state="CONNECTING", start="2019-05-25T18:55:18.000Z", connected=None)
MISSED = connect_contact(state="MISSED", start="2019-05-25T18:55:30.000Z", connected=None)


def events(previous, current, **kw):
    translation = SOURCE.translate(orjson.dumps(connect_record(previous, current, **kw)))
    return [(e.event_type, e.occurred_at_ms, e.restated) for e in translation.events]


CASES = [
    (
        "connect then end: restated connect, news disconnect at the ENDED state start",
        [CONNECTED],
        [ENDED],
        {},
        [(E.CONTACT_CONNECTED, T_CONNECT, True), (E.CONTACT_DISCONNECTED, T_END, False)],
    ),
    (
        "ENDED then gone: the vendor's ACW end at EventTimestamp",
        [ENDED],
        [],
        {"at": "2019-05-25T18:55:32.022Z"},
        [
            (E.CONTACT_CONNECTED, T_CONNECT, True),
            (E.CONTACT_DISCONNECTED, T_END, True),
            (E.WRAPUP_COMPLETED, T_GONE, False),
        ],
    ),
    ("first seen ringing: offered at its state start", [], [RINGING], {}, [(E.CONTACT_OFFERED, 1558810518000, False)]),
    (
        "ringing to connected: connected at ConnectedToAgentTimestamp",
        [RINGING],
        [CONNECTED],
        {},
        [(E.CONTACT_OFFERED, 1558810518000, True), (E.CONTACT_CONNECTED, T_CONNECT, False)],
    ),
    (
        "connected to on hold: hold starts at EventTimestamp",
        [CONNECTED],
        [ONHOLD],
        {"at": "2019-05-25T18:55:24.000Z"},
        [(E.CONTACT_CONNECTED, T_CONNECT, True), (E.HOLD_STARTED, 1558810524000, False)],
    ),
    (
        "on hold to connected: hold ends at EventTimestamp",
        [ONHOLD],
        [CONNECTED],
        {"at": "2019-05-25T18:55:26.000Z"},
        [(E.CONTACT_CONNECTED, T_CONNECT, True), (E.HOLD_ENDED, 1558810526000, False)],
    ),
    (
        "ringing to missed: an offer disconnected unanswered (no interval by rule 1)",
        [RINGING],
        [MISSED],
        {},
        [
            (E.CONTACT_OFFERED, 1558810518000, True),
            (E.CONTACT_OFFERED, 1558810530000, False),
            (E.CONTACT_DISCONNECTED, 1558810530000, False),
        ],
    ),
    ("a ringing contact that vanishes yields nothing more", [RINGING], [], {}, []),
    (
        "connected and gone without ENDED: zero ACW at EventTimestamp",
        [CONNECTED],
        [],
        {"at": "2019-05-25T18:55:40.000Z"},
        [
            (E.CONTACT_CONNECTED, T_CONNECT, True),
            (E.CONTACT_DISCONNECTED, 1558810540000, False),
            (E.WRAPUP_COMPLETED, 1558810540000, False),
        ],
    ),
    ("a null current snapshot tells nothing (no removals, no news)", [ENDED], None, {}, []),
    (
        "a null previous snapshot: everything current is entering",
        None,
        [ENDED],
        {},
        [
            (E.AGENT_AVAILABLE, STATUS_START, False),
            (E.CONTACT_CONNECTED, T_CONNECT, False),
            (E.CONTACT_DISCONNECTED, T_END, False),
        ],
    ),
    ("a change of nothing we track yields nothing", [CONNECTED], [CONNECTED], {}, []),
]


@pytest.mark.parametrize(("name", "previous", "current", "kw", "expected"), CASES, ids=[c[0] for c in CASES])
def test_contact_mapping(name, previous, current, kw, expected) -> None:
    prev = None if previous is None else connect_snapshot(previous)
    cur = None if current is None else connect_snapshot(current)
    assert events(prev, cur, **kw) == expected


STATUS_CASES = [
    ("ROUTABLE", "Available", EventType.AGENT_AVAILABLE, None),
    (None, "Available", EventType.AGENT_AVAILABLE, None),
    ("OFFLINE", "Offline", EventType.AGENT_UNAVAILABLE, "Offline"),
    (None, "Offline", EventType.AGENT_UNAVAILABLE, "Offline"),
    ("CUSTOM", "Lunch", EventType.AGENT_UNAVAILABLE, "Lunch"),
    (None, "Break", EventType.AGENT_UNAVAILABLE, "Break"),
]


@pytest.mark.parametrize(("kind", "name", "expected", "status"), STATUS_CASES)
def test_status_change_maps_by_type_then_name_at_its_start(kind, name, expected, status) -> None:
    prev = connect_snapshot([], status="Busy", status_type="CUSTOM")
    cur = connect_snapshot([], status=name, status_start="2019-05-25T19:00:00.000Z", status_type=kind)
    translation = SOURCE.translate(orjson.dumps(connect_record(prev, cur, at="2019-05-25T19:00:00.500Z")))
    [event] = translation.events
    assert (event.event_type, event.occurred_at_ms, event.status) == (expected, 1558810800000, status)


def test_status_change_during_acw_closes_it_instead_of_a_wrapup() -> None:
    prev = connect_snapshot([ENDED])
    cur = connect_snapshot([], status="Lunch", status_start="2019-05-25T18:55:30.000Z", status_type="CUSTOM")
    kinds = [e.event_type for e in SOURCE.translate(orjson.dumps(connect_record(prev, cur))).events if not e.restated]
    assert kinds == [EventType.AGENT_UNAVAILABLE]


def test_login_logout_heartbeat() -> None:
    login = SOURCE.translate(orjson.dumps(connect_record(None, None, event_type="LOGIN")))
    assert [(e.event_type, e.occurred_at_ms, e.agent_id) for e in login.events] == [
        (EventType.AGENT_LOGGED_IN, T_END, "agent-ARN")
    ]
    logout = SOURCE.translate(
        orjson.dumps(connect_record(connect_snapshot([ENDED]), connect_snapshot([]), event_type="LOGOUT"))
    )
    assert [e.event_type for e in logout.events if not e.restated] == [EventType.AGENT_LOGGED_OUT]  # no wrap-up
    beat = SOURCE.translate(
        orjson.dumps(
            connect_record(connect_snapshot([], status="Offline"), connect_snapshot([]), event_type="HEART_BEAT")
        )
    )
    assert beat.ignored and beat.events == () and beat.kind == "HEART_BEAT"


def test_fields_team_queue_channel_source_and_stable_ids() -> None:
    groups = {"Level1": {"ARN": "a1", "Name": "EMEA"}, "Level2": {"ARN": "a2", "Name": "Billing"}, "Level3": None}
    chat = connect_contact(cid="c-9", state="ENDED", start="2019-05-25T18:55:27.017Z", channel="tasks", queue="Q9")
    first = SOURCE.translate(orjson.dumps(connect_record(None, connect_snapshot([chat], groups=groups))))
    later = SOURCE.translate(
        orjson.dumps(connect_record(connect_snapshot([chat], groups=groups), connect_snapshot([]), event_id="other"))
    )
    disconnect = next(e for e in first.events if e.event_type is EventType.CONTACT_DISCONNECTED)
    assert (disconnect.team_id, disconnect.queue_id, disconnect.channel) == ("Billing", "Q9", Channel.TASK)
    assert disconnect.source.endswith("instance/aaaaaaaa-bbbb-cccc-dddd-111111111111")
    restated = next(e for e in later.events if e.event_type is EventType.CONTACT_DISCONNECTED)
    assert restated.event_id == disconnect.event_id and restated.restated and not disconnect.restated
    pinned = ConnectAgentSource(hierarchy_level=1).translate(
        orjson.dumps(connect_record(None, connect_snapshot([chat], groups=groups)))
    )
    assert {e.team_id for e in pinned.events} == {"EMEA"}


def test_unknown_channel_is_task_and_noted_unknown_state_is_noted() -> None:
    odd = connect_contact(cid="c-1", channel="HOLOGRAM", state="TELEPORTING")
    translation = SOURCE.translate(
        orjson.dumps(connect_record(None, connect_snapshot([odd, connect_contact(cid="c-2", channel="FAX")])))
    )
    assert "unknown_channel" in translation.notes and "unknown_contact_state" in translation.notes
    assert {e.channel for e in translation.events if e.contact_id} == {Channel.TASK}


def test_extra_fields_nulls_and_missing_optional_fields_are_accepted() -> None:
    contact = connect_contact(queue=None, connected=None)
    contact.update(InitiationMethod=None, NewVendorField={"x": 1})
    record = connect_record(None, connect_snapshot([contact], groups=None))
    record["CurrentAgentSnapshot"]["NextAgentStatus"] = None
    record["SomethingNew"] = [1, 2]
    [event, connect] = SOURCE.translate(orjson.dumps(record)).events
    assert event.event_type is EventType.AGENT_AVAILABLE
    assert (connect.event_type, connect.occurred_at_ms, connect.queue_id, connect.team_id) == (
        EventType.CONTACT_CONNECTED,
        T_CONNECT,
        None,
        None,
    )


BAD = [
    (b'{"EventType": "STATE_CHANGE", "AgentARN": "arn:x/agent/a"', "connect_unparseable"),
    (b"[1, 2]", "connect_not_an_object"),
    (orjson.dumps({**connect_record(None, None), "EventType": "TELEPORT"}), "connect_unknown_event_type"),
    (orjson.dumps({**connect_record(None, None), "EventTimestamp": 17}), "connect_bad_timestamp"),
    (orjson.dumps({**connect_record(None, None), "AgentARN": None}), "connect_missing_field"),
    (orjson.dumps({**connect_record(None, None), "EventId": 5}), "connect_wrong_type"),
    (orjson.dumps(connect_record(None, {"AgentStatus": None})), "connect_bad_snapshot"),
    (orjson.dumps(connect_record(None, "snapshot")), "connect_bad_snapshot"),
    (orjson.dumps(connect_record(None, connect_snapshot([{"State": "CONNECTED"}]))), "connect_bad_snapshot"),
]


@pytest.mark.parametrize(("data", "reason"), BAD)
def test_bad_records_are_rejected_with_a_reason_naming_the_format(data: bytes, reason: str) -> None:
    with pytest.raises(InvalidEvent) as err:
        SOURCE.translate(data)
    assert err.value.reason == reason


@pytest.mark.parametrize(
    "order", [[0, 1], [1, 0], [0, 1, 0, 1, 1], [1, 1, 0, 0]], ids=["in order", "reversed", "repeated", "both twice"]
)
def test_vendor_worked_example_gives_one_interval_of_5_005_s(tmp_path: Path, order: list[int]) -> None:
    records = vendor_acw_example()
    path = tmp_path / "in.jsonl"
    path.write_bytes(b"".join(records[i] + b"\n" for i in order))
    summary = replay([path], tmp_path / "out", RulesConfig(), intake=Intake(SOURCE))
    [interval] = [orjson.loads(line) for line in (tmp_path / "out" / "intervals.jsonl").read_bytes().splitlines()]
    assert (interval["contact_id"], interval["agent_id"], interval["acw_seconds"]) == (
        "ContactId-1",
        "agent-ARN",
        5.005,
    )
    assert (interval["disconnected_at"], interval["ended_at"]) == (T_END, T_GONE)
    assert interval["end_reason"] == "WRAPUP_COMPLETED" and interval["channel"] == "VOICE"
    if order == [0, 1]:  # in normal order the second record's restatements are neither duplicates nor late
        assert (summary.duplicates, summary.late, sum(summary.rejected.values())) == (0, 0, 0)
