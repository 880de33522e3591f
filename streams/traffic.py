"""Deterministic synthetic call-event traffic for tests, benchmarks and demos."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from streams.domain.events import CallEvent, Channel, EventType

T_START_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z


@dataclass(frozen=True)
class TrafficShape:
    """Size and mix of generated traffic."""

    agents: int = 100
    contacts_per_agent: int = 20
    teams: int = 5
    queues: int = 8
    chat_share: float = 0.2
    missed_share: float = 0.05
    timeout_share: float = 0.03
    start_ms: int = T_START_MS
    stagger_ms: int = 600_000  # agents log in at random within this long after start_ms


def generate(shape: TrafficShape, seed: int = 1) -> list[CallEvent]:
    """All events of every agent's shift, sorted by event time (ties in the rules' order)."""
    rng = random.Random(seed)
    events: list[CallEvent] = []
    for a in range(shape.agents):
        events.extend(_agent_shift(rng, shape, a))
    events.sort(key=CallEvent.sort_key)
    return events


def _agent_shift(rng: random.Random, shape: TrafficShape, a: int) -> Iterator[CallEvent]:
    agent = f"agent-{a:05d}"
    team = f"team-{a % shape.teams}"
    seq = 0

    def make(t: int, kind: EventType, contact: str | None = None, **kw: object) -> CallEvent:
        nonlocal seq
        seq += 1
        return CallEvent(f"{agent}-{seq}", kind, t, agent, contact_id=contact, **kw)  # type: ignore[arg-type]

    t = shape.start_ms + rng.randrange(0, shape.stagger_ms)
    yield make(t, EventType.AGENT_LOGGED_IN, team_id=team)
    t += 1000
    yield make(t, EventType.AGENT_AVAILABLE)
    for c in range(shape.contacts_per_agent):
        contact = f"{agent}-c{c}"
        queue = f"queue-{rng.randrange(shape.queues)}"
        channel = Channel.CHAT if rng.random() < shape.chat_share else None
        t += rng.randrange(1_000, 60_000)
        yield make(t, EventType.CONTACT_OFFERED, contact, queue_id=queue, channel=channel)
        if rng.random() < shape.missed_share:
            t += rng.randrange(5_000, 20_000)
            yield make(t, EventType.CONTACT_DISCONNECTED, contact)
            continue
        t += rng.randrange(1_000, 15_000)
        yield make(t, EventType.CONTACT_CONNECTED, contact)
        talk = rng.randrange(60_000, 600_000)
        if rng.random() < 0.25:
            hold_at = t + rng.randrange(10_000, talk // 2)
            yield make(hold_at, EventType.HOLD_STARTED, contact)
            yield make(hold_at + rng.randrange(5_000, 90_000), EventType.HOLD_ENDED, contact)
            talk += 90_000
        t += talk
        yield make(t, EventType.CONTACT_DISCONNECTED, contact)
        r = rng.random()
        if r < shape.timeout_share:
            t += 1_800_000 + rng.randrange(1_000, 60_000)
            yield make(t, EventType.AGENT_AVAILABLE)
            continue
        acw = int(rng.lognormvariate(11.7, 0.5))  # median ~2 min
        acw = 0 if rng.random() < 0.03 else min(acw, 1_500_000)
        t += acw
        if r < 0.7:
            yield make(t, EventType.WRAPUP_COMPLETED, contact, disposition_code=rng.choice(["RESOLVED", "FOLLOWUP"]))
            yield make(t + rng.randrange(0, 3_000), EventType.AGENT_AVAILABLE)
        elif r < 0.85:
            yield make(t, EventType.AGENT_AVAILABLE)
        elif r < 0.92:
            yield make(t, EventType.AGENT_UNAVAILABLE, status=rng.choice(["Break", "Lunch", "Meeting"]))
            t += rng.randrange(60_000, 900_000)
            yield make(t, EventType.AGENT_AVAILABLE)
        # else: the next contact's connect ends this ACW (NEXT_CONTACT) unless channels differ
    t += rng.randrange(1_000, 60_000)
    yield make(t, EventType.AGENT_LOGGED_OUT)


def end_of_input_events(after_ms: int, partitions: int, key: Callable[[str], bytes] = str.encode) -> list[CallEvent]:
    """One login per input partition at `after_ms`: moves every partition's stream time past pending work.

    Agent ids are chosen so that Kafka's default partitioner (murmur2) puts one on each partition, going by
    `key` (an agent id's routing key: the id itself, or e.g. its Connect agent ARN).
    """
    from aiokafka.partitioner import DefaultPartitioner

    partitioner = DefaultPartitioner()
    all_partitions = list(range(partitions))
    events: dict[int, CallEvent] = {}
    i = 0
    while len(events) < partitions:
        agent = f"zz-end-{i}"
        p = partitioner(key(agent), all_partitions, all_partitions)
        events.setdefault(p, CallEvent(f"end-{i}", EventType.AGENT_LOGGED_IN, after_ms, agent))
        i += 1
    return [events[p] for p in sorted(events)]
