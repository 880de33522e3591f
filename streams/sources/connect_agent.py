"""`connect-agent-events`: Amazon Connect's agent event stream (Kinesis), one `AgentEvent` JSON per record.

Each record carries the agent's previous and current snapshot. They are compared contact by contact:
what the previous snapshot already shows is *restated* (the record before this one reported it, so the
core drops it silently when it has it), what changed is news. Contact event ids depend on the contact,
the kind and the time only, never on the record, so the same fact from two records is one event and a
lost or reordered record is repaired by the next one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from streams.domain.events import CallEvent, Channel, EventType
from streams.sources import Translation
from streams.sources.channels import CONNECT, map_channel
from streams.sources.fields import FieldReader, last_segment

FORMAT = "connect-agent-events"
EVENT_TYPES = ("LOGIN", "LOGOUT", "STATE_CHANGE", "HEART_BEAT")
OFFERED_STATES = frozenset({"CONNECTING", "INCOMING", "PENDING"})
CONNECTED_STATES = frozenset({"CONNECTED", "CONNECTED_ONHOLD", "PAUSED"})
UNANSWERED_STATES = frozenset({"MISSED", "REJECTED", "ERROR"})
KNOWN_STATES = OFFERED_STATES | CONNECTED_STATES | UNANSWERED_STATES | {"ENDED"}
HIERARCHY_LEVELS = ("Level1", "Level2", "Level3", "Level4", "Level5")
VANISHED = "vanished_contact"
UNKNOWN_STATE = "unknown_contact_state"
MAX_CONTACT_ID = 200  # leaves room for the kind and time in derived event ids

_read = FieldReader("connect")


@dataclass(frozen=True, slots=True)
class _Status:
    arn: str | None
    name: str | None
    type: str | None
    start_ms: int | None


@dataclass(frozen=True, slots=True)
class _Contact:
    contact_id: str
    state: str
    state_start_ms: int | None
    connected_ms: int | None
    channel: Channel | None
    queue: str | None


@dataclass(frozen=True, slots=True)
class _Snapshot:
    status: _Status | None
    contacts: dict[str, _Contact]
    team: str | None


def agent_arn_key(event: CallEvent) -> bytes:
    """Connect agents are routed by agent ARN (instance ARN + agent id), the key Connect's Kinesis stream has."""
    if event.source and ":instance/" in event.source:
        return f"{event.source}/agent/{event.agent_id}".encode()
    return event.agent_id.encode()


class ConnectAgentSource:
    """Translates Amazon Connect agent event stream records."""

    format = FORMAT
    routing_key = staticmethod(agent_arn_key)

    def __init__(self, hierarchy_level: int = 0) -> None:
        if not 0 <= hierarchy_level <= len(HIERARCHY_LEVELS):
            raise ValueError(f"hierarchy level must be 0 (deepest) to {len(HIERARCHY_LEVELS)}")
        self.hierarchy_level = hierarchy_level

    def translate(self, data: bytes | Mapping[str, Any]) -> Translation:
        """The record's events: logins, status changes and what its snapshots show of each contact."""
        record = _read.load(data)
        kind = _read.string(record, "EventType", required=True)
        assert kind is not None
        if kind not in EVENT_TYPES:
            raise _read.fail("unknown_event_type", f"EventType {kind[:64]!r} is not one of {', '.join(EVENT_TYPES)}")
        agent_arn = _read.string(record, "AgentARN", required=True, limit=1024)
        record_id = _read.string(record, "EventId", required=True)
        at = _read.time_ms(record, "EventTimestamp", required=True)
        assert agent_arn is not None and record_id is not None and at is not None
        if kind == "HEART_BEAT":
            return Translation(kind, ignored=True)  # its snapshots can disagree with the stream (vendor sample)
        notes: list[str] = []
        prev = self._snapshot(record, "PreviousAgentSnapshot", notes)
        cur = self._snapshot(record, "CurrentAgentSnapshot", notes)
        agent_id = last_segment(agent_arn)
        if not agent_id:
            raise _read.fail("missing_field", "AgentARN has no agent id")
        team = (cur.team if cur else None) or (prev.team if prev else None)
        base = _Base(agent_id, team, _read.string(record, "InstanceARN", limit=1024), record_id, at)

        news: list[CallEvent] = []
        if kind == "LOGIN":
            news.append(base.agent_event(EventType.AGENT_LOGGED_IN, at))
        status_event = _status_change(base, prev, cur)
        if status_event is not None:
            news.append(status_event)
        restated: list[CallEvent] = []
        closes_all = status_event is not None or kind == "LOGOUT"
        order = list(prev.contacts) if prev else []
        order += [cid for cid in (cur.contacts if cur else ()) if cid not in (prev.contacts if prev else ())]
        for cid in order:
            p = prev.contacts.get(cid) if prev else None
            c = cur.contacts.get(cid) if cur else None
            shown_before = [base.contact_event(k, t, p, restated=True) for k, t in _shows(p, notes)] if p else []
            restated.extend(shown_before)
            if c is not None:
                before = {e.event_id for e in shown_before}
                news.extend(e for k, t in _shows(c, notes) if (e := base.contact_event(k, t, c)).event_id not in before)
            if cur is not None and p is not None:
                news.extend(_transition(base, p, c, closes_all, notes))
        if kind == "LOGOUT":
            news.append(base.agent_event(EventType.AGENT_LOGGED_OUT, at))
        if not news:
            return Translation(kind, ignored=True, notes=tuple(notes))  # nothing we track changed
        events = sorted(restated + news, key=CallEvent.sort_key)
        return Translation(kind, tuple(events), notes=tuple(notes))

    def _snapshot(self, record: Mapping[str, Any], name: str, notes: list[str]) -> _Snapshot | None:
        if record.get(name) is None:
            return None
        snap = record[name]
        if not isinstance(snap, Mapping):
            raise _read.fail("bad_snapshot", f"{name} must be an object")
        raw_contacts = snap.get("Contacts")
        if not isinstance(raw_contacts, list):
            raise _read.fail("bad_snapshot", f"{name} has no Contacts list")
        contacts = {}
        for raw in raw_contacts:
            if not isinstance(raw, Mapping):
                raise _read.fail("bad_snapshot", f"{name} holds a contact that is not an object")
            contact = _contact(raw, name, notes)
            contacts[contact.contact_id] = contact
        status = None
        raw_status = _read.obj(snap, "AgentStatus")
        if raw_status is not None:
            status = _Status(
                _read.string(raw_status, "ARN", limit=1024),
                _read.string(raw_status, "Name"),
                _read.string(raw_status, "Type"),
                _read.time_ms(raw_status, "StartTimestamp"),
            )
        return _Snapshot(status, contacts, self._team(snap))

    def _team(self, snap: Mapping[str, Any]) -> str | None:
        config = _read.obj(snap, "Configuration")
        groups = _read.obj(config, "AgentHierarchyGroups") if config else None
        if not groups:
            return None
        levels = HIERARCHY_LEVELS[self.hierarchy_level - 1 : self.hierarchy_level] if self.hierarchy_level else None
        for level in reversed(levels or HIERARCHY_LEVELS):
            group = _read.obj(groups, level)
            name = _read.string(group, "Name") if group else None
            if name:
                return name
        return None


def _contact(raw: Mapping[str, Any], snapshot: str, notes: list[str]) -> _Contact:
    contact_id = raw.get("ContactId")
    state = raw.get("State")
    if not isinstance(contact_id, str) or not contact_id or not isinstance(state, str) or not state:
        raise _read.fail("bad_snapshot", f"a contact of {snapshot} has no ContactId or State")
    if len(contact_id) > MAX_CONTACT_ID:
        raise _read.fail("field_too_long", f"ContactId has {len(contact_id)} characters (limit {MAX_CONTACT_ID})")
    queue = _read.obj(raw, "Queue")
    return _Contact(
        contact_id,
        state.upper(),
        _read.time_ms(raw, "StateStartTimestamp"),
        _read.time_ms(raw, "ConnectedToAgentTimestamp"),
        map_channel(CONNECT, _read.string(raw, "Channel"), notes),
        _read.string(queue, "Name") if queue else None,
    )


def _shows(contact: _Contact, notes: list[str]) -> list[tuple[EventType, int]]:
    """What one snapshot's view of a contact says happened, as (kind, time) pairs."""
    state, start, connected = contact.state, contact.state_start_ms, contact.connected_ms
    if state not in KNOWN_STATES:
        notes.append(UNKNOWN_STATE)
        return []
    if start is None:
        start = connected
    shown: list[tuple[EventType, int]] = []
    if state in OFFERED_STATES:
        if start is not None:
            shown.append((EventType.CONTACT_OFFERED, start))
        return shown
    if connected is not None:
        shown.append((EventType.CONTACT_CONNECTED, connected))
    elif state in ("CONNECTED", "PAUSED") and start is not None:
        shown.append((EventType.CONTACT_CONNECTED, start))  # no connect time given: the state's start
    if state == "ENDED" and start is not None:
        shown.append((EventType.CONTACT_DISCONNECTED, start))
    elif state in UNANSWERED_STATES and start is not None:
        if connected is None:
            shown.append((EventType.CONTACT_OFFERED, start))  # an offer never connected: no interval (rule 1)
        shown.append((EventType.CONTACT_DISCONNECTED, start))
    return shown


def _transition(base: _Base, p: _Contact, c: _Contact | None, closes_all: bool, notes: list[str]) -> list[CallEvent]:
    """Events that only the change between the snapshots shows, at the record's time."""
    at = base.at
    if c is not None:
        if p.state == "CONNECTED" and c.state == "CONNECTED_ONHOLD":
            return [base.contact_event(EventType.HOLD_STARTED, at, c)]
        if p.state == "CONNECTED_ONHOLD" and c.state == "CONNECTED":
            return [base.contact_event(EventType.HOLD_ENDED, at, c)]
        return []
    if p.state == "ENDED":
        return [] if closes_all else [base.contact_event(EventType.WRAPUP_COMPLETED, at, p)]
    if p.state in CONNECTED_STATES:
        notes.append(VANISHED)
        return [
            base.contact_event(EventType.CONTACT_DISCONNECTED, at, p),
            base.contact_event(EventType.WRAPUP_COMPLETED, at, p),
        ]
    return []


def _status_change(base: _Base, prev: _Snapshot | None, cur: _Snapshot | None) -> CallEvent | None:
    """AGENT_AVAILABLE or AGENT_UNAVAILABLE when the agent's status differs between the snapshots."""
    new = cur.status if cur else None
    if new is None:
        return None
    old = prev.status if prev else None
    if old is not None and (old.arn, old.name, old.start_ms) == (new.arn, new.name, new.start_ms):
        return None
    t = new.start_ms if new.start_ms is not None else base.at
    kind = (new.type or "").upper()
    name = new.name or ""
    if kind == "ROUTABLE" or (not kind and name.lower() == "available"):
        return base.agent_event(EventType.AGENT_AVAILABLE, t)
    if kind == "OFFLINE" or (not kind and name.lower() == "offline"):
        return base.agent_event(EventType.AGENT_UNAVAILABLE, t, status="Offline")
    return base.agent_event(EventType.AGENT_UNAVAILABLE, t, status=name or kind or None)


@dataclass(frozen=True, slots=True)
class _Base:
    """What every event derived from one record shares."""

    agent_id: str
    team_id: str | None
    source: str | None
    record_id: str
    at: int

    def agent_event(self, kind: EventType, t: int, status: str | None = None) -> CallEvent:
        return CallEvent(
            f"{self.record_id}:{kind.name}", kind, t, self.agent_id, team_id=self.team_id, status=status,
            source=self.source,
        )  # fmt: skip

    def contact_event(self, kind: EventType, t: int, contact: _Contact, restated: bool = False) -> CallEvent:
        return CallEvent(
            f"{contact.contact_id}:{kind.name}:{t}", kind, t, self.agent_id, contact_id=contact.contact_id,
            team_id=self.team_id, queue_id=contact.queue, source=self.source, channel=contact.channel,
            restated=restated,
        )  # fmt: skip
