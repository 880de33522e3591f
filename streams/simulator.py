"""`acw simulate`: a contact center's call-lifecycle events, calibrated to an industry preset, with faults on demand.

Agents in teams work shifts (login, a break, lunch on long shifts, logout) and take voice contacts one at a
time or up to three chats at once from the queues they are skilled for. Each contact may be missed, held,
wrapped up, ended by going available or unavailable, by the next voice contact, or left to time out. Talk,
hold and ACW durations are lognormal, calibrated so ACW per interaction falls in the preset's range and
average handle time is near 11.6 minutes. Everything is drawn from one seeded generator per agent, so a
seed gives the same events whatever else changes.
"""

from __future__ import annotations

import heapq
import math
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

import orjson

from streams.domain.events import CallEvent, Channel, EventType

MINUTE_MS = 60_000
HOUR_MS = 3_600_000


@dataclass(frozen=True)
class Preset:
    """An industry's ACW range per interaction, in seconds."""

    name: str
    acw_low_s: float
    acw_high_s: float

    @property
    def acw_median_s(self) -> float:
        """The middle of the range: the median of the ACW distribution."""
        return (self.acw_low_s + self.acw_high_s) / 2


PRESETS = {
    p.name: p
    for p in (
        Preset("general", 120, 240),
        Preset("financial_services", 180, 360),
        Preset("healthcare", 240, 480),
        Preset("technical_support", 180, 300),
    )
}
AHT_TARGET_S = 11.6 * 60
QUEUES = ("sales", "billing", "support", "technical", "retention", "general")


@dataclass(frozen=True)
class Faults:
    """Rates (0..1 per event) of the faults to inject, and how far events may be reordered."""

    duplicate_rate: float = 0.0
    reorder_ms: int = 0
    late_rate: float = 0.0
    late_by_ms: int = 30_000
    malformed_rate: float = 0.0


@dataclass(frozen=True)
class SimulationConfig:
    """Size and shape of a simulation."""

    agents: int = 50
    duration_ms: int = 8 * HOUR_MS
    start_ms: int = 1_767_225_600_000  # 2026-01-01T00:00:00Z
    preset: str = "general"
    rate_per_agent_hour: float = 4.0  # contacts offered to a voice agent per hour of shift
    chat_share: float = 0.2  # share of agents on chat, with up to `chat_slots` chats at once
    chat_slots: int = 3
    team_size: int = 15
    seed: int = 1

    def __post_init__(self) -> None:
        if self.preset not in PRESETS:
            raise ValueError(f"unknown preset {self.preset!r}; one of {', '.join(PRESETS)}")
        if self.agents < 1 or self.duration_ms <= 0 or self.rate_per_agent_hour <= 0:
            raise ValueError("agents, duration and rate must be positive")


class _Agent:
    """One agent's shift as a generator of time-ordered events."""

    def __init__(self, config: SimulationConfig, index: int) -> None:
        self.config = config
        self.rng = random.Random(f"{config.seed}/{index}")
        self.id = f"agent-{index:05d}"
        self.team = f"team-{index // config.team_size:03d}"
        self.chat = self.rng.random() < config.chat_share
        self.queues = self.rng.sample(QUEUES, k=2)
        self.preset = PRESETS[config.preset]
        self.seq = 0

    def event(self, t: int, kind: EventType, contact: str | None = None, **kw: object) -> CallEvent:
        self.seq += 1
        return CallEvent(f"{self.id}-{self.seq}", kind, t, self.id, contact_id=contact, **kw)  # type: ignore[arg-type]

    def acw_ms(self) -> int:
        # Lognormal around the middle of the preset's range; its mean stays inside the range.
        return round(self.rng.lognormvariate(math.log(self.preset.acw_median_s), 0.25) * 1000)

    def talk_ms(self) -> int:
        # Talk makes up the rest of the 11.6-minute AHT after ACW and an average hold of ~20 s.
        mean_s = max(120.0, AHT_TARGET_S - self.preset.acw_median_s - 20)
        sigma = 0.45
        return round(self.rng.lognormvariate(math.log(mean_s) - sigma**2 / 2, sigma) * 1000)

    def shift(self) -> Iterator[CallEvent]:
        cfg, rng = self.config, self.rng
        length = min(cfg.duration_ms, 8 * HOUR_MS + 30 * MINUTE_MS)
        latest_start = max(0, cfg.duration_ms - length)
        start = cfg.start_ms + (
            rng.randrange(0, latest_start + 1) if latest_start else rng.randrange(0, 10 * MINUTE_MS)
        )
        end = min(cfg.start_ms + cfg.duration_ms, start + length)
        breaks = [(start + (end - start) // 3, 15 * MINUTE_MS, "Break")]
        if end - start >= 6 * HOUR_MS:
            breaks.append((start + (end - start) // 2, 30 * MINUTE_MS, "Lunch"))
        yield self.event(start, EventType.AGENT_LOGGED_IN, team_id=self.team)
        yield self.event(start + 1000, EventType.AGENT_AVAILABLE)
        if self.chat:
            streams = [self._chat_slot(slot, start + 1000, end, breaks) for slot in range(cfg.chat_slots)]
            last = end
            for event in heapq.merge(*streams, key=CallEvent.sort_key):
                last = event.occurred_at_ms
                yield event
        else:
            last = yield from self._voice(start + 1000, end, breaks)
        yield self.event(max(end, last) + rng.randrange(1000, 30_000), EventType.AGENT_LOGGED_OUT)

    def _gap_ms(self) -> int:
        per_contact_ms = HOUR_MS / self.config.rate_per_agent_hour
        idle_mean = max(5_000.0, per_contact_ms - AHT_TARGET_S * 1000)
        return 2_000 + round(self.rng.expovariate(1 / idle_mean))

    def _voice(self, t: int, end: int, breaks: list[tuple[int, int, str]]) -> Iterator[CallEvent]:
        rng = self.rng
        c = 0
        next_connects = False  # the previous ACW is ended by this contact's connect (NEXT_CONTACT)
        while True:
            t += 0 if next_connects else self._gap_ms()
            if t >= end:
                return t
            if breaks and t >= breaks[0][0]:
                _, length, status = breaks.pop(0)
                yield self.event(t, EventType.AGENT_UNAVAILABLE, status=status)
                t += length
                yield self.event(t, EventType.AGENT_AVAILABLE)
                continue
            contact, queue = f"{self.id}-c{c}", rng.choice(self.queues)
            c += 1
            kw = {"team_id": self.team, "queue_id": queue}
            yield self.event(t, EventType.CONTACT_OFFERED, contact, **kw)
            if rng.random() < 0.04:  # missed or abandoned before connecting: no ACW
                t += rng.randrange(5_000, 25_000)
                yield self.event(t, EventType.CONTACT_DISCONNECTED, contact, **kw)
                next_connects = False
                continue
            t += rng.randrange(2_000, 12_000)
            yield self.event(t, EventType.CONTACT_CONNECTED, contact, **kw)
            talk = self.talk_ms()
            if rng.random() < 0.25:
                hold_at = t + rng.randrange(5_000, max(6_000, talk // 2))
                hold = round(rng.lognormvariate(math.log(60), 0.5) * 1000)
                yield self.event(hold_at, EventType.HOLD_STARTED, contact)
                yield self.event(hold_at + hold, EventType.HOLD_ENDED, contact)
                talk += hold
            t += talk
            disconnected = t
            yield self.event(t, EventType.CONTACT_DISCONNECTED, contact, **kw)
            r = rng.random()
            next_connects = False
            if r < 0.015:  # never closed: the processor times it out
                t += 1_800_000 + rng.randrange(60_000, 300_000)
                yield self.event(t, EventType.AGENT_AVAILABLE)
                continue
            t += self.acw_ms()
            if r < 0.72:
                yield self.event(t, EventType.WRAPUP_COMPLETED, contact, disposition_code=rng.choice(DISPOSITIONS))
                yield self.event(t + rng.randrange(200, 3_000), EventType.AGENT_AVAILABLE)
            elif r < 0.87:
                yield self.event(t, EventType.AGENT_AVAILABLE)
            elif r < 0.93:
                yield self.event(t, EventType.AGENT_UNAVAILABLE, status=rng.choice(["Break", "Coaching", "Meeting"]))
                t += rng.randrange(2 * MINUTE_MS, 10 * MINUTE_MS)
                yield self.event(t, EventType.AGENT_AVAILABLE)
            else:
                # A transfer or direct next contact, offered while still wrapping up, connects and ends this ACW.
                next_connects = True
                t = max(t - 10_000, disconnected + 1_000)

    def _chat_slot(self, slot: int, t: int, end: int, breaks: list[tuple[int, int, str]]) -> Iterator[CallEvent]:
        rng = random.Random(f"{self.config.seed}/{self.id}/{slot}")
        c = 0
        while True:
            t += 2_000 + round(rng.expovariate(slot + 1) * 3 * MINUTE_MS)
            if t >= end:
                return
            if any(at <= t < at + length for at, length, _ in breaks):
                t = next(at + length for at, length, _ in breaks if at <= t < at + length)
                continue
            contact, queue = f"{self.id}-s{slot}c{c}", rng.choice(self.queues)
            c += 1
            kw = {"team_id": self.team, "queue_id": queue, "channel": Channel.CHAT}
            yield self.event(t, EventType.CONTACT_OFFERED, contact, **kw)
            t += rng.randrange(1_000, 8_000)
            yield self.event(t, EventType.CONTACT_CONNECTED, contact, **kw)
            t += self.talk_ms()
            yield self.event(t, EventType.CONTACT_DISCONNECTED, contact, **kw)
            t += round(rng.lognormvariate(math.log(PRESETS[self.config.preset].acw_median_s), 0.25) * 1000)
            yield self.event(t, EventType.WRAPUP_COMPLETED, contact, disposition_code=rng.choice(DISPOSITIONS))


DISPOSITIONS = ("RESOLVED", "FOLLOWUP", "ESCALATED", "SALE", "NO_SALE")


def parse_duration(text: str) -> int:
    """'90m', '8h', '1d', '45s' -> milliseconds."""
    units = {"s": 1000, "m": MINUTE_MS, "h": HOUR_MS, "d": 24 * HOUR_MS}
    text = text.strip().lower()
    if len(text) < 2 or text[-1] not in units:
        raise ValueError(f"bad duration {text!r}: use a number and s, m, h or d (e.g. 8h)")
    try:
        value = float(text[:-1])
    except ValueError:
        raise ValueError(f"bad duration {text!r}: use a number and s, m, h or d (e.g. 8h)") from None
    if value <= 0:
        raise ValueError(f"bad duration {text!r}: must be positive")
    return round(value * units[text[-1]])


def parse_start(text: str | None) -> int:
    """Epoch ms or ISO-8601 with offset -> epoch ms; None -> now (to the second)."""
    if text is None:
        return int(time.time()) * 1000
    if text.isdigit():
        return int(text)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"bad --start {text!r}: use epoch ms or ISO-8601 such as 2026-03-02T08:00:00+00:00") from None
    if moment.tzinfo is None:
        raise ValueError(f"bad --start {text!r}: give a UTC offset")
    return round(moment.timestamp() * 1000)


def directory_csv(config: SimulationConfig) -> str:
    """The simulated agents as an agent directory (`ACW_AGENT_DIRECTORY`): agent_id,team_id,display_name."""
    rows = [f"agent-{i:05d},team-{i // config.team_size:03d},Agent {i}\n" for i in range(config.agents)]
    return "agent_id,team_id,display_name\n" + "".join(rows)


def simulate(config: SimulationConfig) -> Iterator[CallEvent]:
    """Every event of every agent's shift, in event-time order (ties in the rules' order)."""
    agents = [_Agent(config, i).shift() for i in range(config.agents)]
    return heapq.merge(*agents, key=CallEvent.sort_key)


@dataclass(frozen=True)
class Emitted:
    """One record to emit: when (event time it is sent at), key, and either an event or malformed bytes."""

    send_at_ms: int
    key: bytes | None
    event: CallEvent | None
    raw: bytes | None = None
    fault: str | None = None


MALFORMED = (
    b'{"event_id": "bad-1", "event_type": "CONTACT_CONNECTED"',
    b'{"event_id": "bad-2", "event_type": "TELEPORTED", "occurred_at": 1, "agent_id": "x"}',
    b"\x00\xff garbage \x01",
    b"[]",
)


def platform_items(events: Iterator[CallEvent], fmt: str) -> Iterator[Emitted]:
    """The events rendered as a platform's records (`simulator_platforms`), as items to emit."""
    from streams.simulator_platforms import render

    for record in render(events, fmt):
        yield Emitted(record.time_ms, record.key, None, raw=record.value)


def with_faults(events: Iterator[CallEvent] | Iterator[Emitted], faults: Faults, seed: int = 1) -> Iterator[Emitted]:
    """The stream as it would arrive: duplicated, reordered within `reorder_ms`, some late, some garbage.

    Items may be our events or rendered platform records (`platform_items`); faults apply to either.
    """
    rng = random.Random(f"faults/{seed}")
    buffer: list[tuple[int, int, Emitted]] = []
    n = 0

    def push(send_at: int, item: Emitted) -> None:
        nonlocal n
        n += 1
        heapq.heappush(buffer, (send_at, n, item))

    horizon = faults.reorder_ms + faults.late_by_ms + 10_000
    for item in events:
        if isinstance(item, CallEvent):
            event, raw, t, key = item, None, item.occurred_at_ms, item.agent_id.encode()
        else:
            event, raw, t, key = item.event, item.raw, item.send_at_ms, item.key
        send_at = t + (rng.randrange(faults.reorder_ms) if faults.reorder_ms else 0)
        fault = None
        if faults.late_rate and rng.random() < faults.late_rate:
            send_at, fault = t + faults.late_by_ms + rng.randrange(1_000, 10_000), "late"
        push(send_at, Emitted(send_at, key, event, raw, fault=fault))
        if faults.duplicate_rate and rng.random() < faults.duplicate_rate:
            dup_at = send_at + rng.randrange(0, 2_000)
            push(dup_at, Emitted(dup_at, key, event, raw, fault="duplicate"))
        if faults.malformed_rate and rng.random() < faults.malformed_rate:
            push(send_at, Emitted(send_at, key, None, raw=rng.choice(MALFORMED), fault="malformed"))
        while buffer and buffer[0][0] < t - horizon:
            yield heapq.heappop(buffer)[2]
    while buffer:
        yield heapq.heappop(buffer)[2]


def to_json_line(item: Emitted) -> bytes:
    """A JSON Lines record of an emitted item (malformed items as they are)."""
    if item.event is None:
        return (item.raw or b"").replace(b"\n", b" ")
    return orjson.dumps(item.event.to_record())
