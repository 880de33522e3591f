"""Source adapters: one platform record in, zero or more `CallEvent`s out, before the core sees anything."""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple, Protocol

from streams.domain.events import CallEvent


class Translation(NamedTuple):
    """What one input record became: its kind (for metrics), its events, and what the adapter noticed.

    `ignored` marks a kind the adapter deliberately skips (heartbeats, customer-side events, configuration
    changes): counted by kind, never dead-lettered. `notes` are lossy points met on the way (an unknown
    channel mapped to TASK, a contact that vanished from a snapshot), counted by name.
    """

    kind: str
    events: tuple[CallEvent, ...] = ()
    ignored: bool = False
    notes: tuple[str, ...] = ()


class Source(Protocol):
    """Turns one raw record of its format into a Translation; raises InvalidEvent with a reason naming the format."""

    format: str

    def translate(self, data: bytes | Mapping[str, object]) -> Translation:
        """Translate one record (raw bytes, or an already decoded object)."""
        ...

    def routing_key(self, event: CallEvent) -> bytes:
        """The Kafka key that puts all of an agent's events in one partition (for this format's agents)."""
        ...


def agent_key(event: CallEvent) -> bytes:
    """The default routing key: our agent id."""
    return event.agent_id.encode()
