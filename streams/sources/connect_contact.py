"""`connect-contact-events`: Amazon Connect contact events (EventBridge), with or without the envelope.

Keys are read in either case style (`agentInfo` / `AgentInfo`), channels in any case. EventBridge delivers
unordered and best effort: a missing COMPLETED leaves the contact's ACW open until it times out.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from streams.domain.events import CallEvent, EventType
from streams.domain.processor import REPORTED_ACW_ATTRIBUTE
from streams.sources import Translation
from streams.sources.channels import CONNECT, map_channel
from streams.sources.connect_agent import agent_arn_key
from streams.sources.fields import FieldReader, last_segment, with_lower_keys

FORMAT = "connect-contact-events"
DETAIL_TYPE = "Amazon Connect Contact Event"
NO_AGENT = "no_agent"

_read = FieldReader("connect_contact")


class ConnectContactSource:
    """Translates Amazon Connect contact events: connected to agent, disconnected, completed (with ACW)."""

    format = FORMAT
    routing_key = staticmethod(agent_arn_key)  # the partition of the same agent's agent events

    def translate(self, data: bytes | Mapping[str, Any]) -> Translation:
        """CONNECTED_TO_AGENT, DISCONNECTED and COMPLETED become events; every other type is ignored."""
        record = with_lower_keys(_read.load(data))
        if "detail" in record and "detail-type" in record:
            if record["detail-type"] != DETAIL_TYPE:
                raise _read.fail("unknown_detail_type", f"detail-type {str(record['detail-type'])[:64]!r}")
            record = _read.obj(record, "detail", required=True)
            assert record is not None
        kind = _read.string(record, "eventType", required=True)
        assert kind is not None
        if kind not in ("CONNECTED_TO_AGENT", "DISCONNECTED", "COMPLETED"):
            return Translation(kind, ignored=True)
        contact_id = _read.string(record, "contactId", required=True, limit=200)
        agent = _read.obj(record, "agentInfo")
        agent_arn = _read.string(agent, "agentArn", limit=1024) if agent else None
        if agent_arn is None or not last_segment(agent_arn):
            if kind == "CONNECTED_TO_AGENT":
                raise _read.fail("missing_field", "agentInfo.agentArn is required for CONNECTED_TO_AGENT")
            return Translation(kind, ignored=True, notes=(NO_AGENT,))  # never reached an agent: no ACW
        assert agent is not None and contact_id is not None
        notes: list[str] = []
        queue = _read.obj(record, "queueInfo")
        queue_arn = _read.string(queue, "queueArn", limit=1024) if queue else None

        def event(kind_: EventType, t: int, **kw: Any) -> CallEvent:
            return CallEvent(
                f"{contact_id}:{kind_.name}", kind_, t, last_segment(agent_arn), contact_id=contact_id,
                queue_id=last_segment(queue_arn) if queue_arn else None, channel=channel,
                source=_read.string(record, "instanceArn", limit=1024), **kw,
            )  # fmt: skip

        channel = map_channel(CONNECT, _read.string(record, "channel"), notes)
        if kind == "CONNECTED_TO_AGENT":
            t = _read.time_ms(agent, "connectedToAgentTimestamp", required=True)
            assert t is not None
            return Translation(kind, (event(EventType.CONTACT_CONNECTED, t),), notes=tuple(notes))
        if kind == "DISCONNECTED":
            t = _read.time_ms(record, "disconnectTimestamp", required=True)
            assert t is not None
            return Translation(kind, (event(EventType.CONTACT_DISCONNECTED, t),), notes=tuple(notes))
        start = _read.time_ms(agent, "afterContactWorkStartTimestamp")
        end = _read.time_ms(agent, "afterContactWorkEndTimestamp")
        if start is None or end is None:
            disconnected = _read.time_ms(record, "disconnectTimestamp")
            if disconnected is None:
                return Translation(kind, ignored=True, notes=tuple(notes))
            start = end = disconnected  # completed without ACW: it follows the disconnect at once
        duration_s = _read.integer(agent, "afterContactWorkDuration")
        reported = {REPORTED_ACW_ATTRIBUTE: str(duration_s * 1000)} if duration_s is not None else {}
        events = (
            event(EventType.CONTACT_DISCONNECTED, start, restated=True),
            event(EventType.WRAPUP_COMPLETED, max(start, end), attributes=reported),
        )
        return Translation(kind, events, notes=tuple(notes))
