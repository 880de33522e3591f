"""The simulated contact center rendered as each platform's records (`acw simulate --format FORMAT`).

Each renderer follows one agent's simulated events and writes what that platform would have sent for
them, in the vendors' documented shapes: Connect agent snapshots, Connect contact events, Genesys
notifications (alternately raw and inside an EventBridge envelope), TaskRouter callbacks. What a
platform cannot say is not invented: Connect contact events carry no agent status and whole-second ACW
times, Genesys no connect or hold moments (only totals), TaskRouter no holds and no logins.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from streams.domain.events import CallEvent, Channel, EventType
from streams.sources.fields import topic_pattern

INSTANCE = "arn:aws:connect:us-east-1:123456789012:instance/5e1f0c2a-7b1d-4c3e-9f6a-0d2b8c4e6a10"
ACCOUNT = "123456789012"


@dataclass(frozen=True, slots=True)
class PlatformRecord:
    """One rendered record: its event time, the key the platform's pipeline gives it, and its JSON bytes."""

    time_ms: int
    key: bytes | None
    value: bytes


def iso_ms(t_ms: int) -> str:
    """ISO-8601 UTC with milliseconds, as Connect writes it."""
    return datetime.fromtimestamp(t_ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{t_ms % 1000:03d}Z"


def _sid(prefix: str, *parts: object) -> str:
    return prefix + hashlib.sha1("/".join(map(str, parts)).encode(), usedforsecurity=False).hexdigest()[:32]


@dataclass
class _Contact:
    """What a renderer remembers of one contact."""

    channel: Channel
    queue: str | None
    state: str = "CONNECTING"
    state_start_ms: int = 0
    connected_ms: int | None = None
    hold_started_ms: int | None = None
    hold_ms: int = 0
    disconnected_ms: int | None = None


@dataclass
class _Agent:
    team: str | None = None
    status: tuple[str, str, int] | None = None  # name, type, start
    contacts: dict[str, _Contact] = field(default_factory=dict)
    seq: int = 0
    logged_in: bool = False
    activity: str = "Offline"


class _Renderer:
    """Shared bookkeeping: per-agent state and the contacts an event touches."""

    def __init__(self) -> None:
        self.agents: dict[str, _Agent] = {}

    def agent(self, event: CallEvent) -> _Agent:
        agent = self.agents.setdefault(event.agent_id, _Agent())
        if event.team_id is not None:
            agent.team = event.team_id
        agent.seq += 1
        return agent

    @staticmethod
    def contact(agent: _Agent, event: CallEvent) -> _Contact:
        cid = event.contact_id or ""
        contact = agent.contacts.get(cid)
        if contact is None:
            contact = agent.contacts[cid] = _Contact(event.channel or Channel.VOICE, event.queue_id)
        if event.queue_id is not None:
            contact.queue = event.queue_id
        return contact

    @staticmethod
    def in_acw(agent: _Agent) -> list[str]:
        return [cid for cid, c in agent.contacts.items() if c.disconnected_ms is not None]

    def render(self, event: CallEvent) -> list[PlatformRecord]:
        raise NotImplementedError


class ConnectAgentRenderer(_Renderer):
    """Amazon Connect agent event stream records, one per change of the agent's snapshot, keyed by agent ARN."""

    def snapshot(self, agent: _Agent) -> dict[str, Any]:
        groups = {"Level1": {"ARN": f"{INSTANCE}/agent-group/site", "Name": "site-1"}}
        if agent.team:
            groups["Level2"] = {"ARN": f"{INSTANCE}/agent-group/{agent.team}", "Name": agent.team}
        status = None
        if agent.status is not None:
            name, kind, start = agent.status
            status = {"ARN": f"{INSTANCE}/agent-state/{name}", "Name": name, "StartTimestamp": iso_ms(start),
                      "Type": kind}  # fmt: skip
        contacts = [
            {
                "Channel": c.channel.value,
                "ConnectedToAgentTimestamp": iso_ms(c.connected_ms) if c.connected_ms is not None else None,
                "ContactId": cid,
                "InitialContactId": None,
                "InitiationMethod": "INBOUND",
                "Queue": {"ARN": f"{INSTANCE}/queue/{c.queue}", "Name": c.queue} if c.queue else None,
                "QueueTimestamp": None,
                "State": c.state,
                "StateStartTimestamp": iso_ms(c.state_start_ms),
            }
            for cid, c in agent.contacts.items()
        ]
        return {
            "AgentStatus": status,
            "NextAgentStatus": None,
            "Configuration": {
                "AgentHierarchyGroups": groups,
                "FirstName": "Sim",
                "LastName": "Agent",
                "Username": "sim",
                "RoutingProfile": {"Name": "Simulated"},
            },
            "Contacts": contacts,
        }

    def render(self, event: CallEvent) -> list[PlatformRecord]:
        agent = self.agent(event)
        t, kind = event.occurred_at_ms, event.event_type
        arn = f"{INSTANCE}/agent/{event.agent_id}"
        record_type = "STATE_CHANGE"
        if kind is EventType.AGENT_LOGGED_IN:
            agent.logged_in, agent.status, agent.contacts = True, None, {}
            return [self._record(agent, event, arn, "LOGIN", None, None)]
        before = orjson.dumps(self.snapshot(agent)) if agent.status is not None else None
        for cid in [cid for cid, c in agent.contacts.items() if c.state == "MISSED"]:
            del agent.contacts[cid]  # a missed contact leaves the snapshot with the next change
        if kind in (EventType.AGENT_AVAILABLE, EventType.AGENT_UNAVAILABLE, EventType.AGENT_LOGGED_OUT):
            for cid in self.in_acw(agent):
                del agent.contacts[cid]  # going available, choosing a status or logging out clears ACW
            if kind is EventType.AGENT_AVAILABLE and (agent.status is None or agent.status[0] != "Available"):
                agent.status = ("Available", "ROUTABLE", t)
            elif kind is EventType.AGENT_UNAVAILABLE:
                agent.status = (event.status or "Break", "CUSTOM", t)
            elif kind is EventType.AGENT_LOGGED_OUT:
                record_type = "LOGOUT"
        else:
            contact = self.contact(agent, event)
            if kind is EventType.CONTACT_OFFERED:
                contact.state, contact.state_start_ms = "CONNECTING", t
            elif kind is EventType.CONTACT_CONNECTED:
                contact.state, contact.state_start_ms, contact.connected_ms = "CONNECTED", t, t
                if contact.channel is Channel.VOICE:
                    for cid in self.in_acw(agent):
                        if agent.contacts[cid].channel is Channel.VOICE:
                            del agent.contacts[cid]  # the next call takes the agent out of ACW
            elif kind is EventType.HOLD_STARTED:
                contact.state, contact.state_start_ms = "CONNECTED_ONHOLD", t
            elif kind is EventType.HOLD_ENDED:
                contact.state, contact.state_start_ms = "CONNECTED", t
            elif kind is EventType.CONTACT_DISCONNECTED:
                if contact.connected_ms is None:
                    contact.state, contact.state_start_ms = "MISSED", t
                else:
                    contact.state, contact.state_start_ms, contact.disconnected_ms = "ENDED", t, t
            elif kind is EventType.WRAPUP_COMPLETED:
                agent.contacts.pop(event.contact_id or "", None)
        after = orjson.dumps(self.snapshot(agent))
        if before == after and record_type == "STATE_CHANGE":
            return []  # nothing Connect would publish
        previous = orjson.loads(before) if before is not None else None
        return [self._record(agent, event, arn, record_type, previous, orjson.loads(after))]

    def _record(
        self, agent: _Agent, event: CallEvent, arn: str, kind: str, previous: Any, current: Any
    ) -> PlatformRecord:
        t = event.occurred_at_ms
        record = {
            "AWSAccountId": ACCOUNT,
            "AgentARN": arn,
            "CurrentAgentSnapshot": current,
            "EventId": _sid("", event.agent_id, agent.seq, "connect"),
            "EventTimestamp": iso_ms(t),
            "EventType": kind,
            "InstanceARN": INSTANCE,
            "PreviousAgentSnapshot": previous,
            "Version": "2019-05-25",
        }
        return PlatformRecord(t, arn.encode(), orjson.dumps(record))


class ConnectContactRenderer(_Renderer):
    """Amazon Connect contact events in their EventBridge envelope, unkeyed; ACW times in whole seconds."""

    def render(self, event: CallEvent) -> list[PlatformRecord]:
        agent = self.agent(event)
        t, kind = event.occurred_at_ms, event.event_type
        out = []
        if kind in (EventType.AGENT_AVAILABLE, EventType.AGENT_UNAVAILABLE, EventType.AGENT_LOGGED_OUT):
            out = [self._completed(event.agent_id, cid, agent.contacts.pop(cid), t) for cid in self.in_acw(agent)]
        elif kind in (EventType.CONTACT_OFFERED, EventType.HOLD_STARTED, EventType.HOLD_ENDED):
            self.contact(agent, event)
        elif kind is EventType.CONTACT_CONNECTED:
            contact = self.contact(agent, event)
            contact.connected_ms = t
            if contact.channel is Channel.VOICE:
                ended = [cid for cid in self.in_acw(agent) if agent.contacts[cid].channel is Channel.VOICE]
                out = [self._completed(event.agent_id, cid, agent.contacts.pop(cid), t) for cid in ended]
            out.append(self._event(event.agent_id, event.contact_id or "", contact, "CONNECTED_TO_AGENT", t))
        elif kind is EventType.CONTACT_DISCONNECTED:
            contact = self.contact(agent, event)
            if contact.connected_ms is None:
                del agent.contacts[event.contact_id or ""]
                return [self._event(None, event.contact_id or "", contact, "DISCONNECTED", t)]  # no agent: no ACW
            contact.disconnected_ms = t
            out = [self._event(event.agent_id, event.contact_id or "", contact, "DISCONNECTED", t)]
        elif kind is EventType.WRAPUP_COMPLETED and event.contact_id in agent.contacts:
            out = [self._completed(event.agent_id, event.contact_id, agent.contacts.pop(event.contact_id), t)]
        return out

    def _completed(self, agent_id: str, cid: str, contact: _Contact, t: int) -> PlatformRecord:
        start_s = (contact.disconnected_ms or t) // 1000
        end_s = -(-t // 1000)  # whole seconds, rounded up so the ACW end never precedes the disconnect
        return self._event(agent_id, cid, contact, "COMPLETED", t, acw=(start_s, end_s))

    def _event(
        self, agent_id: str | None, cid: str, contact: _Contact, kind: str, t: int, acw: tuple[int, int] | None = None
    ) -> PlatformRecord:
        detail: dict[str, Any] = {
            "eventType": kind,
            "contactId": cid,
            "channel": contact.channel.value.capitalize(),  # the vendor's samples disagree on case
            "instanceArn": INSTANCE,
            "initiationMethod": "INBOUND",
            "queueInfo": {"queueArn": f"{INSTANCE}/queue/{contact.queue}", "queueType": "STANDARD"},
        }
        if agent_id is not None:
            info: dict[str, Any] = {"agentArn": f"{INSTANCE}/agent/{agent_id}"}
            if contact.connected_ms is not None:
                info["connectedToAgentTimestamp"] = iso_ms(contact.connected_ms)
            if acw is not None:
                info["afterContactWorkStartTimestamp"] = iso_ms(acw[0] * 1000)
                info["afterContactWorkEndTimestamp"] = iso_ms(acw[1] * 1000)
                info["afterContactWorkDuration"] = acw[1] - acw[0]
            detail["AgentInfo" if kind == "DISCONNECTED" else "agentInfo"] = info  # both key styles occur
        if kind == "DISCONNECTED" or acw is not None:
            detail["disconnectTimestamp"] = iso_ms(contact.disconnected_ms or t)
        envelope = {
            "version": "0",
            "id": _sid("", cid, kind, t),
            "detail-type": "Amazon Connect Contact Event",
            "source": "aws.connect",
            "account": ACCOUNT,
            "time": iso_ms(t + 1500)[:19] + "Z",  # delivery time, never event time
            "region": "us-east-1",
            "resources": [INSTANCE],
            "detail": detail,
        }
        return PlatformRecord(t, None, orjson.dumps(envelope))


class GenesysRenderer(_Renderer):
    """Genesys Cloud notifications: conversation detail events and user routing status and presence.

    Keyed by user id, as the README's forwarder keys them (EventBridge itself delivers unkeyed).
    """

    key: bytes | None = None

    def render(self, event: CallEvent) -> list[PlatformRecord]:
        agent = self.agent(event)
        t, kind, uid = event.occurred_at_ms, event.event_type, event.agent_id
        self.key = uid.encode()
        if kind is EventType.AGENT_LOGGED_IN:
            return [self._presence(uid, "On Queue", t)]
        if kind is EventType.AGENT_AVAILABLE:
            done = [self._acw(uid, cid, agent.contacts.pop(cid), t, None) for cid in self.in_acw(agent)]
            return [*done, self._routing(uid, "IDLE", t)]
        if kind is EventType.AGENT_UNAVAILABLE:
            return [self._presence(uid, event.status or "Break", t), self._routing(uid, "OFF_QUEUE", t)]
        if kind is EventType.AGENT_LOGGED_OUT:
            agent.contacts.clear()
            return [self._presence(uid, "Offline", t)]
        contact = self.contact(agent, event)
        cid = event.contact_id or ""
        if kind is EventType.CONTACT_OFFERED:
            return [self._detail(uid, cid, contact, "user.start", t, {})]
        if kind is EventType.CONTACT_CONNECTED:
            contact.connected_ms = t
            if contact.channel is not Channel.VOICE:
                return []
            ended = [c for c in self.in_acw(agent) if agent.contacts[c].channel is Channel.VOICE]
            return [self._acw(uid, c, agent.contacts.pop(c), t, None) for c in ended]  # wrap-up done to answer
        if kind is EventType.HOLD_STARTED:
            contact.hold_started_ms = t
        elif kind is EventType.HOLD_ENDED and contact.hold_started_ms is not None:
            contact.hold_ms += t - contact.hold_started_ms
            contact.hold_started_ms = None
        elif kind is EventType.CONTACT_DISCONNECTED:
            if contact.hold_started_ms is not None:
                contact.hold_ms += t - contact.hold_started_ms
            contact.disconnected_ms = t
            talk = 0 if contact.connected_ms is None else t - contact.connected_ms - contact.hold_ms
            extra = {"interactingDurationMs": talk, "heldDurationMs": contact.hold_ms, "disconnectType": "peer"}
            if contact.connected_ms is None:
                del agent.contacts[cid]
            return [self._detail(uid, cid, contact, "user.end", t, extra)]
        elif kind is EventType.WRAPUP_COMPLETED and cid in self.in_acw(agent):
            return [self._acw(uid, cid, agent.contacts.pop(cid), t, event.disposition_code)]
        return []

    def _acw(self, uid: str, cid: str, contact: _Contact, t: int, code: str | None) -> PlatformRecord:
        extra: dict[str, Any] = {"wrapupDurationMs": t - (contact.disconnected_ms or t)}
        if code is not None:
            extra["wrapupCode"] = code
        return self._detail(uid, cid, contact, "acw", t, extra)

    def _detail(
        self, uid: str, cid: str, contact: _Contact, kind: str, t: int, extra: dict[str, Any]
    ) -> PlatformRecord:
        body = {
            "eventTime": t,
            "conversationId": cid,
            "participantId": _sid("", cid, uid),
            "sessionId": _sid("", cid, uid, "session"),
            "mediaType": contact.channel.value,
            "direction": "INBOUND",
            "userId": uid,
            "queueId": contact.queue,
            "divisionId": "9f7c1b2e-0d4a-4c8e-8e1f-3a5b7c9d1e2f",
            **extra,
        }
        return self._wrap(f"v2.detail.events.conversation.{cid}.{kind}", body, t)

    def _routing(self, uid: str, status: str, t: int) -> PlatformRecord:
        return self._wrap(
            f"v2.users.{uid}.routingStatus", {"routingStatus": {"status": status, "startTime": iso_ms(t)}}, t
        )

    def _presence(self, uid: str, presence: str, t: int) -> PlatformRecord:
        body = {"presenceDefinition": {"id": _sid("", presence), "systemPresence": presence},
                "modifiedDate": iso_ms(t), "source": "PURECLOUD"}  # fmt: skip
        return self._wrap(f"v2.users.{uid}.presence", body, t)

    def _wrap(self, topic: str, body: dict[str, Any], t: int) -> PlatformRecord:
        notification = {"topicName": topic, "version": "2", "eventBody": body}
        if int(_sid("", topic, t)[:2], 16) % 2:  # both deliveries occur: raw (WebSocket) and EventBridge
            notification = {
                "version": "0",
                "id": _sid("", topic, t),
                "detail-type": topic_pattern(topic),
                "source": "aws.partner/genesys.com/cloud/sim/acw",
                "time": iso_ms(t + 2000)[:19] + "Z",
                "detail": {
                    **notification,
                    "metadata": {"CorrelationId": _sid("", topic)},
                    "timestamp": iso_ms(t + 900),
                },
            }
        return PlatformRecord(t, self.key, orjson.dumps(notification))


class TwilioRenderer(_Renderer):
    """Twilio TaskRouter event callbacks (form parameters as JSON strings), keyed by worker sid like a forwarder."""

    key: bytes | None = None

    def render(self, event: CallEvent) -> list[PlatformRecord]:
        agent = self.agent(event)
        t, kind, wid = event.occurred_at_ms, event.event_type, event.agent_id
        self.key = wid.encode()
        if kind is EventType.AGENT_LOGGED_IN:
            return []  # TaskRouter has no login: leaving Offline is
        if kind is EventType.AGENT_AVAILABLE:
            out = [self._reservation(agent, wid, c, agent.contacts.pop(c), "reservation.completed", t, None)
                   for c in self.in_acw(agent)]  # fmt: skip
            if agent.activity != "Available":
                out.append(self._activity(agent, wid, "Available", t))
            return out
        if kind is EventType.AGENT_UNAVAILABLE:
            return [self._activity(agent, wid, event.status or "Break", t)]
        if kind is EventType.AGENT_LOGGED_OUT:
            agent.contacts.clear()
            return [self._activity(agent, wid, "Offline", t)]
        contact = self.contact(agent, event)
        cid = event.contact_id or ""
        if kind is EventType.CONTACT_OFFERED:
            return [self._reservation(agent, wid, cid, contact, "reservation.created", t, None)]
        if kind is EventType.CONTACT_CONNECTED:
            contact.connected_ms = t
            out = []
            if contact.channel is Channel.VOICE:
                ended = [c for c in self.in_acw(agent) if agent.contacts[c].channel is Channel.VOICE]
                out = [self._reservation(agent, wid, c, agent.contacts.pop(c), "reservation.completed", t, None)
                       for c in ended]  # fmt: skip
            return [*out, self._reservation(agent, wid, cid, contact, "reservation.accepted", t, None)]
        if kind is EventType.CONTACT_DISCONNECTED:
            if contact.connected_ms is None:
                del agent.contacts[cid]
                return [self._reservation(agent, wid, cid, contact, "reservation.timeout", t, None)]
            contact.disconnected_ms = t
            return [self._reservation(agent, wid, cid, contact, "reservation.wrapup", t, None)]
        if kind is EventType.WRAPUP_COMPLETED and cid in self.in_acw(agent):
            return [self._reservation(agent, wid, cid, agent.contacts.pop(cid), "reservation.completed", t,
                                      event.disposition_code)]  # fmt: skip
        return []

    def _base(self, agent: _Agent, wid: str, kind: str, t: int) -> dict[str, Any]:
        return {
            "EventType": kind,
            "Sid": _sid("EV", wid, agent.seq, kind),
            "AccountSid": _sid("AC", "sim"),
            "WorkspaceSid": _sid("WS", "sim"),
            "Timestamp": str(t // 1000),
            "TimestampMs": str(t),
            "WorkerSid": wid,
            "WorkerName": wid,
            "WorkerAttributes": orjson.dumps({"team_name": agent.team, "department_name": "sim"}).decode(),
        }

    def _reservation(
        self, agent: _Agent, wid: str, cid: str, contact: _Contact, kind: str, t: int, outcome: str | None
    ) -> PlatformRecord:
        attributes: dict[str, Any] = {"channel": contact.channel.value.lower()}
        if outcome is not None:
            attributes["conversations"] = {"outcome": outcome}
        record = {
            **self._base(agent, wid, kind, t),
            "ResourceType": "reservation",
            "TaskSid": cid,
            "ReservationSid": _sid("WR", cid, wid),
            "TaskQueueName": contact.queue,
            "TaskChannelUniqueName": "voice" if contact.channel is Channel.VOICE else "chat",
            "TaskAttributes": orjson.dumps(attributes).decode(),
        }
        return PlatformRecord(t, self.key, orjson.dumps(record))

    def _activity(self, agent: _Agent, wid: str, name: str, t: int) -> PlatformRecord:
        record = {
            **self._base(agent, wid, "worker.activity.update", t),
            "ResourceType": "worker",
            "WorkerActivityName": name,
            "WorkerPreviousActivityName": agent.activity,
        }
        agent.activity = name
        return PlatformRecord(t, self.key, orjson.dumps(record))


RENDERERS = {
    "connect-agent-events": ConnectAgentRenderer,
    "connect-contact-events": ConnectContactRenderer,
    "genesys": GenesysRenderer,
    "twilio-taskrouter": TwilioRenderer,
}


def render(events: Iterator[CallEvent], fmt: str) -> Iterator[PlatformRecord]:
    """The events as the platform of `fmt` would have published them, in event-time order."""
    renderer = RENDERERS[fmt]()
    for event in events:
        yield from renderer.render(event)
