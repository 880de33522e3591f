"""`twilio-taskrouter`: reservation and worker activity callbacks."""

from __future__ import annotations

import pytest

from streams.domain.events import Channel, EventType, InvalidEvent
from streams.domain.processor import Processor, RulesConfig
from streams.sources.twilio import TwilioSettings, TwilioSource
from tests.unit.sources.builders import twilio

SOURCE = TwilioSource()
T = 1767225600000
RES = {
    "TaskSid": "WT1",
    "ReservationSid": "WR1",
    "TaskQueueName": "Support",
    "TaskChannelUniqueName": "voice",
    "TaskAttributes": '{"conversations": {"outcome": "Resolved"}}',
}

RESERVATIONS = [
    ("reservation.created", EventType.CONTACT_OFFERED),
    ("reservation.accepted", EventType.CONTACT_CONNECTED),
    ("reservation.rejected", EventType.CONTACT_DISCONNECTED),
    ("reservation.timeout", EventType.CONTACT_DISCONNECTED),
    ("reservation.canceled", EventType.CONTACT_DISCONNECTED),
    ("reservation.rescinded", EventType.CONTACT_DISCONNECTED),
    ("reservation.wrapup", EventType.CONTACT_DISCONNECTED),
    ("reservation.completed", EventType.WRAPUP_COMPLETED),
]


@pytest.mark.parametrize(("kind", "expected"), RESERVATIONS)
def test_reservation_events(kind: str, expected: EventType) -> None:
    [event] = SOURCE.translate(twilio(kind, Sid="EVa", **RES)).events
    assert (event.event_type, event.occurred_at_ms, event.contact_id, event.queue_id, event.team_id, event.channel) == (
        expected,
        T,
        "WT1",
        "Support",
        "blue",
        Channel.VOICE,
    )
    assert event.event_id == f"EVa:{expected.name}" and event.agent_id == "WK" + "3" * 32
    if kind == "reservation.completed":
        assert event.disposition_code == "Resolved"


def test_acw_runs_from_wrapup_to_completed_with_no_hold_and_never_connected_offers_give_none() -> None:
    proc = Processor(RulesConfig(allowed_lateness_ms=0))
    steps = [
        ("reservation.created", 0),
        ("reservation.accepted", 5000),
        ("reservation.wrapup", 65000),
        ("reservation.completed", 95000),
    ]
    missed = [("reservation.created", 100000), ("reservation.timeout", 115000)]
    intervals = []
    for i, (kind, dt) in enumerate(steps + missed):
        fields = {**RES, "TaskSid": "WT2"} if i >= len(steps) else RES
        for event in SOURCE.translate(twilio(kind, Sid=f"EV{i}", TimestampMs=str(T + dt), **fields)).events:
            intervals += proc.offer(event).intervals
    [interval] = intervals + proc.finish()
    assert (interval.talk_seconds, interval.hold_seconds, interval.acw_seconds) == (60.0, 0.0, 30.0)
    assert proc.open_intervals() == []


@pytest.mark.parametrize(
    ("channel", "expected", "noted"),
    [
        ("voice", Channel.VOICE, False),
        ("chat", Channel.CHAT, False),
        ("sms", Channel.CHAT, False),
        ("messaging", Channel.CHAT, False),
        ("email", Channel.EMAIL, False),
        ("default", Channel.TASK, False),
        ("video", Channel.TASK, True),
    ],
)
def test_channels(channel: str, expected: Channel, noted: bool) -> None:
    translation = SOURCE.translate(twilio("reservation.created", **{**RES, "TaskChannelUniqueName": channel}))
    assert translation.events[0].channel is expected and ("unknown_channel" in translation.notes) == noted


def test_activity_updates() -> None:
    def kinds(name: str, previous: str, source: TwilioSource = SOURCE):
        events = source.translate(
            twilio("worker.activity.update", WorkerActivityName=name, WorkerPreviousActivityName=previous)
        ).events
        return [(e.event_type, e.status) for e in events]

    assert kinds("Available", "Offline") == [(EventType.AGENT_LOGGED_IN, None), (EventType.AGENT_AVAILABLE, None)]
    assert kinds("Break", "Available") == [(EventType.AGENT_UNAVAILABLE, "Break")]
    assert kinds("Offline", "Break") == [(EventType.AGENT_LOGGED_OUT, None)]
    custom = TwilioSource(
        TwilioSettings(available_activities=frozenset({"Ready", "Idle"}), offline_activities=frozenset({"Gone"}))
    )
    assert kinds("Ready", "Gone", custom) == [(EventType.AGENT_LOGGED_IN, None), (EventType.AGENT_AVAILABLE, None)]
    assert kinds("Available", "Ready", custom) == [(EventType.AGENT_UNAVAILABLE, "Available")]


def test_time_in_seconds_when_no_milliseconds_team_and_disposition_paths() -> None:
    source = TwilioSource(TwilioSettings(team_attribute="team_id", disposition_path="wrap.code"))
    record = twilio(
        "reservation.completed",
        TimestampMs=None,
        Timestamp="1767225601",
        WorkerAttributes='{"team_id": 7}',
        **{**RES, "TaskAttributes": '{"wrap": {"code": "SALE"}}'},
    )
    [event] = source.translate(record).events
    assert (event.occurred_at_ms, event.team_id, event.disposition_code) == (T + 1000, "7", "SALE")


@pytest.mark.parametrize(
    "kind", ["task.created", "task.wrapup", "task.completed", "workflow.target-matched", "reservation.failed"]
)
def test_task_level_and_other_events_are_ignored(kind: str) -> None:
    translation = SOURCE.translate(twilio(kind, **RES))
    assert translation.ignored and translation.kind == kind


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"EventType=reservation.created&Sid=EV1", "twilio_unparseable"),
        (twilio("teleport.started"), "twilio_unknown_event_type"),
        (twilio("reservation.created", WorkerSid=None, **RES), "twilio_missing_field"),
        (twilio("reservation.created", TimestampMs=None, Timestamp=None, **RES), "twilio_missing_field"),
        (twilio("reservation.created", TimestampMs="12", **RES), "twilio_bad_timestamp"),
        (twilio("reservation.completed", **{**RES, "TaskAttributes": "{not json"}), "twilio_wrong_type"),
        (twilio("reservation.created", **{**RES, "TaskSid": None}), "twilio_missing_field"),
    ],
)
def test_bad_records(data: bytes, reason: str) -> None:
    with pytest.raises(InvalidEvent) as err:
        SOURCE.translate(data)
    assert err.value.reason == reason
