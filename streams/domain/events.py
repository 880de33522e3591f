"""Call-lifecycle events: the input contract of `schemas/call_event.avsc` as immutable records."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from enum import IntEnum, StrEnum
from types import MappingProxyType
from typing import Any, Literal, NamedTuple, overload

_NO_ATTRIBUTES: Mapping[str, str] = MappingProxyType({})


class EventType(IntEnum):
    """Kinds of call event; the value order is the tie-break order for equal timestamps."""

    AGENT_LOGGED_IN = 0
    CONTACT_OFFERED = 1
    CONTACT_CONNECTED = 2
    HOLD_STARTED = 3
    HOLD_ENDED = 4
    CONTACT_DISCONNECTED = 5
    WRAPUP_COMPLETED = 6
    AGENT_AVAILABLE = 7
    AGENT_UNAVAILABLE = 8
    AGENT_LOGGED_OUT = 9
    # What a symbol added by a newer writer schema reads as (the Avro enum's default): ignored and counted.
    UNKNOWN = 10


class Channel(StrEnum):
    """Contact channel; an event without one means VOICE unless earlier events said otherwise."""

    VOICE = "VOICE"
    CHAT = "CHAT"
    EMAIL = "EMAIL"
    TASK = "TASK"


CONTACT_EVENTS = frozenset(
    {
        EventType.CONTACT_OFFERED,
        EventType.CONTACT_CONNECTED,
        EventType.HOLD_STARTED,
        EventType.HOLD_ENDED,
        EventType.CONTACT_DISCONNECTED,
        EventType.WRAPUP_COMPLETED,
    }
)

EVENT_TYPES_BY_NAME = {t.name: t for t in EventType}
CHANNELS_BY_NAME = {c.value: c for c in Channel}

# 2000-01-01 and 2100-01-01 in epoch ms: outside is a unit mistake (seconds) or garbage.
MIN_TIMESTAMP_MS = 946_684_800_000
MAX_TIMESTAMP_MS = 4_102_444_800_000
MAX_ID_LENGTH = 256
MAX_TEXT_LENGTH = 4096
OPTIONAL_STRINGS = ("contact_id", "team_id", "queue_id", "status", "disposition_code", "source")


class CallEvent(NamedTuple):
    """One validated call event (immutable); `occurred_at_ms` is event time in epoch milliseconds (UTC)."""

    event_id: str
    event_type: EventType
    occurred_at_ms: int
    agent_id: str
    contact_id: str | None = None
    team_id: str | None = None
    queue_id: str | None = None
    status: str | None = None
    disposition_code: str | None = None
    source: str | None = None
    channel: Channel | None = None
    attributes: Mapping[str, str] = _NO_ATTRIBUTES
    # Platform-reported talk and hold of a CONTACT_DISCONNECTED (the contact then counts as connected).
    talk_ms: int | None = None
    hold_ms: int | None = None
    # Repeats what an earlier record of the source reported: dropped silently when already seen or late.
    restated: bool = False

    def sort_key(self) -> tuple[int, int, str]:
        """The total order events are applied in: time, then type order, then id."""
        return (self.occurred_at_ms, self.event_type, self.event_id)

    def to_record(self) -> dict[str, Any]:
        """The Avro/JSON record of this event (schema field names, epoch-ms timestamp).

        The platform fields (`talk_ms`, `hold_ms`, `restated`) appear only when set: records of events
        without them stay as they were before those fields existed, and Avro fills in their defaults.
        """
        record = {
            "event_id": self.event_id,
            "event_type": self.event_type.name,
            "occurred_at": self.occurred_at_ms,
            "agent_id": self.agent_id,
            "contact_id": self.contact_id,
            "team_id": self.team_id,
            "queue_id": self.queue_id,
            "status": self.status,
            "disposition_code": self.disposition_code,
            "source": self.source,
            "channel": self.channel.value if self.channel is not None else None,
            "attributes": dict(self.attributes),
        }
        if self.talk_ms is not None or self.hold_ms is not None:
            record["talk_ms"] = self.talk_ms
            record["hold_ms"] = self.hold_ms
        if self.restated:
            record["restated"] = True
        return record


class InvalidEvent(ValueError):
    """A record that is not a valid CallEvent; `reason` is a stable machine-readable code."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def parse_timestamp_ms(value: Any) -> int:
    """Epoch milliseconds from an int (ms) or an ISO-8601 string with an offset."""
    if isinstance(value, bool):
        raise InvalidEvent("wrong_type", "occurred_at must be epoch milliseconds or an ISO-8601 string")
    if isinstance(value, int):
        ms = value
    elif isinstance(value, datetime):
        if value.tzinfo is None:
            raise InvalidEvent("bad_timestamp", "occurred_at has no UTC offset")
        ms = _datetime_ms(value)
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise InvalidEvent("bad_timestamp", f"occurred_at is not ISO-8601: {value[:64]!r}") from None
        if parsed.tzinfo is None:
            raise InvalidEvent("bad_timestamp", "occurred_at has no UTC offset")
        ms = _datetime_ms(parsed)
    else:
        raise InvalidEvent("wrong_type", "occurred_at must be epoch milliseconds or an ISO-8601 string")
    if not MIN_TIMESTAMP_MS <= ms < MAX_TIMESTAMP_MS:
        raise InvalidEvent(
            "timestamp_out_of_range", f"occurred_at {ms} is not epoch ms between 2000 and 2100 (seconds?)"
        )
    return ms


def _datetime_ms(value: datetime) -> int:
    return round(value.timestamp() * 1000)


@overload
def _string(record: Mapping[str, Any], name: str, *, required: Literal[True], limit: int) -> str: ...
@overload
def _string(record: Mapping[str, Any], name: str, *, required: Literal[False], limit: int) -> str | None: ...
def _string(record: Mapping[str, Any], name: str, *, required: bool, limit: int) -> str | None:
    value = record.get(name)
    if value is None:
        if required:
            raise InvalidEvent("missing_field", f"{name} is required")
        return None
    if not isinstance(value, str):
        raise InvalidEvent("wrong_type", f"{name} must be a string, not {type(value).__name__}")
    if required and not value:
        raise InvalidEvent("missing_field", f"{name} is empty")
    if len(value) > limit:
        raise InvalidEvent("field_too_long", f"{name} has {len(value)} characters (limit {limit})")
    return value


_OPTIONAL_LIMITS = tuple(
    (name, MAX_ID_LENGTH if name.endswith("_id") else MAX_TEXT_LENGTH) for name in OPTIONAL_STRINGS
)


def event_from_record(record: Any) -> CallEvent:
    """Validate a decoded record (JSON object or Avro datum) and build the CallEvent."""
    if type(record) is not dict and not isinstance(record, Mapping):
        raise InvalidEvent("not_an_object", f"expected an object, got {type(record).__name__}")
    get = record.get
    event_id = get("event_id")
    agent_id = get("agent_id")
    if not (type(event_id) is str and 0 < len(event_id) <= MAX_ID_LENGTH):
        event_id = _string(record, "event_id", required=True, limit=MAX_ID_LENGTH)
    if not (type(agent_id) is str and 0 < len(agent_id) <= MAX_ID_LENGTH):
        agent_id = _string(record, "agent_id", required=True, limit=MAX_ID_LENGTH)
    raw_type = get("event_type")
    event_type = EVENT_TYPES_BY_NAME.get(raw_type) if type(raw_type) is str else None
    if event_type is None:
        if raw_type is None:
            raise InvalidEvent("missing_field", "event_type is required")
        if not isinstance(raw_type, str):
            raise InvalidEvent("wrong_type", "event_type must be a string")
        raise InvalidEvent("unknown_enum", f"unknown event_type {raw_type[:64]!r}")
    occurred_at = get("occurred_at")
    if type(occurred_at) is int and MIN_TIMESTAMP_MS <= occurred_at < MAX_TIMESTAMP_MS:
        occurred_at_ms = occurred_at
    elif occurred_at is None:
        raise InvalidEvent("missing_field", "occurred_at is required")
    else:
        occurred_at_ms = parse_timestamp_ms(occurred_at)
    optional = [get(name) for name, _ in _OPTIONAL_LIMITS]  # contact_id first, in CallEvent field order
    for i, (name, limit) in enumerate(_OPTIONAL_LIMITS):
        value = optional[i]
        if value is not None and not (type(value) is str and len(value) <= limit):
            optional[i] = _string(record, name, required=False, limit=limit)
    raw_channel = get("channel")
    channel: Channel | None = None
    if raw_channel is not None:
        if not isinstance(raw_channel, str):
            raise InvalidEvent("wrong_type", "channel must be a string")
        channel = CHANNELS_BY_NAME.get(raw_channel)
        if channel is None:
            raise InvalidEvent("unknown_enum", f"unknown channel {raw_channel[:64]!r}")
    attributes = get("attributes") or _NO_ATTRIBUTES
    if attributes and not (
        isinstance(attributes, Mapping) and all(type(k) is str and type(v) is str for k, v in attributes.items())
    ):
        raise InvalidEvent("wrong_type", "attributes must be a map of strings to strings")
    if event_type in CONTACT_EVENTS and not optional[0]:
        raise InvalidEvent("missing_field", f"contact_id is required for {event_type.name}")
    talk_ms = get("talk_ms")
    hold_ms = get("hold_ms")
    restated = get("restated")
    contact_id, team_id, queue_id, status, disposition_code, source = optional
    if talk_ms is not None or hold_ms is not None or restated:  # as before: a falsy restated is not checked
        for name, value in (("talk_ms", talk_ms), ("hold_ms", hold_ms)):
            if value is not None and (type(value) is not int or value < 0):
                raise InvalidEvent("wrong_type", f"{name} must be a non-negative integer of milliseconds")
        if restated is not None and type(restated) is not bool:
            raise InvalidEvent("wrong_type", "restated must be a boolean")
    return CallEvent(
        event_id,
        event_type,
        occurred_at_ms,
        agent_id,
        contact_id,
        team_id,
        queue_id,
        status,
        disposition_code,
        source,
        channel,
        attributes,
        talk_ms,
        hold_ms,
        bool(restated),
    )
