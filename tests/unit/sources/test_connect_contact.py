"""`connect-contact-events`: the EventBridge contact events, with or without envelope, in either key case."""

from __future__ import annotations

import orjson
import pytest

from streams.domain.events import Channel, EventType, InvalidEvent
from streams.domain.processor import REPORTED_ACW_ATTRIBUTE
from streams.sources.connect_contact import ConnectContactSource

SOURCE = ConnectContactSource()
AGENT = "arn:aws::connect:us-west-2:123456789012:instance/i-1/agent/12345678-1234-1234-1234-123456789012"


def detail(event_type: str, **fields):
    return {
        "eventType": event_type,
        "contactId": "11111111-1111-1111-1111-111111111111",
        "channel": "Voice",
        "instanceArn": "arn:aws::connect:us-west-2:123456789012:instance/i-1",
        "queueInfo": {"queueArn": "arn:aws::connect:us-west-2:1:instance/i-1/queue/q-7"},
        **fields,
    }


def envelope(d):
    return {
        "version": "0",
        "id": "abc",
        "detail-type": "Amazon Connect Contact Event",
        "source": "aws.connect",
        "time": "2021-08-04T17:43:48Z",
        "detail": d,
    }


def test_connected_to_agent_at_the_agent_connect_time_keys_in_either_case() -> None:
    for info in (
        {"agentArn": AGENT, "connectedToAgentTimestamp": "2021-08-04T17:29:09.000Z"},
        {"AgentArn": AGENT, "ConnectedToAgentTimestamp": "2021-08-04T17:29:09.000Z"},
    ):
        for record in (
            detail("CONNECTED_TO_AGENT", agentInfo=info),
            envelope(detail("CONNECTED_TO_AGENT", AgentInfo=info)),
        ):
            [e] = SOURCE.translate(orjson.dumps(record)).events
            assert (e.event_type, e.occurred_at_ms, e.agent_id) == (
                EventType.CONTACT_CONNECTED,
                1628098149000,
                "12345678-1234-1234-1234-123456789012",
            )
            assert (e.channel, e.queue_id) == (Channel.VOICE, "q-7")


def test_disconnected_at_disconnect_time_envelope_time_ignored() -> None:
    record = envelope(
        detail("DISCONNECTED", disconnectTimestamp="2021-08-04T17:18:37.000Z", AgentInfo={"AgentArn": AGENT})
    )
    [e] = SOURCE.translate(orjson.dumps(record)).events
    assert (e.event_type, e.occurred_at_ms) == (EventType.CONTACT_DISCONNECTED, 1628097517000)


def test_completed_with_acw_times_restates_the_disconnect_and_ends_acw() -> None:
    info = {
        "agentArn": AGENT,
        "afterContactWorkStartTimestamp": "2021-08-04T17:40:00Z",
        "afterContactWorkEndTimestamp": "2021-08-04T17:42:30Z",
        "afterContactWorkDuration": 150,
    }
    disconnect, wrapup = SOURCE.translate(orjson.dumps(detail("COMPLETED", agentInfo=info))).events
    assert (disconnect.event_type, disconnect.occurred_at_ms, disconnect.restated) == (
        EventType.CONTACT_DISCONNECTED,
        1628098800000,
        True,
    )
    assert (wrapup.event_type, wrapup.occurred_at_ms) == (EventType.WRAPUP_COMPLETED, 1628098950000)
    assert wrapup.attributes[REPORTED_ACW_ATTRIBUTE] == "150000"
    same = SOURCE.translate(
        orjson.dumps(detail("DISCONNECTED", disconnectTimestamp="2021-08-04T17:40:00Z", agentInfo={"agentArn": AGENT}))
    ).events[0]
    assert same.event_id == disconnect.event_id  # "if not already seen": the core drops the restatement


@pytest.mark.parametrize("kind", ["INITIATED", "CONNECTED_TO_SYSTEM", "QUEUED", "CONTACT_DATA_UPDATED", "NEW_ONE"])
def test_other_types_are_ignored_by_kind(kind: str) -> None:
    translation = SOURCE.translate(orjson.dumps(envelope(detail(kind))))
    assert translation.ignored and translation.kind == kind and not translation.events


def test_a_disconnect_that_never_reached_an_agent_is_ignored_and_noted() -> None:
    translation = SOURCE.translate(orjson.dumps(detail("DISCONNECTED", disconnectTimestamp="2021-08-04T17:18:37.000Z")))
    assert translation.ignored and translation.notes == ("no_agent",)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b'{"eventType": "DISCONNECTED",', "connect_contact_unparseable"),
        (
            orjson.dumps({**envelope(detail("QUEUED")), "detail-type": "Amazon Connect Agent Event"}),
            "connect_contact_unknown_detail_type",
        ),
        (orjson.dumps({"contactId": "c"}), "connect_contact_missing_field"),
        (orjson.dumps(detail("CONNECTED_TO_AGENT")), "connect_contact_missing_field"),
        (
            orjson.dumps(detail("DISCONNECTED", agentInfo={"agentArn": AGENT}, disconnectTimestamp="yesterday")),
            "connect_contact_bad_timestamp",
        ),
        (orjson.dumps(detail("DISCONNECTED", agentInfo="me")), "connect_contact_wrong_type"),
    ],
)
def test_bad_records(data: bytes, reason: str) -> None:
    with pytest.raises(InvalidEvent) as err:
        SOURCE.translate(data)
    assert err.value.reason == reason
