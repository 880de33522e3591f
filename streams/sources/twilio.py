"""`twilio-taskrouter`: Twilio TaskRouter event callbacks, their form parameters as one JSON object.

ACW per reservation is the time from `reservation.wrapup` to `reservation.completed`. TaskRouter has no
holds (they live in the voice conference), so hold is 0 and talk covers the whole connected time.
Task-level events are always ignored: a task reaches an agent only through a reservation, whose events
carry the agent and the same moments, so a task without reservation events never had ACW.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from streams.domain.events import CallEvent, EventType
from streams.sources import Translation, agent_key
from streams.sources.channels import TWILIO, map_channel
from streams.sources.fields import FieldReader

FORMAT = "twilio-taskrouter"
# Families of TaskRouter events; a type outside them is not a TaskRouter callback.
FAMILIES = ("reservation.", "task.", "worker.", "workflow.", "task-queue.", "workspace.", "activity.", "task-channel.")
_RESERVATION = {
    "reservation.created": EventType.CONTACT_OFFERED,
    "reservation.accepted": EventType.CONTACT_CONNECTED,
    "reservation.rejected": EventType.CONTACT_DISCONNECTED,
    "reservation.timeout": EventType.CONTACT_DISCONNECTED,
    "reservation.canceled": EventType.CONTACT_DISCONNECTED,
    "reservation.rescinded": EventType.CONTACT_DISCONNECTED,
    "reservation.wrapup": EventType.CONTACT_DISCONNECTED,
}
_NEVER_CONNECTED = frozenset({"reservation.rejected", "reservation.timeout", "reservation.canceled",
                              "reservation.rescinded"})  # fmt: skip

_read = FieldReader("twilio")


@dataclass(frozen=True)
class TwilioSettings:
    """Which attributes carry team and disposition, and how activity names map to agent states."""

    team_attribute: str = "team_name"
    disposition_path: str = "conversations.outcome"
    available_activities: frozenset[str] = frozenset({"Available"})
    offline_activities: frozenset[str] = frozenset({"Offline"})


class TwilioSource:
    """Translates TaskRouter reservation and worker activity callbacks."""

    format = FORMAT
    routing_key = staticmethod(agent_key)

    def __init__(self, settings: TwilioSettings | None = None) -> None:
        self.settings = settings or TwilioSettings()

    def translate(self, data: bytes | Mapping[str, Any]) -> Translation:
        """Reservation events become contact events, activity updates agent events; other events are ignored."""
        record = _read.load(data)
        kind = _read.string(record, "EventType", required=True)
        assert kind is not None
        if not kind.startswith(FAMILIES):
            raise _read.fail("unknown_event_type", f"EventType {kind[:64]!r} is not a TaskRouter event")
        if not (kind.startswith("reservation.") or kind == "worker.activity.update"):
            return Translation(kind, ignored=True)
        sid = _read.string(record, "Sid", required=True)
        agent_id = _read.string(record, "WorkerSid", required=True)
        t = _read.time_ms(record, "TimestampMs")
        if t is None:
            seconds = _read.integer(record, "Timestamp")
            if seconds is None:
                raise _read.fail("missing_field", "TimestampMs or Timestamp is required")
            t = _read.time_ms({"Timestamp": seconds * 1000}, "Timestamp")
        assert sid is not None and agent_id is not None and t is not None
        team = _json_path(_json_attr(record, "WorkerAttributes"), self.settings.team_attribute)
        source = _read.string(record, "WorkspaceSid")
        if kind == "worker.activity.update":
            return Translation(kind, self._activity(record, sid, agent_id, t, team, source))
        if kind not in _RESERVATION and kind != "reservation.completed":
            return Translation(kind, ignored=True)  # reservation.failed and newer types: no agent work
        notes: list[str] = []
        contact_id = _read.string(record, "TaskSid", required=True)
        channel = map_channel(TWILIO, _read.string(record, "TaskChannelUniqueName"), notes)

        def event(event_type: EventType, name: str, **kw: Any) -> CallEvent:
            return CallEvent(
                f"{sid}:{event_type.name}", event_type, t, agent_id, contact_id=contact_id, team_id=team,
                queue_id=_read.string(record, "TaskQueueName"), source=source, channel=channel, **kw,
            )  # fmt: skip

        if kind != "reservation.completed":
            return Translation(kind, (event(_RESERVATION[kind], kind),), notes=tuple(notes))
        # Only the wrap-up opens ACW: a reservation completed straight from accepted never reported wrap-up,
        # and a restated disconnect here would open a phantom interval after a status change had closed it.
        outcome = _json_path(_json_attr(record, "TaskAttributes"), self.settings.disposition_path)
        return Translation(
            kind, (event(EventType.WRAPUP_COMPLETED, kind, disposition_code=outcome),), notes=tuple(notes)
        )

    def _activity(
        self, record: Mapping[str, Any], sid: str, agent_id: str, t: int, team: str | None, source: str | None
    ) -> tuple[CallEvent, ...]:
        name = _read.string(record, "WorkerActivityName", required=True)
        previous = _read.string(record, "WorkerPreviousActivityName")
        assert name is not None
        s = self.settings

        def event(event_type: EventType, status: str | None = None) -> CallEvent:
            return CallEvent(f"{sid}:{event_type.name}", event_type, t, agent_id, team_id=team, status=status,
                             source=source)  # fmt: skip

        events = []
        if previous in s.offline_activities and name not in s.offline_activities:
            events.append(event(EventType.AGENT_LOGGED_IN))
        if name in s.available_activities:
            events.append(event(EventType.AGENT_AVAILABLE))
        elif name in s.offline_activities:
            events.append(event(EventType.AGENT_LOGGED_OUT))
        else:
            events.append(event(EventType.AGENT_UNAVAILABLE, name))
        return tuple(events)


def _json_attr(record: Mapping[str, Any], name: str) -> Mapping[str, Any] | None:
    """A JSON-string attribute (TaskRouter sends attributes as JSON text), or None when absent."""
    value = record.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, Mapping):
        return value
    if not isinstance(value, str):
        raise _read.fail("wrong_type", f"{name} must be a JSON string")
    try:
        parsed = orjson.loads(value)
    except orjson.JSONDecodeError:
        raise _read.fail("wrong_type", f"{name} is not JSON") from None
    return parsed if isinstance(parsed, Mapping) else None


def _json_path(obj: Mapping[str, Any] | None, path: str) -> str | None:
    """The string at a dotted path (`conversations.outcome`), or None."""
    value: Any = obj
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    if value is None or value == "":
        return None
    return value if isinstance(value, str) else str(value)
