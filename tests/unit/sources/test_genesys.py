"""`genesys`: conversation detail events and user notifications, raw or in an EventBridge envelope."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from streams.domain.events import Channel, EventType, InvalidEvent
from streams.domain.processor import Processor, RulesConfig
from streams.sources.genesys import GenesysSource
from tests.unit.sources.builders import genesys

SOURCE = GenesysSource()
CONV = "2f7bf00a-0fc2-4d6a-9b56-92238191433e"
USER = "278522be-1683-4877-8257-4164a177be89"
T = 1649237444949
BODY = {
    "eventTime": T,
    "conversationId": CONV,
    "participantId": "p-1",
    "sessionId": "s-1",
    "mediaType": "VOICE",
    "direction": "INBOUND",
    "userId": USER,
    "queueId": "q-1",
    "divisionId": "d-1",
}


def one(topic: str, body: dict, envelope: bool = False):
    [event] = SOURCE.translate(genesys(topic, body, envelope)).events
    return event


@pytest.mark.parametrize("envelope", [False, True], ids=["raw", "eventbridge"])
def test_conversation_events(envelope: bool) -> None:
    start = one(f"v2.detail.events.conversation.{CONV}.user.start", BODY, envelope)
    assert (
        start.event_type,
        start.occurred_at_ms,
        start.contact_id,
        start.agent_id,
        start.queue_id,
        start.channel,
    ) == (EventType.CONTACT_OFFERED, T, CONV, USER, "q-1", Channel.VOICE)
    end = one(
        f"v2.detail.events.conversation.{CONV}.user.end",
        {**BODY, "eventTime": T + 60000, "interactingDurationMs": 50000, "heldDurationMs": 7000},
        envelope,
    )
    assert (end.event_type, end.occurred_at_ms, end.talk_ms, end.hold_ms) == (
        EventType.CONTACT_DISCONNECTED,
        T + 60000,
        50000,
        7000,
    )
    acw = one(
        f"v2.detail.events.conversation.{CONV}.acw",
        {**BODY, "eventTime": T + 90000, "wrapupCode": "ININ-WRAP-UP-TIMEOUT", "wrapupDurationMs": 30000},
        envelope,
    )
    assert (acw.event_type, acw.occurred_at_ms, acw.disposition_code) == (
        EventType.WRAPUP_COMPLETED,
        T + 90000,
        "ININ-WRAP-UP-TIMEOUT",
    )


@pytest.mark.parametrize("interacting", [0, None])
def test_a_contact_never_interacting_has_no_talk(interacting) -> None:
    body = {**BODY, "interactingDurationMs": interacting} if interacting is not None else BODY
    end = one(f"v2.detail.events.conversation.{CONV}.user.end", body)
    assert end.talk_ms is None and end.hold_ms is None


def test_platform_talk_and_hold_make_the_interval_and_a_missing_acw_code_is_null() -> None:
    proc = Processor(RulesConfig(allowed_lateness_ms=0))
    topic = f"v2.detail.events.conversation.{CONV}"
    for record in (
        genesys(f"{topic}.user.start", BODY),
        genesys(
            f"{topic}.user.end",
            {**BODY, "eventTime": T + 60000, "interactingDurationMs": 50000, "heldDurationMs": 7000},
        ),
        genesys(f"{topic}.acw", {**BODY, "eventTime": T + 90000, "wrapupDurationMs": 33000}),
    ):
        for event in SOURCE.translate(record).events:
            proc.offer(event)
    [interval] = proc.finish()
    assert (interval.talk_seconds, interval.hold_seconds, interval.acw_seconds, interval.handle_seconds) == (
        50.0,
        7.0,
        30.0,
        87.0,
    )
    assert interval.disposition_code is None
    assert proc.counts["acw_disagreements"] == 1  # the platform said 33 s: counted, ours kept


def test_an_offer_ending_without_interaction_gives_no_interval() -> None:
    proc = Processor(RulesConfig(allowed_lateness_ms=0))
    topic = f"v2.detail.events.conversation.{CONV}"
    for record in (genesys(f"{topic}.user.start", BODY), genesys(f"{topic}.user.end", {**BODY, "eventTime": T + 9000})):
        for event in SOURCE.translate(record).events:
            proc.offer(event)
    assert proc.finish() == [] and proc.open_intervals() == []


MEDIA = [
    ("CALLBACK", Channel.VOICE),
    ("MESSAGE", Channel.CHAT),
    ("VIDEO", Channel.VOICE),
    ("EMAIL", Channel.EMAIL),
    ("COBROWSE", Channel.TASK),
    ("HOLOGRAM", Channel.TASK),
]


@pytest.mark.parametrize(("media", "channel"), MEDIA)
def test_media_types_map_by_the_table_and_unknown_ones_are_task_and_noted(media: str, channel: Channel) -> None:
    translation = SOURCE.translate(
        genesys(f"v2.detail.events.conversation.{CONV}.user.start", {**BODY, "mediaType": media})
    )
    assert translation.events[0].channel is channel
    assert ("unknown_channel" in translation.notes) == (media == "HOLOGRAM")


def test_routing_status_and_presence() -> None:
    idle = one(
        f"v2.users.{USER}.routingStatus", {"routingStatus": {"status": "IDLE", "startTime": "2022-04-06T09:30:45.013Z"}}
    )
    assert (idle.event_type, idle.agent_id, idle.occurred_at_ms) == (EventType.AGENT_AVAILABLE, USER, 1649237445013)
    off = one(
        f"v2.users.{USER}.routingStatus",
        {"routingStatus": {"status": "OFF_QUEUE", "startTime": "2022-04-06T09:31:00Z"}},
    )
    assert (off.event_type, off.status) == (EventType.AGENT_UNAVAILABLE, "OFF_QUEUE")
    busy = SOURCE.translate(
        genesys(
            f"v2.users.{USER}.routingStatus",
            {"routingStatus": {"status": "INTERACTING", "startTime": "2022-04-06T09:31:00Z"}},
        )
    )
    assert busy.ignored and not busy.events
    for name in ("Offline", "OFFLINE", "offline"):
        out = one(
            f"v2.users.{USER}.presence",
            {"presenceDefinition": {"id": "x", "systemPresence": name}, "modifiedDate": "2022-04-06T09:40:00Z"},
        )
        assert out.event_type is EventType.AGENT_LOGGED_OUT
    back = one(
        f"v2.users.{USER}.presence",
        {"presenceDefinition": {"id": "x", "systemPresence": "Break"}, "modifiedDate": "2022-04-06T09:41:00Z"},
    )
    assert (back.event_type, back.status) == (EventType.AGENT_LOGGED_IN, "Break")


def test_off_queue_takes_the_latest_presence_as_its_status() -> None:
    proc = Processor(RulesConfig(allowed_lateness_ms=0))
    topic = f"v2.detail.events.conversation.{CONV}"
    records = [
        genesys(f"{topic}.user.start", BODY),
        genesys(f"{topic}.user.end", {**BODY, "eventTime": T + 60000, "interactingDurationMs": 50000}),
        genesys(
            f"v2.users.{USER}.presence",
            {"presenceDefinition": {"id": "x", "systemPresence": "Meal"}, "modifiedDate": T + 70000},
        ),
        genesys(f"v2.users.{USER}.routingStatus", {"routingStatus": {"status": "OFF_QUEUE", "startTime": T + 70000}}),
    ]
    for record in records:
        for event in SOURCE.translate(record).events:
            proc.offer(event)
    [interval] = proc.finish()
    assert (interval.end_reason.value, interval.status, interval.acw_seconds) == ("STATUS_CHANGE", "Meal", 10.0)


def test_other_topics_are_ignored_by_their_pattern_and_vendor_samples_read(tmp_path: Path) -> None:
    customer = SOURCE.translate(genesys(f"v2.detail.events.conversation.{CONV}.customer.end", BODY, envelope=True))
    assert customer.ignored and customer.kind == "v2.detail.events.conversation.{id}.customer.end"
    audit = SOURCE.translate(genesys(f"v2.audits.entitytype.UserPresence.entityid.{USER}", {"action": "Update"}))
    assert audit.ignored and audit.kind == "v2.audits.entitytype.UserPresence.entityid.{id}"


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b'{"topicName": "v2.users', "genesys_unparseable"),
        (genesys("presence-of-mind", {}), "genesys_unknown_topic"),
        (orjson.dumps({"eventBody": {}}), "genesys_missing_field"),
        (
            genesys(f"v2.detail.events.conversation.{CONV}.user.end", {**BODY, "eventTime": "soon"}),
            "genesys_bad_timestamp",
        ),
        (
            genesys(f"v2.detail.events.conversation.{CONV}.user.end", {**BODY, "interactingDurationMs": "lots"}),
            "genesys_wrong_type",
        ),
        (
            genesys(f"v2.detail.events.conversation.{CONV}.user.start", {**BODY, "userId": None}),
            "genesys_missing_field",
        ),
        (orjson.dumps({"topicName": f"v2.users.{USER}.presence", "eventBody": [1]}), "genesys_wrong_type"),
    ],
)
def test_bad_records(data: bytes, reason: str) -> None:
    with pytest.raises(InvalidEvent) as err:
        SOURCE.translate(data)
    assert err.value.reason == reason
