"""Pane aggregates of one stream: each interval counted in its panes, agents' ACW time spread over the panes it
spans, and panes handed out as final once stream time has passed them.

`AcwPipeline` decides when (its stream time) and what is too late; a `PaneBook` does the counting, with the
agents' ACW spans in an `AcwSpans`. The pipeline talks to the book through `Panes`, so that replay can keep the
panes in the process that merges the windows and work out the spans' shares where the intervals close.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, Protocol

from streams.domain.aggregates import (
    Contribution,
    Scope,
    WindowKey,
    WindowStats,
    contribution,
    scope_keys,
    union_ms,
    window_key,
)
from streams.domain.intervals import AcwInterval

Span = tuple[int, int, str | None, str | None]  # disconnected_at, ended_at, team_id, queue_id
OpenSpan = tuple[str, int, str | None, str | None]  # agent_id, disconnected_at, team_id, queue_id of an open interval
FinalPanes = list[tuple[WindowKey, WindowStats]]
# An agent's ACW time in one pane, for one of the scope keys of (agent_id, team_id, queue_id), or (ALL_SCOPES)
# for each of them that is aggregated: agent_id, team_id, queue_id, index in `scope_keys`, pane start, ms.
Share = tuple[str, str | None, str | None, int, int, int]
ALL_SCOPES = -1
_SCOPE_INDEX = {scope: i for i, (scope, _) in enumerate(scope_keys("", None, None))}


class Panes(Protocol):
    """What a pipeline asks of its pane aggregates."""

    def count(self, interval: AcwInterval, pane_start_ms: int) -> None:
        """Count an interval in the panes starting at `pane_start_ms` (the one its end falls in) of its scope keys."""

    def close(
        self, start_ms: int, through_ms: int, open_until_ms: int, opened: list[OpenSpan], final: FinalPanes
    ) -> None:
        """Append every pane ending by `through_ms` to `final`, in key order, after adding the ACW time agents spent
        within [start_ms, through_ms): their closed intervals', and the `opened` intervals' up to `open_until_ms`."""

    def bounds(self, floor_ms: int) -> tuple[int, int]:
        """(first start, last end) of the panes held and of the pane starting at `floor_ms`."""


class AcwSpans:
    """Agents' ACW spans of one stream: closed intervals kept until every pane they touch has closed, and the share
    of each pane that an agent spent in ACW."""

    def __init__(self, pane_ms: int, scopes: frozenset[Scope], track_changes: bool = True) -> None:
        self.pane_ms = pane_ms
        self.scopes = scopes
        self.by_agent: dict[str, list[Span]] = {}
        self.tracks_changes = track_changes
        self.dirty: set[str] = set()

    def add(self, agent_id: str, span: Span) -> None:
        """Keep a closed interval's span."""
        self.by_agent.setdefault(agent_id, []).append(span)
        if self.tracks_changes:
            self.dirty.add(agent_id)

    def shares(self, start_ms: int, end_ms: int, open_until: int, opened: list[OpenSpan]) -> list[Share]:
        """Per agent and scope key, the union of its ACW spans within each pane of [start_ms, end_ms): the closed
        intervals' and the `opened` ones' up to `open_until`."""
        per_agent: dict[str, list[Span]] = dict(self.by_agent)  # lists are shared, never changed here
        for agent_id, disc, team, queue in opened:
            if disc < end_ms:
                per_agent[agent_id] = [*per_agent.get(agent_id, ()), (disc, max(disc, open_until), team, queue)]
        scopes = self.scopes
        out: list[Share] = []
        for agent_id, spans in per_agent.items():
            inside = [s for s in spans if s[1] > start_ms and s[0] < end_ms]
            if not inside:
                continue
            team, queue = inside[0][2], inside[0][3]
            if all(s[2] == team and s[3] == queue for s in inside):  # one team and queue: one union for all scopes
                parts = [(a, b) for a, b, _, _ in inside]
                self._add_union(out, (agent_id, team, queue, ALL_SCOPES), parts, start_ms, end_ms)
                continue
            groups: dict[tuple[Scope, str], tuple[str | None, str | None, list[tuple[int, int]]]] = {}
            for a, b, team, queue in inside:
                for group in scope_keys(agent_id, team, queue):
                    if group[0] in scopes:
                        groups.setdefault(group, (team, queue, []))[2].append((a, b))
            for (scope, _), (team, queue, group_spans) in groups.items():
                self._add_union(out, (agent_id, team, queue, _SCOPE_INDEX[scope]), group_spans, start_ms, end_ms)
        return out

    def _add_union(
        self,
        out: list[Share],
        whose: tuple[str, str | None, str | None, int],
        spans: list[tuple[int, int]],
        start_ms: int,
        end_ms: int,
    ) -> None:
        """Append the union of `spans` within each pane of [start_ms, end_ms) as `whose` shares."""
        pane = self.pane_ms
        lo = max(start_ms, self._pane_floor(min(a for a, _ in spans)))
        hi = min(end_ms, max(b for _, b in spans))
        agent_id, team, queue, which = whose
        if len(spans) == 1:  # a lone span's share of a pane is a plain overlap
            a, b = spans[0]
            for p in range(lo, hi, pane):
                ms = min(b, p + pane) - max(a, p)
                if ms:
                    out.append((agent_id, team, queue, which, p, ms))
        else:
            for p in range(lo, hi, pane):
                ms = union_ms(spans, p, p + pane)
                if ms:
                    out.append((agent_id, team, queue, which, p, ms))

    def prune(self, through_ms: int) -> None:
        """Forget the spans that ended by `through_ms`: every pane they touch has closed."""
        by_agent = self.by_agent
        for agent_id in list(by_agent):
            kept = [s for s in by_agent[agent_id] if s[1] > through_ms]
            if len(kept) != len(by_agent[agent_id]):
                if self.tracks_changes:
                    self.dirty.add(agent_id)
                if kept:
                    by_agent[agent_id] = kept
                else:
                    del by_agent[agent_id]

    def _pane_floor(self, t_ms: int) -> int:
        return t_ms - t_ms % self.pane_ms


class PaneBook:
    """The pane aggregates of one stream, with their ACW spans, and what changed since a checkpoint."""

    def __init__(self, pane_ms: int, scopes: frozenset[Scope], track_changes: bool = True) -> None:
        self.pane_ms = pane_ms
        self.scopes = scopes
        self.panes: dict[WindowKey, WindowStats] = {}
        self.acw = AcwSpans(pane_ms, scopes, track_changes)
        self.tracks_changes = track_changes
        self.dirty_panes: set[WindowKey] = set()
        self.updated_panes: set[WindowKey] = set()

    def count(self, interval: AcwInterval, pane_start_ms: int) -> None:
        """Count an interval in the panes starting at `pane_start_ms` of its scope keys, and keep its span."""
        self.count_parts(interval.agent_id, interval.team_id, interval.queue_id, contribution(interval), pane_start_ms)
        span = (interval.disconnected_at_ms, interval.ended_at_ms, interval.team_id, interval.queue_id)
        self.acw.add(interval.agent_id, span)

    def count_parts(
        self, agent_id: str, team_id: str | None, queue_id: str | None, counted: Contribution, pane_start_ms: int
    ) -> None:
        """Count an interval's `contribution` in the panes starting at `pane_start_ms` of its scope keys."""
        size = self.pane_ms
        panes = self.panes
        tracks = self.tracks_changes
        for scope, key in scope_keys(agent_id, team_id, queue_id):
            if scope not in self.scopes:
                continue
            wk = window_key(scope, key, size, pane_start_ms)
            stats = panes.get(wk)
            if stats is None:
                stats = panes[wk] = WindowStats()
            stats.count(counted)
            if tracks:
                self.dirty_panes.add(wk)
                self.updated_panes.add(wk)

    def close(
        self, start_ms: int, through_ms: int, open_until_ms: int, opened: list[OpenSpan], final: FinalPanes
    ) -> None:
        """Hand out every pane ending by `through_ms`, after adding agents' ACW time within [start_ms, through_ms)."""
        self.add_shares(self.acw.shares(start_ms, through_ms, open_until_ms, opened))
        self.take_final(through_ms, final)
        self.acw.prune(through_ms)

    def add_shares(self, shares: list[Share]) -> None:
        """Add agents' ACW time to their panes."""
        pane = self.pane_ms
        panes = self.panes
        scopes = self.scopes
        for agent_id, team, queue, which, p, ms in shares:
            keys = scope_keys(agent_id, team, queue)
            for scope, key in keys if which == ALL_SCOPES else (keys[which],):
                if scope not in scopes:
                    continue
                wk = window_key(scope, key, pane, p)
                stats = panes.get(wk)
                if stats is None:
                    stats = panes[wk] = WindowStats()
                stats.agent_acw_ms += ms

    def take_final(self, through_ms: int, final: FinalPanes) -> None:
        """Append every pane ending by `through_ms` to `final`, in key order, and forget it."""
        tracks = self.tracks_changes
        for wk in sorted(k for k in self.panes if k.start_ms + k.size_ms <= through_ms):
            final.append((wk, self.panes.pop(wk)))
            if tracks:
                self.dirty_panes.add(wk)
                self.updated_panes.discard(wk)

    def bounds(self, floor_ms: int) -> tuple[int, int]:
        """(first start, last end) of the panes held and of the pane starting at `floor_ms`."""
        pane = self.pane_ms
        first = min([k.start_ms for k in self.panes] + [floor_ms])
        return first, max([k.start_ms + pane for k in self.panes] + [floor_ms + pane])

    # --- changes and snapshots -----------------------------------------------------------------

    def take_updates(self) -> FinalPanes:
        """Open panes changed since the last call (for update records)."""
        updated = sorted(self.updated_panes)
        self.updated_panes.clear()
        return [(wk, self.panes[wk]) for wk in updated if wk in self.panes]

    def forget_changes(self) -> None:
        """Drop change tracking."""
        self.dirty_panes.clear()
        self.acw.dirty.clear()
        self.updated_panes.clear()

    def take_dirty_pane_keys(self) -> set[WindowKey]:
        """The panes changed since the last call, forgetting that they changed."""
        dirty, self.dirty_panes = self.dirty_panes, set()
        return dirty

    def pane_entries(self, keys: Iterable[WindowKey]) -> Iterator[tuple[str, Any]]:
        """These panes' checkpoint entries as plain data (None deletes), one at a time."""
        panes = self.panes
        for wk in keys:
            stats = panes.get(wk)
            yield pane_entry(wk), None if stats is None else stats.to_dict()


def pane_entry(wk: WindowKey) -> str:
    """A pane's name in checkpoints."""
    return f"w|{wk.scope.value}|{wk.start_ms}|{wk.key}"


def pane_key(entry: str, pane_ms: int) -> WindowKey:
    """Inverse of `pane_entry`."""
    _, scope, start, key = entry.split("|", 3)
    return window_key(Scope(scope), key, pane_ms, int(start))
