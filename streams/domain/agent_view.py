"""The live state of one agent as the compacted agent-state topic publishes it: status and contacts in ACW."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from streams.domain.intervals import AgentState

# Statuses in the order of the schema's enum (UNKNOWN: no agent-level event seen yet, or a newer writer's).
STATUSES = ("LOGGED_IN", "AVAILABLE", "UNAVAILABLE", "ON_CONTACT", "IN_ACW", "UNKNOWN")


@dataclass(frozen=True, slots=True)
class OpenAcw:
    """One contact whose ACW is open."""

    contact_id: str
    channel: str
    queue_id: str | None
    disconnected_at_ms: int


@dataclass(frozen=True, slots=True)
class AgentView:
    """What is true of an agent now: the value of its record on the agent-state topic (`as_of` aside)."""

    agent_id: str
    team_id: str | None
    status: str
    status_detail: str | None
    acw_contacts: tuple[OpenAcw, ...]
    contacts_active: int

    def to_record(self, as_of_ms: int) -> dict[str, Any]:
        """The `schemas/acw_agent_state.avsc` record, as of a stream time."""
        return {
            "agent_id": self.agent_id,
            "team_id": self.team_id,
            "status": self.status,
            "status_detail": self.status_detail,
            "acw_contacts": [
                {
                    "contact_id": c.contact_id,
                    "channel": c.channel,
                    "queue_id": c.queue_id,
                    "disconnected_at": c.disconnected_at_ms,
                }
                for c in self.acw_contacts
            ],
            "contacts_active": self.contacts_active,
            "as_of": as_of_ms,
        }


def view_of(agent: AgentState) -> AgentView | None:
    """The agent's live state; None once it logged out (its record becomes a tombstone)."""
    if agent.activity == "LOGGED_OUT" and not agent.contacts:
        return None
    acw = tuple(
        OpenAcw(cid, c.acw_channel.value, c.acw_queue_id, c.disconnected_at_ms)  # type: ignore[arg-type]
        for cid, c in agent.open_contacts()
    )
    active = sum(1 for c in agent.contacts.values() if c.connected_at_ms is not None and c.disconnected_at_ms is None)
    if acw:
        status, detail = "IN_ACW", None
    elif active:
        status, detail = "ON_CONTACT", None
    elif agent.activity is not None and agent.activity != "LOGGED_OUT":
        status, detail = agent.activity, agent.activity_status
    else:
        status, detail = "UNKNOWN", None
    return AgentView(agent.agent_id, agent.team_id, status, detail, acw, active)
