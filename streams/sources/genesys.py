"""`genesys`: Genesys Cloud notifications, raw `{topicName, eventBody}` or inside an EventBridge envelope.

Genesys sends no connect in real time: the `user.end` detail event carries the contact's talk and hold
totals instead, which the disconnect passes on (`talk_ms`, `hold_ms`). Envelope times (`time`,
`detail.timestamp`) are delivery times and are never used as event time.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from streams.domain.events import CallEvent, EventType
from streams.domain.intervals import PRESENCE_STATUS, STATUS_SOURCE_ATTRIBUTE
from streams.domain.processor import REPORTED_ACW_ATTRIBUTE
from streams.sources import Translation, agent_key
from streams.sources.channels import GENESYS, map_channel
from streams.sources.fields import FieldReader, topic_pattern

FORMAT = "genesys"
_CONVERSATION = re.compile(r"^v2\.detail\.events\.conversation\.([^.]+)\.(user\.start|user\.end|acw)$")
_USER = re.compile(r"^v2\.users\.([^.]+)\.(routingStatus|presence)$")
_GENESYS_TOPIC = re.compile(r"^v2\.[A-Za-z0-9_.{}-]+$")
OFF_QUEUE = "OFF_QUEUE"

_read = FieldReader("genesys")


class GenesysSource:
    """Translates Genesys Cloud conversation detail events and user routing-status and presence notifications."""

    format = FORMAT
    routing_key = staticmethod(agent_key)

    def translate(self, data: bytes | Mapping[str, Any]) -> Translation:
        """user.start / user.end / acw, routingStatus and presence become events; other v2 topics are ignored."""
        record = _read.load(data)
        detail = record.get("detail")
        if isinstance(detail, Mapping) and "topicName" in detail:
            record = detail
        topic = _read.string(record, "topicName", required=True, limit=1024)
        assert topic is not None
        body = _read.obj(record, "eventBody", required=True)
        assert body is not None
        if m := _CONVERSATION.match(topic):
            return self._conversation(m.group(2), m.group(1), body)
        if m := _USER.match(topic):
            return self._user(m.group(2), m.group(1), body)
        if _GENESYS_TOPIC.match(topic):
            return Translation(topic_pattern(topic), ignored=True)  # customer, acd, flow, audits, ...
        raise _read.fail("unknown_topic", f"topicName {topic[:64]!r} is not a Genesys Cloud v2 topic")

    def _conversation(self, kind: str, topic_id: str, body: Mapping[str, Any]) -> Translation:
        t = _read.time_ms(body, "eventTime", required=True)
        conversation = _read.string(body, "conversationId") or topic_id
        agent_id = _read.string(body, "userId", required=True)
        assert t is not None and agent_id is not None
        notes: list[str] = []
        session = _read.string(body, "sessionId") or _read.string(body, "participantId") or str(t)
        channel = map_channel(GENESYS, _read.string(body, "mediaType"), notes)

        def event(event_type: EventType, **kw: Any) -> CallEvent:
            return CallEvent(
                f"{conversation}:{session}:{event_type.name}", event_type, t, agent_id, contact_id=conversation,
                queue_id=_read.string(body, "queueId"), channel=channel, **kw,
            )  # fmt: skip

        if kind == "user.start":
            return Translation(kind, (event(EventType.CONTACT_OFFERED),), notes=tuple(notes))
        if kind == "user.end":
            talk = _read.integer(body, "interactingDurationMs")
            if talk:
                hold = _read.integer(body, "heldDurationMs") or 0
                return Translation(kind, (event(EventType.CONTACT_DISCONNECTED, talk_ms=talk, hold_ms=hold),))
            return Translation(kind, (event(EventType.CONTACT_DISCONNECTED),), notes=tuple(notes))
        wrapup_ms = _read.integer(body, "wrapupDurationMs")
        attributes = {REPORTED_ACW_ATTRIBUTE: str(wrapup_ms)} if wrapup_ms is not None else {}
        wrapup = event(EventType.WRAPUP_COMPLETED, disposition_code=_read.string(body, "wrapupCode"),
                       attributes=attributes)  # fmt: skip
        return Translation(kind, (wrapup,), notes=tuple(notes))

    def _user(self, kind: str, topic_id: str, body: Mapping[str, Any]) -> Translation:
        agent_id = _read.string(body, "userId") or _read.string(body, "id") or topic_id
        if kind == "routingStatus":
            routing = _read.obj(body, "routingStatus", required=True)
            assert routing is not None
            status = (_read.string(routing, "status", required=True) or "").upper()
            t = _read.time_ms(routing, "startTime", required=True)
            assert t is not None
            event_id = f"routing:{status}:{t}"
            if status == "IDLE":
                return Translation(kind, (CallEvent(event_id, EventType.AGENT_AVAILABLE, t, agent_id),))
            if status == OFF_QUEUE:
                away = CallEvent(event_id, EventType.AGENT_UNAVAILABLE, t, agent_id, status=OFF_QUEUE,
                                 attributes={STATUS_SOURCE_ATTRIBUTE: PRESENCE_STATUS})  # fmt: skip
                return Translation(kind, (away,))
            return Translation(kind, ignored=True)  # INTERACTING, COMMUNICATING, NOT_RESPONDING: no ACW change
        definition = _read.obj(body, "presenceDefinition", required=True)
        assert definition is not None
        presence = _read.string(definition, "systemPresence", required=True)
        t = _read.time_ms(body, "modifiedDate", required=True)
        assert presence is not None and t is not None
        event_id = f"presence:{presence}:{t}"
        if presence.replace("_", "").replace(" ", "").lower() == "offline":
            return Translation(kind, (CallEvent(event_id, EventType.AGENT_LOGGED_OUT, t, agent_id),))
        return Translation(kind, (CallEvent(event_id, EventType.AGENT_LOGGED_IN, t, agent_id, status=presence),))
