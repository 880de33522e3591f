"""One stream's ACW processor: event-time ordering, lateness, de-duplication, timeouts and state snapshots."""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from streams.domain.events import CallEvent, EventType, event_from_record
from streams.domain.intervals import AcwInterval, AgentState, EndReason, apply_event, close_interval


@dataclass(frozen=True, slots=True)
class RulesConfig:
    """The knobs of the ACW rules, all in milliseconds of event time."""

    max_acw_ms: int = 1_800_000
    allowed_lateness_ms: int = 5_000
    dedup_window_ms: int = 3_600_000
    contact_ttl_ms: int = 12 * 3_600_000

    def __post_init__(self) -> None:
        for name in ("max_acw_ms", "dedup_window_ms", "contact_ttl_ms"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.allowed_lateness_ms < 0:
            raise ValueError(f"allowed_lateness_ms must be >= 0, got {self.allowed_lateness_ms}")
        if self.dedup_window_ms < self.allowed_lateness_ms:
            raise ValueError("dedup_window_ms must be at least allowed_lateness_ms")


class Disposition(StrEnum):
    """What happened to an offered event."""

    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    LATE = "late"
    # A restated event (an earlier record already reported it) that was already seen or is late: dropped silently.
    RESTATED = "restated"
    # An event of a type this version does not know (EventType.UNKNOWN): counted, never applied.
    IGNORED = "ignored"


@dataclass(frozen=True, slots=True, init=False)  # `__init__` written out to be compiled: see `AcwInterval`
class Step:
    """The result of offering one event: its disposition and the intervals that became final."""

    disposition: Disposition
    intervals: Sequence[AcwInterval] = ()

    def __init__(self, disposition: Disposition, intervals: Sequence[AcwInterval] = ()) -> None:
        object.__setattr__(self, "disposition", disposition)
        object.__setattr__(self, "intervals", intervals)


_DUPLICATE = Step(Disposition.DUPLICATE)
_LATE = Step(Disposition.LATE)
_ACCEPTED = Step(Disposition.ACCEPTED)
_RESTATED = Step(Disposition.RESTATED)
_IGNORED = Step(Disposition.IGNORED)
# Put in a queue slot once its event is applied, so the slots before the head hold no event until compacted.
_APPLIED = (0, 0, "", 0, CallEvent("", EventType.UNKNOWN, 0, ""))
# Where a platform reports its own ACW for a contact (attribute of WRAPUP_COMPLETED), and how far ours may differ.
REPORTED_ACW_ATTRIBUTE = "reported_acw_ms"
REPORTED_ACW_TOLERANCE_MS = 1000


class Processor:
    """Applies events of one stream (a Kafka partition, or a whole replayed file) in event-time order.

    Stream time (the watermark) is the largest event time seen. An event is applied once stream time
    has moved past it by more than the allowed lateness, so any arrival order within the lateness
    yields the intervals of the sorted stream. Older events are rejected as late.

    Pending events wait in two sorted places: a queue for those that arrive after every event queued
    before them (nearly all, in a live stream) and a heap for the others. Applying takes the smaller head,
    so the order is the one a single heap would give, with most events never sifted.
    """

    def __init__(self, config: RulesConfig, track_changes: bool = True) -> None:
        self.config = config
        # Whether agents changed since they were last taken are tracked (for checkpoints and the live state);
        # a run that never checkpoints (replay) leaves it off.
        self.tracks_changes = track_changes
        self.watermark_ms: int | None = None
        self.agents: dict[str, AgentState] = {}
        self.counts: Counter[str] = Counter()
        # (occurred_at, type, event_id, arrival seq, event): the apply order, never comparing events.
        self._pending: list[tuple[int, int, str, int, CallEvent]] = []  # a heap: events out of arrival order
        self._queue: list[tuple[int, int, str, int, CallEvent]] = []  # ascending from `_head`: the others
        self._head = 0
        self._seq = 0
        self._accepted = 0
        self._applied = 0
        # (deadline, agent_id, contact_id, disconnected_at): lazily invalidated timeout index.
        self._deadlines: list[tuple[int, str, str, int]] = []
        self._dirty: set[str] = set()
        # Agents whose applied state changed since the owner last took them (for the live agent state).
        self._touched: set[str] = set()
        # (agent_id, contact_id, disconnected_at) of intervals opened since the owner last cleared it.
        self.opened: list[tuple[str, str, int]] = []
        # Stream time at which idle agents are next swept of expired event ids and stale contacts.
        self._next_sweep_ms: int | None = None

    # --- feeding -------------------------------------------------------------------------

    def offer(self, event: CallEvent) -> Step:
        """Take one arriving event; returns whether it was accepted and the intervals now final."""
        if event.event_type is EventType.UNKNOWN:
            self.counts["unknown_event_type"] += 1
            return _IGNORED
        t = event.occurred_at_ms
        wm = self.watermark_ms
        agent = self.agents.get(event.agent_id)
        if agent is None:
            agent = self.agents[event.agent_id] = AgentState(event.agent_id)
        cutoff = (wm if wm is not None and wm > t else t) - self.config.dedup_window_ms
        if not agent.remember(event.event_id, t, cutoff):
            if event.restated:
                self.counts["restated"] += 1
                return _RESTATED
            self.counts["duplicates"] += 1
            return _DUPLICATE
        if self.tracks_changes:
            self._dirty.add(event.agent_id)
        if wm is not None and t < wm - self.config.allowed_lateness_ms:
            if event.restated:
                self.counts["restated"] += 1
                return _RESTATED
            self.counts["late"] += 1
            return _LATE
        self._accepted += 1
        self._seq += 1
        entry = (t, event.event_type, event.event_id, self._seq, event)
        queue = self._queue
        if len(queue) == self._head or t > queue[-1][0] or (t == queue[-1][0] and entry > queue[-1]):
            queue.append(entry)
        else:
            heapq.heappush(self._pending, entry)
        if wm is None or t > wm:
            self.watermark_ms = t
            horizon = t - self.config.allowed_lateness_ms
            pending = self._pending
            if (
                (len(queue) > self._head and queue[self._head][0] < horizon)
                or (pending and pending[0][0] < horizon)
                or (self._deadlines and self._deadlines[0][0] < horizon)
            ):
                released = self._release(horizon)
                if released:
                    return Step(Disposition.ACCEPTED, released)
        return _ACCEPTED

    def advance(self, to_ms: int) -> list[AcwInterval]:
        """Move stream time forward without an event (idle partitions, driven by wall-clock)."""
        if self.watermark_ms is not None and to_ms <= self.watermark_ms:
            return []
        self.watermark_ms = to_ms
        return self._release(to_ms - self.config.allowed_lateness_ms)

    def finish(self) -> list[AcwInterval]:
        """End of input: apply everything pending and close only what timed out by the last event time."""
        if self.watermark_ms is None:
            return []
        return self._release(self.watermark_ms, inclusive=True)

    # --- core ------------------------------------------------------------------------------

    def _release(self, horizon_ms: int, inclusive: bool = False) -> list[AcwInterval]:
        """Apply pending events before the horizon in order, then time out deadlines before it."""
        out: list[AcwInterval] = []
        pending = self._pending
        queue = self._queue
        head = self._head
        cfg = self.config
        limit = horizon_ms + 1 if inclusive else horizon_ms
        applied = 0
        dirty = self._dirty
        touched = self._touched
        tracks = self.tracks_changes
        while True:
            if head < len(queue):
                first = queue[head]
                if pending and (pending[0][0] < first[0] or (pending[0][0] == first[0] and pending[0] < first)):
                    if pending[0][0] >= limit:
                        break
                    event = heapq.heappop(pending)[4]
                else:
                    if first[0] >= limit:
                        break
                    event = first[4]
                    queue[head] = _APPLIED
                    head += 1
            elif pending and pending[0][0] < limit:
                event = heapq.heappop(pending)[4]
            else:
                break
            agent = self.agents[event.agent_id]
            closed = apply_event(agent, event, cfg.max_acw_ms, cfg.contact_ttl_ms)
            applied += 1
            if tracks:
                dirty.add(event.agent_id)
                touched.add(event.agent_id)
            if closed:
                out.extend(closed)
                if event.attributes and REPORTED_ACW_ATTRIBUTE in event.attributes:
                    self._compare_reported_acw(event, closed)
            if event.event_type is EventType.CONTACT_DISCONNECTED:
                contact = agent.contacts.get(event.contact_id or "")
                if contact is not None and contact.disconnected_at_ms == event.occurred_at_ms:
                    self.opened.append((event.agent_id, event.contact_id or "", event.occurred_at_ms))
                    heapq.heappush(
                        self._deadlines,
                        (
                            event.occurred_at_ms + cfg.max_acw_ms,
                            event.agent_id,
                            event.contact_id or "",
                            event.occurred_at_ms,
                        ),
                    )
        if head == len(queue):
            queue.clear()
            head = 0
        elif head > 1024 and 2 * head > len(queue):
            del queue[:head]
            head = 0
        self._head = head
        self._applied += applied
        if self._deadlines and self._deadlines[0][0] < horizon_ms:
            out.extend(self._expire(horizon_ms))
        if self._next_sweep_ms is None or horizon_ms >= self._next_sweep_ms:
            self._sweep(horizon_ms)
        for interval in out:
            self.counts[f"intervals.{interval.end_reason!s}"] += 1
        return out

    def _compare_reported_acw(self, event: CallEvent, closed: list[AcwInterval]) -> None:
        """Count a platform-reported ACW that disagrees with ours by more than the tolerance (ours is kept)."""
        try:
            reported_ms = int(event.attributes[REPORTED_ACW_ATTRIBUTE])
        except ValueError:
            return
        for interval in closed:
            if interval.contact_id == event.contact_id and interval.end_reason is EndReason.WRAPUP_COMPLETED:
                ours_ms = interval.ended_at_ms - interval.disconnected_at_ms
                if abs(ours_ms - reported_ms) > REPORTED_ACW_TOLERANCE_MS:
                    self.counts["acw_disagreements"] += 1

    def _expire(self, before_ms: int) -> list[AcwInterval]:
        out = []
        deadlines = self._deadlines
        while deadlines and deadlines[0][0] < before_ms:
            deadline, agent_id, contact_id, disconnected_at = heapq.heappop(deadlines)
            agent = self.agents.get(agent_id)
            contact = agent.contacts.get(contact_id) if agent else None
            if agent is None or contact is None or contact.disconnected_at_ms != disconnected_at:
                continue  # closed earlier by an event
            out.append(close_interval(agent, contact_id, contact, deadline, EndReason.TIMED_OUT))
            if self.tracks_changes:
                self._dirty.add(agent_id)
                self._touched.add(agent_id)
        return out

    def _sweep(self, horizon_ms: int) -> None:
        """Forget event ids older than the dedup window and stale unanswered contacts, for every agent.

        An agent's own events prune its memory as they come; this reaches the agents that stopped sending
        (logged out for the day), so memory follows the agents working now, not everyone seen since start.
        What is left of an idle agent is its team and queue.
        """
        cfg = self.config
        self._next_sweep_ms = horizon_ms + cfg.dedup_window_ms // 2
        seen_cutoff = horizon_ms - cfg.dedup_window_ms
        contact_cutoff = horizon_ms - cfg.contact_ttl_ms
        for agent_id, agent in self.agents.items():
            changed = False
            oldest = agent.seen.oldest_ms()
            if oldest is not None and oldest < seen_cutoff:
                agent.seen.prune(seen_cutoff)
                changed = True
            stale = [
                cid
                for cid, c in agent.contacts.items()
                if c.disconnected_at_ms is None and c.last_seen_ms < contact_cutoff
            ]
            for cid in stale:
                del agent.contacts[cid]
            if not self.tracks_changes:
                continue
            if changed or stale:
                self._dirty.add(agent_id)
            if stale:
                self._touched.add(agent_id)

    # --- inspection and snapshots ----------------------------------------------------------

    @property
    def accepted(self) -> int:
        """Events taken for application (neither duplicate nor late)."""
        return self._accepted

    @property
    def applied(self) -> int:
        """Events applied to agent state so far."""
        return self._applied

    def open_intervals(self) -> list[tuple[str, str, int]]:
        """(agent_id, contact_id, disconnected_at_ms) of every interval still open."""
        return sorted(
            (a.agent_id, cid, c.disconnected_at_ms)
            for a in self.agents.values()
            for cid, c in a.contacts.items()
            if c.disconnected_at_ms is not None
        )

    def pending_count(self) -> int:
        """Events accepted but not yet applied (waiting for the lateness horizon)."""
        return len(self._pending) + len(self._queue) - self._head

    def has_dirty(self) -> bool:
        """Whether any agent changed since the last `take_dirty`."""
        return bool(self._dirty)

    def forget_changes(self) -> None:
        """Drop change tracking without building snapshots (for runs that never checkpoint)."""
        self._dirty.clear()
        self._touched.clear()

    def has_touched(self) -> bool:
        """Whether any agent's applied state changed since the last `take_touched`."""
        return bool(self._touched)

    def take_touched(self) -> set[str]:
        """Agents whose applied state changed since the last call (sorted by the caller if order matters)."""
        touched, self._touched = self._touched, set()
        return touched

    def take_dirty(self) -> dict[str, dict[str, Any]]:
        """Agents changed since the last call, as plain data, and forget that they were dirty."""
        agents = self.agents
        return {agent_id: agents[agent_id].to_dict() for agent_id in self.take_dirty_ids()}

    def take_dirty_ids(self) -> set[str]:
        """Ids of the agents changed since the last call (all of them still known), forgetting that they changed."""
        if not self.tracks_changes:
            raise RuntimeError("this processor does not track changes, so it has no snapshots to take")
        dirty, self._dirty = self._dirty, set()
        return dirty

    def mark_dirty(self, agent_ids: Iterable[str]) -> None:
        """Count agents as changed again (their last snapshot was not persisted)."""
        self._dirty.update(a for a in agent_ids if a in self.agents)

    def meta(self) -> dict[str, Any]:
        """Stream-level state (watermark and pending events) as plain data."""
        return {
            "wm": self.watermark_ms,
            "sweep": self._next_sweep_ms,
            "pending": [
                entry[4].to_record() for entry in sorted(self._pending + self._queue[self._head :], key=lambda e: e[:4])
            ],
        }

    @classmethod
    def restore(cls, config: RulesConfig, meta: dict[str, Any] | None, agents: dict[str, dict[str, Any]]) -> Processor:
        """Rebuild a processor from `meta()` and `take_dirty()` snapshots."""
        proc = cls(config)
        for agent_id, data in agents.items():
            agent = proc.agents[agent_id] = AgentState.from_dict(agent_id, data)
            for cid, contact in agent.contacts.items():
                if contact.disconnected_at_ms is not None:
                    proc._deadlines.append(
                        (
                            contact.disconnected_at_ms + config.max_acw_ms,
                            agent_id,
                            cid,
                            contact.disconnected_at_ms,
                        )
                    )
        heapq.heapify(proc._deadlines)
        if meta is not None:
            proc.watermark_ms = meta["wm"]
            proc._next_sweep_ms = meta.get("sweep")
            for record in meta["pending"]:
                event = event_from_record(record)
                proc._seq += 1
                proc._pending.append((event.occurred_at_ms, event.event_type, event.event_id, proc._seq, event))
                if event.agent_id not in proc.agents:
                    proc.agents[event.agent_id] = AgentState(event.agent_id)
            heapq.heapify(proc._pending)
        return proc
