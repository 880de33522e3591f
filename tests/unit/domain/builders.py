"""Terse builders for call events in tests."""

from __future__ import annotations

import itertools

from streams.domain.events import CallEvent, Channel, EventType
from streams.domain.intervals import AcwInterval
from streams.domain.processor import Processor, RulesConfig

T0 = 1_700_000_000_000
_ids = itertools.count()


def ev(
    t_s: float,
    kind: str,
    contact: str | None = None,
    agent: str = "a1",
    *,
    channel: str | None = None,
    event_id: str | None = None,
    **kw: str,
) -> CallEvent:
    """An event `t_s` seconds after T0."""
    return CallEvent(
        event_id=event_id or f"e{next(_ids)}",
        event_type=EventType[kind],
        occurred_at_ms=T0 + round(t_s * 1000),
        agent_id=agent,
        contact_id=contact,
        channel=Channel(channel) if channel else None,
        **kw,
    )


def run(events: list[CallEvent], config: RulesConfig | None = None) -> list[AcwInterval]:
    """All intervals of a stream offered in the given order, finished at end of input."""
    proc = Processor(config or RulesConfig())
    out: list[AcwInterval] = []
    for event in events:
        out.extend(proc.offer(event).intervals)
    out.extend(proc.finish())
    return out
