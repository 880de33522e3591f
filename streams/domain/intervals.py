"""The ACW interval state machine of one agent: which events open and close a contact's after-call work."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from streams.domain.dedup import SeenEvents
from streams.domain.events import CONTACT_EVENTS, CallEvent, Channel, EventType
from streams.domain.ids import uuid5

# An AGENT_UNAVAILABLE carrying this attribute takes the agent's latest presence (the `status` of its latest
# AGENT_LOGGED_IN) as its status, when one is known; its own `status` is the fallback.
STATUS_SOURCE_ATTRIBUTE = "status_source"
PRESENCE_STATUS = "presence"

_INTERVAL_NAMESPACE = uuid.UUID("6f6b7a1e-4c0b-5d7e-9a43-0e6b1c2d3a51")
_NAMESPACE_BYTES = _INTERVAL_NAMESPACE.bytes


class EndReason(StrEnum):
    """Why an ACW interval ended."""

    WRAPUP_COMPLETED = "WRAPUP_COMPLETED"
    AVAILABLE = "AVAILABLE"
    STATUS_CHANGE = "STATUS_CHANGE"
    LOGGED_OUT = "LOGGED_OUT"
    NEXT_CONTACT = "NEXT_CONTACT"
    TIMED_OUT = "TIMED_OUT"
    # Never produced here: what a reason added by a newer writer reads as (the Avro enum's default).
    OTHER = "OTHER"


def interval_id_for(agent_id: str, contact_id: str, disconnected_at_ms: int) -> str:
    """Deterministic interval id (UUIDv5), so a re-emission after a crash is an identical record."""
    return uuid5(_NAMESPACE_BYTES, f"{agent_id}\x1f{contact_id}\x1f{disconnected_at_ms}".encode())


# The hot path's dataclasses write out their `__init__` (init=False): mypyc compiles one written in the class,
# while the one dataclasses generates runs as Python, about 18 times slower per object (one per interval here).
@dataclass(frozen=True, slots=True, init=False)
class AcwInterval:
    """One contact's after-call work: the output record of `schemas/acw_interval.avsc`."""

    interval_id: str
    agent_id: str
    contact_id: str
    channel: Channel
    team_id: str | None
    queue_id: str | None
    disconnected_at_ms: int
    ended_at_ms: int
    acw_seconds: float
    end_reason: EndReason
    talk_seconds: float | None
    hold_seconds: float | None
    handle_seconds: float | None
    disposition_code: str | None
    status: str | None

    def __init__(
        self,
        interval_id: str,
        agent_id: str,
        contact_id: str,
        channel: Channel,
        team_id: str | None,
        queue_id: str | None,
        disconnected_at_ms: int,
        ended_at_ms: int,
        acw_seconds: float,
        end_reason: EndReason,
        talk_seconds: float | None,
        hold_seconds: float | None,
        handle_seconds: float | None,
        disposition_code: str | None,
        status: str | None,
    ) -> None:
        put = object.__setattr__
        put(self, "interval_id", interval_id)
        put(self, "agent_id", agent_id)
        put(self, "contact_id", contact_id)
        put(self, "channel", channel)
        put(self, "team_id", team_id)
        put(self, "queue_id", queue_id)
        put(self, "disconnected_at_ms", disconnected_at_ms)
        put(self, "ended_at_ms", ended_at_ms)
        put(self, "acw_seconds", acw_seconds)
        put(self, "end_reason", end_reason)
        put(self, "talk_seconds", talk_seconds)
        put(self, "hold_seconds", hold_seconds)
        put(self, "handle_seconds", handle_seconds)
        put(self, "disposition_code", disposition_code)
        put(self, "status", status)

    def to_record(self) -> dict[str, Any]:
        """The Avro/JSON record (schema field names, timestamps as epoch ms)."""
        return {
            "interval_id": self.interval_id,
            "agent_id": self.agent_id,
            "contact_id": self.contact_id,
            "channel": str(self.channel),
            "team_id": self.team_id,
            "queue_id": self.queue_id,
            "disconnected_at": self.disconnected_at_ms,
            "ended_at": self.ended_at_ms,
            "acw_seconds": self.acw_seconds,
            "end_reason": str(self.end_reason),
            "talk_seconds": self.talk_seconds,
            "hold_seconds": self.hold_seconds,
            "handle_seconds": self.handle_seconds,
            "disposition_code": self.disposition_code,
            "status": self.status,
        }

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> AcwInterval:
        """Inverse of `to_record`."""
        return cls(
            interval_id=record["interval_id"],
            agent_id=record["agent_id"],
            contact_id=record["contact_id"],
            channel=Channel(record["channel"]),
            team_id=record["team_id"],
            queue_id=record["queue_id"],
            disconnected_at_ms=record["disconnected_at"],
            ended_at_ms=record["ended_at"],
            acw_seconds=record["acw_seconds"],
            end_reason=EndReason(record["end_reason"]),
            talk_seconds=record["talk_seconds"],
            hold_seconds=record["hold_seconds"],
            handle_seconds=record["handle_seconds"],
            disposition_code=record["disposition_code"],
            status=record["status"],
        )


@dataclass(slots=True, init=False)
class ContactState:
    """What one agent has seen of one contact so far."""

    channel: Channel | None = None
    team_id: str | None = None
    queue_id: str | None = None
    offered: bool = False
    connected_at_ms: int | None = None
    hold_started_at_ms: int | None = None
    hold_ms: int = 0
    last_seen_ms: int = 0
    # Set once the contact disconnected: its ACW interval is open.
    disconnected_at_ms: int | None = None
    acw_channel: Channel = Channel.VOICE
    acw_team_id: str | None = None
    acw_queue_id: str | None = None
    # Talk and hold as the platform reported them on the disconnect (sources without real-time connects).
    reported_talk_ms: int | None = None
    reported_hold_ms: int | None = None

    def __init__(
        self,
        channel: Channel | None = None,
        team_id: str | None = None,
        queue_id: str | None = None,
        offered: bool = False,
        connected_at_ms: int | None = None,
        hold_started_at_ms: int | None = None,
        hold_ms: int = 0,
        last_seen_ms: int = 0,
        disconnected_at_ms: int | None = None,
        acw_channel: Channel = Channel.VOICE,
        acw_team_id: str | None = None,
        acw_queue_id: str | None = None,
        reported_talk_ms: int | None = None,
        reported_hold_ms: int | None = None,
    ) -> None:
        self.channel = channel
        self.team_id = team_id
        self.queue_id = queue_id
        self.offered = offered
        self.connected_at_ms = connected_at_ms
        self.hold_started_at_ms = hold_started_at_ms
        self.hold_ms = hold_ms
        self.last_seen_ms = last_seen_ms
        self.disconnected_at_ms = disconnected_at_ms
        self.acw_channel = acw_channel
        self.acw_team_id = acw_team_id
        self.acw_queue_id = acw_queue_id
        self.reported_talk_ms = reported_talk_ms
        self.reported_hold_ms = reported_hold_ms

    def to_dict(self) -> dict[str, Any]:
        """Plain data for the changelog."""
        return {
            "ch": self.channel.value if self.channel else None,
            "t": self.team_id,
            "q": self.queue_id,
            "o": self.offered,
            "c": self.connected_at_ms,
            "hs": self.hold_started_at_ms,
            "h": self.hold_ms,
            "ls": self.last_seen_ms,
            "d": self.disconnected_at_ms,
            "ach": self.acw_channel.value,
            "at": self.acw_team_id,
            "aq": self.acw_queue_id,
            **({"rt": self.reported_talk_ms, "rh": self.reported_hold_ms} if self.reported_talk_ms is not None else {}),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ContactState:
        """Inverse of `to_dict`."""
        return cls(
            channel=Channel(d["ch"]) if d["ch"] else None,
            team_id=d["t"],
            queue_id=d["q"],
            offered=d["o"],
            connected_at_ms=d["c"],
            hold_started_at_ms=d["hs"],
            hold_ms=d["h"],
            last_seen_ms=d["ls"],
            disconnected_at_ms=d["d"],
            acw_channel=Channel(d["ach"]),
            acw_team_id=d["at"],
            acw_queue_id=d["aq"],
            reported_talk_ms=d.get("rt"),
            reported_hold_ms=d.get("rh"),
        )


@dataclass(slots=True)
class AgentState:
    """Everything the rules remember about one agent."""

    agent_id: str
    team_id: str | None = None
    queue_id: str | None = None
    contacts: dict[str, ContactState] = field(default_factory=dict)
    # Recently seen event ids with their event times, for de-duplication.
    seen: SeenEvents = field(default_factory=SeenEvents)
    # The `status` of the agent's latest AGENT_LOGGED_IN (a platform presence such as "Break"), until logout.
    presence: str | None = None
    # The latest agent-level event (LOGGED_IN, AVAILABLE, UNAVAILABLE, LOGGED_OUT) and its status: what the
    # live agent state shows when no contact is connected or in ACW.
    activity: str | None = None
    activity_status: str | None = None

    def open_contacts(self) -> list[tuple[str, ContactState]]:
        """Contacts whose ACW is open, in (disconnect time, contact id) order."""
        items = [(cid, c) for cid, c in self.contacts.items() if c.disconnected_at_ms is not None]
        items.sort(key=lambda item: (item[1].disconnected_at_ms, item[0]))
        return items

    def remember(self, event_id: str, occurred_at_ms: int, cutoff_ms: int) -> bool:
        """Record an event id; False if it was already seen (a duplicate)."""
        return self.seen.add(event_id, occurred_at_ms, cutoff_ms)

    def to_dict(self) -> dict[str, Any]:
        """Plain data for the changelog."""
        return {
            "t": self.team_id,
            "q": self.queue_id,
            "c": {cid: c.to_dict() for cid, c in self.contacts.items()},
            "s": self.seen.to_plain(),
            **({"p": self.presence} if self.presence is not None else {}),
            **({"av": [self.activity, self.activity_status]} if self.activity is not None else {}),
        }

    @classmethod
    def from_dict(cls, agent_id: str, d: dict[str, Any]) -> AgentState:
        """Inverse of `to_dict`."""
        return cls(
            agent_id=agent_id,
            team_id=d["t"],
            queue_id=d["q"],
            contacts={cid: ContactState.from_dict(c) for cid, c in d["c"].items()},
            seen=SeenEvents.of(d["s"]),
            presence=d.get("p"),
            activity=d["av"][0] if "av" in d else None,
            activity_status=d["av"][1] if "av" in d else None,
        )


def close_interval(
    agent: AgentState,
    contact_id: str,
    contact: ContactState,
    ended_at_ms: int,
    reason: EndReason,
    *,
    disposition_code: str | None = None,
    status: str | None = None,
) -> AcwInterval:
    """End a contact's open ACW, drop the contact from state and build the interval record."""
    disconnected_at_ms = contact.disconnected_at_ms
    assert disconnected_at_ms is not None
    del agent.contacts[contact_id]
    acw_seconds = (ended_at_ms - disconnected_at_ms) / 1000.0
    talk: float | None
    hold: float | None
    handle: float | None
    if contact.reported_talk_ms is not None:
        talk = contact.reported_talk_ms / 1000.0
        hold = (contact.reported_hold_ms or 0) / 1000.0
        handle = talk + hold + acw_seconds
    elif contact.connected_at_ms is None:
        talk = hold = handle = None
    else:
        hold = contact.hold_ms / 1000.0
        talk = (disconnected_at_ms - contact.connected_at_ms - contact.hold_ms) / 1000.0
        handle = talk + hold + acw_seconds
    return AcwInterval(
        interval_id=interval_id_for(agent.agent_id, contact_id, disconnected_at_ms),
        agent_id=agent.agent_id,
        contact_id=contact_id,
        channel=contact.acw_channel,
        team_id=contact.acw_team_id,
        queue_id=contact.acw_queue_id,
        disconnected_at_ms=disconnected_at_ms,
        ended_at_ms=ended_at_ms,
        acw_seconds=acw_seconds,
        end_reason=reason,
        talk_seconds=talk,
        hold_seconds=hold,
        handle_seconds=handle,
        disposition_code=disposition_code,
        status=status,
    )


def expire(agent: AgentState, before_ms: int, max_acw_ms: int) -> list[AcwInterval]:
    """Close as TIMED_OUT every open interval whose deadline is strictly before `before_ms`."""
    closed = []
    for contact_id, contact in agent.open_contacts():
        deadline = contact.disconnected_at_ms + max_acw_ms  # type: ignore[operator]
        if deadline < before_ms:
            closed.append(close_interval(agent, contact_id, contact, deadline, EndReason.TIMED_OUT))
    return closed


def _close_all(agent: AgentState, at_ms: int, reason: EndReason, status: str | None = None) -> list[AcwInterval]:
    return [close_interval(agent, cid, c, at_ms, reason, status=status) for cid, c in agent.open_contacts()]


def apply_event(agent: AgentState, event: CallEvent, max_acw_ms: int, contact_ttl_ms: int) -> list[AcwInterval]:
    """Apply one in-order event to an agent; return the intervals it closed (timeouts first)."""
    t = event.occurred_at_ms
    closed = []
    if agent.contacts:
        expired_before = t - max_acw_ms
        for c in agent.contacts.values():
            if c.disconnected_at_ms is not None and c.disconnected_at_ms < expired_before:
                closed = expire(agent, t, max_acw_ms)
                break
    if event.team_id is not None:
        agent.team_id = event.team_id
    if event.queue_id is not None:
        agent.queue_id = event.queue_id
    kind = event.event_type
    if kind in CONTACT_EVENTS:
        closed.extend(_apply_contact_event(agent, event, t))
    elif kind is EventType.AGENT_AVAILABLE:
        closed.extend(_close_all(agent, t, EndReason.AVAILABLE))
        agent.activity, agent.activity_status = "AVAILABLE", None
    elif kind is EventType.AGENT_UNAVAILABLE:
        status = event.status
        if agent.presence is not None and event.attributes.get(STATUS_SOURCE_ATTRIBUTE) == PRESENCE_STATUS:
            status = agent.presence
        closed.extend(_close_all(agent, t, EndReason.STATUS_CHANGE, status))
        agent.activity, agent.activity_status = "UNAVAILABLE", status
    elif kind is EventType.AGENT_LOGGED_OUT:
        closed.extend(_close_all(agent, t, EndReason.LOGGED_OUT))
        agent.contacts.clear()
        agent.presence = None
        agent.activity, agent.activity_status = "LOGGED_OUT", None
    elif kind is EventType.AGENT_LOGGED_IN:
        if event.status is not None:
            agent.presence = event.status
        agent.activity, agent.activity_status = "LOGGED_IN", event.status
    if len(agent.contacts) > 4:
        _prune_stale(agent, t - contact_ttl_ms)
    return closed


def _apply_contact_event(agent: AgentState, event: CallEvent, t: int) -> list[AcwInterval]:
    contact_id = event.contact_id
    assert contact_id is not None
    kind = event.event_type
    contact = agent.contacts.get(contact_id)
    if kind is EventType.WRAPUP_COMPLETED:
        if contact is None or contact.disconnected_at_ms is None:
            return []
        return [
            close_interval(
                agent,
                contact_id,
                contact,
                t,
                EndReason.WRAPUP_COMPLETED,
                disposition_code=event.disposition_code,
            )
        ]
    if contact is None:
        contact = agent.contacts[contact_id] = ContactState()
    contact.last_seen_ms = t
    if event.channel is not None:
        contact.channel = event.channel
    if event.team_id is not None:
        contact.team_id = event.team_id
    if event.queue_id is not None:
        contact.queue_id = event.queue_id
    if contact.disconnected_at_ms is not None:
        return []  # already in ACW: a repeated disconnect or a stray event changes nothing
    closed: list[AcwInterval] = []
    if kind is EventType.CONTACT_OFFERED:
        contact.offered = True
    elif kind is EventType.CONTACT_CONNECTED:
        if contact.connected_at_ms is None:
            contact.connected_at_ms = t
        if (contact.channel or Channel.VOICE) is Channel.VOICE:
            for cid, other in agent.open_contacts():
                if other.acw_channel is Channel.VOICE:
                    closed.append(close_interval(agent, cid, other, t, EndReason.NEXT_CONTACT))
    elif kind is EventType.HOLD_STARTED:
        if contact.hold_started_at_ms is None:
            contact.hold_started_at_ms = t
    elif kind is EventType.HOLD_ENDED:
        if contact.hold_started_at_ms is not None:
            contact.hold_ms += t - contact.hold_started_at_ms
            contact.hold_started_at_ms = None
    elif kind is EventType.CONTACT_DISCONNECTED:
        if event.talk_ms is not None:
            contact.reported_talk_ms = event.talk_ms
            contact.reported_hold_ms = event.hold_ms
        elif contact.offered and contact.connected_at_ms is None:
            del agent.contacts[contact_id]  # missed or abandoned offer: no ACW
            return closed
        if contact.hold_started_at_ms is not None:
            contact.hold_ms += t - contact.hold_started_at_ms
            contact.hold_started_at_ms = None
        contact.disconnected_at_ms = t
        contact.acw_channel = contact.channel or Channel.VOICE
        contact.acw_team_id = contact.team_id if contact.team_id is not None else agent.team_id
        contact.acw_queue_id = contact.queue_id if contact.queue_id is not None else agent.queue_id
    return closed


def _prune_stale(agent: AgentState, cutoff_ms: int) -> None:
    stale = [cid for cid, c in agent.contacts.items() if c.disconnected_at_ms is None and c.last_seen_ms < cutoff_ms]
    for cid in stale:
        del agent.contacts[cid]
