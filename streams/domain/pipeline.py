"""One source stream's whole job: events to intervals, intervals to per-pane aggregates, and interval alerts.

Windows are built from panes (slices as long as the greatest common hop), so an interval updates one
pane per scope however many hopping windows hold it. A pane is final once stream time minus the
allowed lateness passes its end plus the grace period; `progress` then tells the merger (`merge.py`),
which adds up the panes of every source partition into window aggregates.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from streams.domain.agent_view import AgentView, view_of
from streams.domain.aggregates import Scope, WindowKey, WindowStats
from streams.domain.alerts import AlertRule, RuleKind, interval_alerts, open_firing, open_resolved
from streams.domain.events import CallEvent
from streams.domain.intervals import AcwInterval
from streams.domain.panes import OpenSpan, PaneBook, Panes, pane_key
from streams.domain.processor import Processor, RulesConfig, Step
from streams.domain.windows import WindowSpec, parse_windows

DEFAULT_WINDOWS = parse_windows("15m,1h/5m")
END_OF_STREAM = 2**62


@dataclass(frozen=True, slots=True)
class AggregationConfig:
    """Windows, grace period and alert rules."""

    windows: tuple[WindowSpec, ...] = DEFAULT_WINDOWS
    grace_ms: int = 60_000
    rules: tuple[AlertRule, ...] = ()
    scopes: frozenset[Scope] = frozenset(Scope)

    def __post_init__(self) -> None:
        if not self.windows:
            raise ValueError("at least one window is needed")
        if self.grace_ms < 0:
            raise ValueError("grace_ms must be >= 0")
        if not self.scopes:
            raise ValueError("at least one scope is needed")
        for rule in self.rules:
            if rule.kind in (RuleKind.AVG_OVER, RuleKind.PCT_OVER) and rule.scope not in self.scopes:
                raise ValueError(f"rule {rule.name!r} watches {rule.scope.value} windows, which are not aggregated")

        # The slice every window is made of (the greatest common divisor of the hops), and the longest window.
        object.__setattr__(self, "pane_ms", math.gcd(*(w.hop_ms for w in self.windows)))
        object.__setattr__(self, "max_size_ms", max(w.size_ms for w in self.windows))

    pane_ms: int = field(init=False, compare=False)
    max_size_ms: int = field(init=False, compare=False)


@dataclass(slots=True, init=False)  # `__init__` written out to be compiled: see `AcwInterval`
class Output:
    """What one step produced, in the order it must be sent."""

    intervals: list[AcwInterval] = field(default_factory=list)
    alerts: list[dict[str, Any]] = field(default_factory=list)
    # Panes of this source that became final, then the new closed-through time (all panes ending by it are final).
    final_panes: list[tuple[WindowKey, WindowStats]] = field(default_factory=list)
    progress: int | None = None
    # Intervals whose pane was already final: (interval, reason).
    rejected: list[tuple[AcwInterval, str]] = field(default_factory=list)
    # Windows finished where their panes were made (a scope that lives in one partition): records, then alerts.
    aggregates: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    window_alerts: list[dict[str, Any]] = field(default_factory=list)

    def __init__(
        self,
        intervals: list[AcwInterval] | None = None,
        alerts: list[dict[str, Any]] | None = None,
        final_panes: list[tuple[WindowKey, WindowStats]] | None = None,
        progress: int | None = None,
        rejected: list[tuple[AcwInterval, str]] | None = None,
        aggregates: list[tuple[str, dict[str, Any]]] | None = None,
        window_alerts: list[dict[str, Any]] | None = None,
    ) -> None:
        self.intervals = [] if intervals is None else intervals
        self.alerts = [] if alerts is None else alerts
        self.final_panes = [] if final_panes is None else final_panes
        self.progress = progress
        self.rejected = [] if rejected is None else rejected
        self.aggregates = [] if aggregates is None else aggregates
        self.window_alerts = [] if window_alerts is None else window_alerts

    def __bool__(self) -> bool:
        return bool(
            self.intervals
            or self.alerts
            or self.final_panes
            or self.progress is not None
            or self.rejected
            or self.aggregates
            or self.window_alerts
        )


@dataclass(frozen=True, slots=True)
class LiveView:
    """Who is in ACW as of stream time, and which open_over alerts fire: for gauges and live views."""

    open_intervals: int = 0
    agents_in_acw: int = 0
    oldest_open_ms: int | None = None  # age of the oldest open interval at stream time
    firing: dict[str, int] = field(default_factory=dict)  # open_over rule name -> alerts firing now


class AcwPipeline:
    """Processor + pane aggregation + interval alerts of one stream; everything in event time."""

    def __init__(
        self, rules: RulesConfig, config: AggregationConfig, track_changes: bool = True, panes: Panes | None = None
    ) -> None:
        """`panes` stands in for the pipeline's own `PaneBook` (replay keeps the book where windows are merged)."""
        self.rules = rules
        self.config = config
        self.processor = Processor(rules, track_changes)
        self.book = PaneBook(config.pane_ms, config.scopes, track_changes)
        self._panes: Panes = self.book if panes is None else panes
        # (agent_id, contact_id, disconnected_at) -> (team_id, queue_id) of every open interval.
        self.open: dict[tuple[str, str, int], tuple[str | None, str | None]] = {}
        self.horizon_ms: int | None = None
        self.closed_through_ms: int | None = None
        self._open_rules = [r for r in config.rules if r.kind is RuleKind.OPEN_OVER]
        self._interval_rules = [r for r in config.rules if r.kind is RuleKind.INTERVAL_OVER]
        self._open_heap: list[tuple[int, int, str, str, int]] = []  # (due, rule index, agent, contact, disc)
        # The live agent state last handed out per agent (None: a tombstone), to hand out only changes.
        self._views: dict[str, AgentView | None] = {}
        self.counts: dict[str, int] = {"late_for_window": 0}

    # --- feeding -----------------------------------------------------------------------------

    def offer(self, event: CallEvent) -> tuple[Step, Output]:
        """Take one arriving event; its disposition and everything that became final."""
        step = self.processor.offer(event)
        wm = self.processor.watermark_ms
        horizon = wm - self.rules.allowed_lateness_ms if wm is not None else None
        if not step.intervals and not self.processor.opened:
            if horizon == self.horizon_ms:
                return step, _NOTHING
            if horizon is not None and self._quiet_until(horizon):
                self.horizon_ms = horizon  # no open-ACW alert falls due and no pane closes: `_after` would do no more
                return step, _NOTHING
        return step, self._after(step.intervals, horizon)

    def _quiet_until(self, horizon: int) -> bool:
        """Whether moving the horizon to `horizon` fires no open-ACW alert check and closes no pane."""
        heap = self._open_heap
        closed = self.closed_through_ms
        return (
            (not heap or heap[0][0] >= horizon)
            and closed is not None
            and self._pane_floor(horizon - self.config.grace_ms - 1) <= closed
        )

    def advance(self, to_ms: int) -> Output:
        """Move stream time forward without an event (idle partitions, driven by wall-clock)."""
        intervals = self.processor.advance(to_ms)
        wm = self.processor.watermark_ms
        return self._after(intervals, None if wm is None else wm - self.rules.allowed_lateness_ms)

    def finish(self) -> Output:
        """End of input: apply everything pending and make every pane final."""
        intervals = self.processor.finish()
        wm = self.processor.watermark_ms
        if wm is None:
            return Output()
        out = self._after(intervals, wm + 1, close=False)
        first, last = self._panes.bounds(self._pane_floor(wm))
        if self.closed_through_ms is None:
            self.closed_through_ms = first
        self._close_panes(last, out, open_until=wm)
        out.progress = END_OF_STREAM
        return out

    # --- core ----------------------------------------------------------------------------------

    def _after(self, intervals: Iterable[AcwInterval], horizon: int | None, close: bool = True) -> Output:
        out = Output()
        previous = self.horizon_ms
        proc = self.processor
        for agent_id, contact_id, disc in proc.opened:
            contact = proc.agents[agent_id].contacts.get(contact_id)
            team = contact.acw_team_id if contact else None
            queue = contact.acw_queue_id if contact else None
            self.open[(agent_id, contact_id, disc)] = (team, queue)
            for i, rule in enumerate(self._open_rules):
                heapq.heappush(self._open_heap, (disc + rule.threshold_ms, i, agent_id, contact_id, disc))
        proc.opened.clear()
        for interval in intervals:
            self._book(interval, previous, out)
        if horizon is not None:
            self.horizon_ms = horizon
            heap = self._open_heap
            while heap and heap[0][0] < horizon:
                _, i, agent_id, contact_id, disc = heapq.heappop(heap)
                if (agent_id, contact_id, disc) in self.open:
                    out.alerts.append(open_firing(self._open_rules[i], agent_id, contact_id, disc))
            if close:
                if self.closed_through_ms is None:  # nothing before the first event: final up to there
                    self.closed_through_ms = out.progress = self._pane_floor(horizon - self.config.grace_ms - 1)
                else:
                    self._close_panes(self._pane_floor(horizon - self.config.grace_ms - 1), out)
        return out

    def _book(self, interval: AcwInterval, previous_horizon: int | None, out: Output) -> None:
        out.intervals.append(interval)
        disc = interval.disconnected_at_ms
        self.open.pop((interval.agent_id, interval.contact_id, disc), None)
        acw_ms = interval.ended_at_ms - disc
        for rule in self._open_rules:
            if acw_ms > rule.threshold_ms:
                if previous_horizon is None or previous_horizon <= disc + rule.threshold_ms:
                    out.alerts.append(open_firing(rule, interval.agent_id, interval.contact_id, disc))
                out.alerts.append(open_resolved(rule, interval))
        for rule in self._interval_rules:
            out.alerts.extend(interval_alerts(rule, interval))
        pane = self._pane_floor(interval.ended_at_ms)
        if self.closed_through_ms is not None and pane < self.closed_through_ms:
            self.counts["late_for_window"] += 1
            out.rejected.append((interval, "late_for_window"))
            return
        self._panes.count(interval, pane)

    def _pane_floor(self, t_ms: int) -> int:
        return t_ms - t_ms % self.config.pane_ms

    def _close_panes(self, through_ms: int, out: Output, open_until: int | None = None) -> None:
        """Make every pane ending by `through_ms` final, after adding the time agents spent in ACW within it."""
        start = self.closed_through_ms
        if start is None or through_ms <= start:
            return
        opened: list[OpenSpan] = [(a, d, t, q) for (a, _, d), (t, q) in self.open.items() if d < through_ms]
        self._panes.close(start, through_ms, through_ms if open_until is None else open_until, opened, out.final_panes)
        self.closed_through_ms = through_ms
        out.progress = through_ms

    def live(self) -> LiveView:
        """Open intervals, agents in ACW, the oldest open interval's age and firing open_over alerts."""
        wm = self.processor.watermark_ms
        if not self.open or wm is None:
            return LiveView(firing={r.name: 0 for r in self._open_rules})
        oldest = min(disc for _, _, disc in self.open)
        horizon = self.horizon_ms if self.horizon_ms is not None else wm
        firing = {
            r.name: sum(1 for _, _, disc in self.open if disc + r.threshold_ms < horizon) for r in self._open_rules
        }
        agents = len({agent for agent, _, _ in self.open})
        return LiveView(len(self.open), agents, max(0, wm - oldest), firing)

    # --- updates and snapshots -----------------------------------------------------------------

    def take_updates(self) -> list[tuple[WindowKey, WindowStats]]:
        """Open panes changed since the last call (for update records)."""
        return self.book.take_updates()

    def has_view_changes(self) -> bool:
        """Whether `take_views` may hand out something."""
        return self.processor.has_touched()

    def take_views(self) -> list[tuple[str, AgentView | None]]:
        """Agents whose live state changed since the last call, by agent id; None once an agent logged out.

        After a restart every agent touched counts as changed once: its record is repeated, not lost.
        """
        changed = []
        agents = self.processor.agents
        for agent_id in sorted(self.processor.take_touched()):
            view = view_of(agents[agent_id]) if agent_id in agents else None
            if agent_id not in self._views or self._views[agent_id] != view:
                self._views[agent_id] = view
                changed.append((agent_id, view))
        return changed

    def has_dirty(self) -> bool:
        """Whether anything changed since the last `take_dirty`."""
        return self.processor.has_dirty() or bool(self.book.dirty_panes or self.book.acw.dirty)

    def forget_changes(self) -> None:
        """Drop change tracking without building entries (for runs that never checkpoint, like replay)."""
        self.processor.forget_changes()
        self.book.forget_changes()

    def take_dirty(self) -> dict[str, Any]:
        """Changed state entries as plain data (None deletes), and forget that they changed."""
        return dict(self.drain_dirty())

    def drain_dirty(self) -> Iterator[tuple[str, Any]]:
        """`take_dirty`'s entries one at a time, each built when it is reached, so that a caller that serialises
        them as it goes never holds all of them as plain data. What changed is taken at the call; consume the
        entries before the pipeline is offered anything else."""
        book = self.book
        agent_ids = self.processor.take_dirty_ids()
        agent_ids |= book.acw.dirty
        book.acw.dirty = set()
        panes = book.take_dirty_pane_keys()
        return self._dirty_entries(agent_ids, panes)

    def _dirty_entries(self, agent_ids: set[str], panes: set[WindowKey]) -> Iterator[tuple[str, Any]]:
        agents, by_agent = self.processor.agents, self.book.acw.by_agent
        for agent_id in agent_ids:
            agent = agents.get(agent_id)
            state = None if agent is None else agent.to_dict()
            yield f"a|{agent_id}", {"s": state, "w": [list(s) for s in by_agent.get(agent_id, [])]}
        yield from self.book.pane_entries(panes)

    def mark_dirty(self, entries: Iterable[str]) -> None:
        """Count entries as changed again (their snapshot was not persisted)."""
        for name in entries:
            if name.startswith("a|"):
                self.processor.mark_dirty([name[2:]])
                self.book.acw.dirty.add(name[2:])
            else:
                self.book.dirty_panes.add(pane_key(name, self.config.pane_ms))

    def meta(self) -> dict[str, Any]:
        """Stream-level state as plain data."""
        return {"proc": self.processor.meta(), "h": self.horizon_ms, "ct": self.closed_through_ms}

    @classmethod
    def restore(
        cls, rules: RulesConfig, config: AggregationConfig, meta: dict[str, Any] | None, entries: dict[str, Any]
    ) -> AcwPipeline:
        """Rebuild from `meta()` and `take_dirty()` entries."""
        pipe = cls(rules, config)
        agents = {}
        for name, value in entries.items():
            if value is None:
                continue
            if name.startswith("a|"):
                if value["s"] is not None:
                    agents[name[2:]] = value["s"]
                if value["w"]:
                    pipe.book.acw.by_agent[name[2:]] = [tuple(s) for s in value["w"]]
            else:
                pipe.book.panes[pane_key(name, config.pane_ms)] = WindowStats.from_dict(value)
        pipe.processor = Processor.restore(rules, meta["proc"] if meta else None, agents)
        if meta is not None:
            pipe.horizon_ms, pipe.closed_through_ms = meta["h"], meta["ct"]
        for agent in pipe.processor.agents.values():
            for cid, contact in agent.open_contacts():
                disc = contact.disconnected_at_ms
                assert disc is not None
                pipe.open[(agent.agent_id, cid, disc)] = (contact.acw_team_id, contact.acw_queue_id)
                for i, rule in enumerate(pipe._open_rules):
                    due = disc + rule.threshold_ms
                    if pipe.horizon_ms is None or due >= pipe.horizon_ms:
                        pipe._open_heap.append((due, i, agent.agent_id, cid, disc))
        heapq.heapify(pipe._open_heap)
        return pipe


_NOTHING = Output()


class IntervalsOnly:
    """The processor alone, shaped like `AcwPipeline`, for a run that wants intervals and nothing else (replay)."""

    def __init__(self, rules: RulesConfig, track_changes: bool = False) -> None:
        self.processor = Processor(rules, track_changes)

    def offer(self, event: CallEvent) -> tuple[Step, Output]:
        """Take one arriving event; its disposition and the intervals that became final."""
        step = self.processor.offer(event)
        return step, Output(list(step.intervals)) if step.intervals else _NOTHING

    def finish(self) -> Output:
        """End of input: every pending event applied, and what timed out by the last event time."""
        return Output(self.processor.finish())

    def forget_changes(self) -> None:
        """Drop what the processor tracked, and the intervals it opened (only `AcwPipeline` reads those)."""
        self.processor.forget_changes()
        self.processor.opened.clear()
