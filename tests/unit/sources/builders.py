"""Vendor-shaped records for the adapter tests, built from the fields and values the vendors document."""

from __future__ import annotations

from typing import Any

import orjson

INSTANCE = "arn:aws:connect:us-east-1:012345678901:instance/aaaaaaaa-bbbb-cccc-dddd-111111111111"
AGENT_ARN = f"{INSTANCE}/agent/agent-ARN"


def connect_contact(
    cid: str = "ContactId-1",
    state: str = "CONNECTED",
    start: str = "2019-05-25T18:55:21.011Z",
    connected: str | None = "2019-05-25T18:55:21.011Z",
    channel: str = "VOICE",
    queue: str | None = "BasicQueue",
) -> dict[str, Any]:
    """One contact of a Connect agent snapshot."""
    return {
        "Channel": channel,
        "ConnectedToAgentTimestamp": connected,
        "ContactId": cid,
        "InitialContactId": None,
        "InitiationMethod": "OUTBOUND",
        "Queue": {"ARN": f"{INSTANCE}/queue/q", "Name": queue} if queue else None,
        "QueueTimestamp": None,
        "State": state,
        "StateStartTimestamp": start,
    }


def connect_snapshot(
    contacts: list[dict[str, Any]],
    status: str = "Available",
    status_start: str = "2019-05-25T18:43:59.049Z",
    status_type: str | None = None,
    groups: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A Connect agent snapshot (AgentStatus, Configuration, Contacts)."""
    agent_status: dict[str, Any] = {
        "ARN": f"{INSTANCE}/agent-state/{status}",
        "Name": status,
        "StartTimestamp": status_start,
    }
    if status_type:
        agent_status["Type"] = status_type
    return {
        "AgentStatus": agent_status,
        "Configuration": {
            "AgentHierarchyGroups": groups,
            "FirstName": "(Removed)",
            "LastName": "(Removed)",
            "RoutingProfile": {"Name": "Basic Routing Profile"},
            "Username": "(Removed)",
        },
        "Contacts": contacts,
    }


def connect_record(
    previous: dict[str, Any] | None,
    current: dict[str, Any] | None,
    at: str = "2019-05-25T18:55:27.017Z",
    event_type: str = "STATE_CHANGE",
    event_id: str = "EventId-1",
) -> dict[str, Any]:
    """A Connect `AgentEvent`."""
    return {
        "AWSAccountId": "012345678901",
        "AgentARN": AGENT_ARN,
        "CurrentAgentSnapshot": current,
        "EventId": event_id,
        "EventTimestamp": at,
        "EventType": event_type,
        "InstanceARN": INSTANCE,
        "PreviousAgentSnapshot": previous,
        "Version": "2019-05-25",
    }


def vendor_acw_example() -> list[bytes]:
    """The two records of the vendor's worked ACW example (determine-acw-time): 5.005 s of ACW."""
    connected = connect_contact()
    ended = connect_contact(state="ENDED", start="2019-05-25T18:55:27.017Z")
    first = connect_record(connect_snapshot([connected]), connect_snapshot([ended]), "2019-05-25T18:55:27.017Z")
    second = connect_record(
        connect_snapshot([ended]),
        connect_snapshot([]),
        "2019-05-25T18:55:32.022Z",
        event_id="477f2c4f-cd1a-4785-b1a8-97023dc1229d",
    )
    return [orjson.dumps(first), orjson.dumps(second)]


def genesys(topic: str, body: dict[str, Any], envelope: bool = False) -> bytes:
    """A Genesys notification, raw or inside an EventBridge envelope (whose times are delivery times)."""
    note = {"topicName": topic, "version": "2", "eventBody": body}
    if envelope:
        return orjson.dumps(
            {
                "version": "0",
                "id": "x",
                "detail-type": topic,
                "source": "aws.partner/genesys.com",
                "time": "2030-01-01T00:00:00Z",
                "detail": {**note, "metadata": {"CorrelationId": "c"}, "timestamp": "2030-01-01T00:00:00.000Z"},
            }
        )
    return orjson.dumps(note)


def twilio(event_type: str, **fields: Any) -> bytes:
    """A TaskRouter callback's parameters as a JSON object (form values are strings)."""
    record = {
        "EventType": event_type,
        "Sid": fields.pop("Sid", "EV" + "0" * 32),
        "AccountSid": "AC" + "1" * 32,
        "WorkspaceSid": "WS" + "2" * 32,
        "TimestampMs": fields.pop("TimestampMs", "1767225600000"),
        "WorkerSid": "WK" + "3" * 32,
        "WorkerAttributes": '{"team_name": "blue"}',
    }
    record.update(fields)
    return orjson.dumps({k: v for k, v in record.items() if v is not None})
