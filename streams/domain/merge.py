"""Window aggregates across source partitions: panes in, update and final window records and window alerts out.

Each source partition sends its panes (cumulative: a later copy replaces an earlier one) and then the
time through which its panes are final. A window is final when every source is final through its end;
its record is then the sum of its panes from every source, whatever order they came in.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from streams.domain.aggregates import Scope, WindowKey, WindowStats, window_key
from streams.domain.alerts import WINDOW_KINDS, AlertRule, Episode, window_transition
from streams.domain.pipeline import END_OF_STREAM, AggregationConfig
from streams.domain.windows import WindowSpec


@dataclass(slots=True)
class MergeOutput:
    """Final window records and window alerts, in the order they must be sent."""

    aggregates: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    alerts: list[dict[str, Any]] = field(default_factory=list)


@dataclass(slots=True)
class _Slide:
    """A hopping window's sums, carried to the next window: the panes entering are added, those leaving taken off."""

    end: int
    stats: WindowStats  # its own object: never a pane's
    copies: int  # pane copies summed in it


@dataclass(slots=True)
class _Group:
    """One scope key's panes from every source, and its firing window alerts."""

    scope: Scope
    key: str
    panes: dict[int, dict[int, WindowStats]] = field(default_factory=dict)  # pane start -> source -> stats
    episodes: dict[str, Episode] = field(default_factory=dict)  # rule name -> firing episode
    slides: dict[tuple[int, int], _Slide] = field(default_factory=dict)  # (size, hop) -> its last final window


class WindowMerger:
    """Adds up the panes of `sources` partitions into window aggregates and evaluates window alert rules."""

    def __init__(self, config: AggregationConfig, sources: int, track_changes: bool = True) -> None:
        if sources < 1:
            raise ValueError("sources must be >= 1")
        self.config = config
        self.sources = sources
        # Whether changed state entries and open windows are tracked (for checkpoints and update records); a run
        # that never checkpoints and sends no updates (replay) leaves it off.
        self.tracks_changes = track_changes
        self.groups: dict[str, _Group] = {}
        self.progress: dict[int, int] = {}
        self.final_through_ms: int | None = None
        # Window rules by (size, hop, scope): plain values hash and compare cheaply, a WindowSpec does not.
        self._rules_of: dict[tuple[int, int, Scope], list[AlertRule]] = {}
        for rule in config.rules:
            if rule.kind in WINDOW_KINDS and rule.window is not None:
                key = (rule.window.size_ms, rule.window.hop_ms, rule.scope)
                self._rules_of.setdefault(key, []).append(rule)
        self._dirty: set[str] = set()  # state entries
        self._by_start: dict[int, set[str]] = {}  # pane start -> groups holding a pane there
        self._firing: set[str] = set()  # groups with a firing window alert
        self._updated: set[tuple[str, int]] = set()  # (group, pane start) changed since the last updates
        # How far back from the final time panes are kept: the longest window, or further when a hopping window's
        # hop is longer than a pane, since its slide last moved up to a hop less a pane before the final time and
        # takes off the panes a whole window before that.
        pane = config.pane_ms
        self._keep_ms = max(
            [config.max_size_ms] + [w.size_ms + w.hop_ms - pane for w in config.windows if w.hop_ms < w.size_ms]
        )
        self.counts: dict[str, int] = {"repeated_panes": 0, "stale_panes": 0}

    # --- feeding -------------------------------------------------------------------------------

    def offer_pane(self, source: int, pane: WindowKey, stats: WindowStats) -> None:
        """Take a source's copy of one pane; the fullest copy wins, since copies only grow.

        A pane's contacts only grow while it is open and its agent ACW is added when it closes, so
        (contacts, agent_acw) orders the copies of one source.
        """
        if self.final_through_ms is not None and pane.start_ms + pane.size_ms <= self.final_through_ms:
            self.counts["repeated_panes"] += 1  # re-sent after a source restarted; its windows are final
            return
        name = f"{pane.scope!s}|{pane.key}"
        group = self.groups.get(name)
        if group is None:
            group = self.groups[name] = _Group(pane.scope, pane.key)
        copies = group.panes.get(pane.start_ms)
        if copies is None:
            copies = group.panes[pane.start_ms] = {}
            self._by_start.setdefault(pane.start_ms, set()).add(name)
        held = copies.get(source)
        if held is not None and (held.contacts, held.agent_acw_ms) > (stats.contacts, stats.agent_acw_ms):
            self.counts["stale_panes"] += 1  # a copy older than one already held (copies can overtake)
            return
        copies[source] = stats
        if self.tracks_changes:
            self._dirty.add(_pane_entry(name, pane.start_ms, source))
            self._updated.add((name, pane.start_ms))

    def offer_progress(self, source: int, closed_through_ms: int) -> MergeOutput:
        """A source is final through `closed_through_ms`; finalize every window all sources are final for."""
        out = MergeOutput()
        if closed_through_ms <= self.progress.get(source, -(2**63)):
            return out
        self.progress[source] = closed_through_ms
        if self.tracks_changes:
            self._dirty.add("m")
        if len(self.progress) < self.sources:
            return out
        through = min(self.progress.values())
        if through == END_OF_STREAM:
            through = self._last_relevant_end()
        previous = self.final_through_ms
        if previous is None:  # windows ending before the first pane hold nothing
            previous = min(min(self._by_start, default=through), through)
        if through > previous:
            self._finalize(previous, through, out)
        self.final_through_ms = max(through, previous)
        return out

    # --- core ----------------------------------------------------------------------------------

    def _last_relevant_end(self) -> int:
        """At end of stream: the end of the last window holding any pane, plus a hop to resolve alerts."""
        pane = self.config.pane_ms
        if not self._by_start:
            return self.final_through_ms or 0
        end = max(self._by_start) + self.config.max_size_ms + max(w.hop_ms for w in self.config.windows)
        return end - end % pane + pane

    def _finalize(self, after_ms: int, through_ms: int, out: MergeOutput) -> None:
        ends = sorted((end, spec) for spec in self.config.windows for end in spec.ends_between(after_ms, through_ms))
        by_start = self._by_start
        pane = self.config.pane_ms
        for end, spec in ends:
            names = set(self._firing)  # firing keys are judged even without panes: no contacts resolves them
            for start in range(end - spec.size_ms, end, pane):
                holding = by_start.get(start)
                if holding:
                    names |= holding
            for name in sorted(names):
                self._final_window(self.groups[name], name, spec, end, out)
        horizon = through_ms - self._keep_ms
        tracks = self.tracks_changes
        for start in sorted(s for s in by_start if s < horizon):
            for name in by_start.pop(start):
                for source in self.groups[name].panes.pop(start):
                    if tracks:
                        self._dirty.add(_pane_entry(name, start, source))
                if tracks:
                    self._updated.discard((name, start))
        for name in [n for n, g in self.groups.items() if not g.panes and not g.episodes]:
            del self.groups[name]

    def _final_window(self, group: _Group, name: str, spec: WindowSpec, end: int, out: MergeOutput) -> None:
        wk = window_key(group.scope, group.key, spec.size_ms, end - spec.size_ms)
        stats = self._slide(group, spec, end) if spec.hop_ms < spec.size_ms else self._compose(group, wk)
        if stats is not None:
            out.aggregates.append((wk.record_key(), stats.to_record(wk, True, end + self.config.grace_ms)))
        for rule in self._rules_of.get((spec.size_ms, spec.hop_ms, group.scope), ()):
            episode, alert = window_transition(rule, wk, stats, group.episodes.get(rule.name))
            if alert is not None:
                out.alerts.append(alert)
                if self.tracks_changes:
                    self._dirty.add(_episode_entry(name, rule.name))
                if episode is None:
                    group.episodes.pop(rule.name, None)
                else:
                    group.episodes[rule.name] = episode
                if group.episodes:
                    self._firing.add(name)
                else:
                    self._firing.discard(name)

    def _compose(self, group: _Group, wk: WindowKey) -> WindowStats | None:
        """The sum of a window's panes from every source; a lone pane is returned as it is (read, never changed).

        Panes without contacts carry only agent ACW time, so they are added as that one figure.
        """
        parts: list[WindowStats] = []
        bare: list[WindowStats] = []  # panes with agent ACW time and no contacts
        panes = group.panes
        for start in range(wk.start_ms, wk.end_ms, self.config.pane_ms):
            copies = panes.get(start)
            if copies:
                for stats in copies.values():
                    (parts if stats.contacts else bare).append(stats)
        if len(parts) + len(bare) <= 1:
            return parts[0] if parts else bare[0] if bare else None
        total = WindowStats()
        for part in parts:
            total.merge(part)
        for part in bare:
            total.agent_acw_ms += part.agent_acw_ms
        return total

    def _slide(self, group: _Group, spec: WindowSpec, end: int) -> WindowStats | None:
        """The sums of a final hopping window: those of the window a hop before, moved on, when they are held.

        Moving adds a hop of panes and takes one off, where composing adds up to size/pane panes.
        """
        key = (spec.size_ms, spec.hop_ms)
        slide = group.slides.get(key)
        if not (slide is not None and slide.end == end - spec.hop_ms and self._move(group, slide, end, spec.size_ms)):
            slide = _Slide(end, WindowStats(), 0)
            self._add_panes(group, slide, end - spec.size_ms, end)
        if not slide.copies:
            group.slides.pop(key, None)
            return None
        group.slides[key] = slide
        return slide.stats

    def _move(self, group: _Group, slide: _Slide, end: int, size: int) -> bool:
        """Move a slide on to the window ending at `end`; False when its sums must be added up again instead."""
        panes, pane, stats = group.panes, self.config.pane_ms, slide.stats
        extremes = False  # whether a pane leaving held the maximum or the last end
        for start in range(slide.end - size, end - size, pane):
            copies = panes.get(start)
            if copies:
                for part in copies.values():
                    if not stats.remove(part):
                        return False
                    slide.copies -= 1
                    if (part.max_ms and part.max_ms >= stats.max_ms) or (
                        part.last_ended_ms and part.last_ended_ms >= stats.last_ended_ms
                    ):
                        extremes = True
        if extremes:
            self._recount_extremes(group, stats, end - size, slide.end)
        self._add_panes(group, slide, slide.end, end)
        slide.end = end
        return True

    def _recount_extremes(self, group: _Group, stats: WindowStats, start_ms: int, end_ms: int) -> None:
        """Set a slide's maximum and last end to those of the pane copies starting in [start_ms, end_ms)."""
        stats.max_ms = stats.last_ended_ms = 0
        for start in range(start_ms, end_ms, self.config.pane_ms):
            copies = group.panes.get(start)
            if copies:
                for part in copies.values():
                    if part.max_ms > stats.max_ms:
                        stats.max_ms = part.max_ms
                    if part.last_ended_ms > stats.last_ended_ms:
                        stats.last_ended_ms = part.last_ended_ms

    def _add_panes(self, group: _Group, slide: _Slide, start_ms: int, end_ms: int) -> None:
        """Add the pane copies starting in [start_ms, end_ms) to a slide."""
        panes, stats = group.panes, slide.stats
        for start in range(start_ms, end_ms, self.config.pane_ms):
            copies = panes.get(start)
            if copies:
                for part in copies.values():
                    slide.copies += 1
                    if part.contacts:
                        stats.merge(part)
                    else:  # agent ACW time only, as in `_compose`
                        stats.agent_acw_ms += part.agent_acw_ms

    # --- updates and snapshots -----------------------------------------------------------------

    def firing(self) -> dict[str, int]:
        """Window alert rule name -> keys whose alert fires now (every window rule listed)."""
        counts = {r.name: 0 for r in self.config.rules if r.kind in WINDOW_KINDS}
        for group in self.groups.values():
            for rule in group.episodes:
                counts[rule] = counts.get(rule, 0) + 1
        return counts

    def take_updates(self) -> list[tuple[str, dict[str, Any]]]:
        """Records of the open windows changed since the last call (not final; the latest wins)."""
        if not self.tracks_changes:
            raise RuntimeError("this merger does not track changes, so it has no updates to take")
        windows: set[tuple[str, WindowSpec, int]] = set()
        for name, start in self._updated:
            for spec in self.config.windows:
                for wstart in spec.starts(start):
                    if self.final_through_ms is None or wstart + spec.size_ms > self.final_through_ms:
                        windows.add((name, spec, wstart))
        self._updated.clear()
        out = []
        for name, spec, wstart in sorted(windows, key=lambda w: (w[0], w[1].size_ms, w[2])):
            group = self.groups.get(name)
            if group is None:
                continue
            wk = window_key(group.scope, group.key, spec.size_ms, wstart)
            stats = self._compose(group, wk)
            if stats is not None:
                out.append((wk.record_key(), stats.to_record(wk, False, stats.last_ended_ms)))
        return out

    def has_dirty(self) -> bool:
        """Whether anything changed since the last `take_dirty`."""
        return bool(self._dirty)

    def forget_changes(self) -> None:
        """Drop change tracking without building entries (for runs that never checkpoint, like replay)."""
        self._dirty.clear()
        self._updated.clear()

    def take_dirty(self) -> dict[str, Any]:
        """Changed state entries as plain data (None deletes), and forget that they changed."""
        return dict(self.drain_dirty())

    def drain_dirty(self) -> Iterator[tuple[str, Any]]:
        """`take_dirty`'s entries one at a time, each built when it is reached. What changed is taken at the
        call; consume the entries before the merger is given anything else."""
        if not self.tracks_changes:
            raise RuntimeError("this merger does not track changes, so it has no snapshots to take")
        dirty, self._dirty = self._dirty, set()
        return self._dirty_entries(dirty)

    def _dirty_entries(self, dirty: set[str]) -> Iterator[tuple[str, Any]]:
        for entry in dirty:
            if entry == "m":
                continue
            kind, rest = entry.split("|", 1)
            if kind == "p":
                start, source, name = rest.split("|", 2)
                group = self.groups.get(name)
                stats = group.panes.get(int(start), {}).get(int(source)) if group else None
                yield entry, None if stats is None else stats.to_dict()
            else:
                rule, name = rest.split("|", 1)
                group = self.groups.get(name)
                episode = group.episodes.get(rule) if group else None
                yield entry, None if episode is None else episode.to_list()

    def mark_dirty(self, entries: Iterable[str]) -> None:
        """Count entries as changed again (their snapshot was not persisted)."""
        self._dirty.update(entries)
        self._dirty.add("m")

    def meta(self) -> dict[str, Any]:
        """Progress of every source and how far windows are final."""
        return {"progress": {str(s): p for s, p in self.progress.items()}, "ft": self.final_through_ms}

    @classmethod
    def restore(
        cls, config: AggregationConfig, sources: int, meta: dict[str, Any] | None, entries: dict[str, Any]
    ) -> WindowMerger:
        """Rebuild from `meta()` and `take_dirty()` entries."""
        merger = cls(config, sources)
        if meta is not None:
            merger.progress = {int(s): p for s, p in meta["progress"].items()}
            merger.final_through_ms = meta["ft"]
        for entry, value in sorted(entries.items()):
            if value is None:
                continue
            kind, rest = entry.split("|", 1)
            if kind == "p":
                start, source, name = rest.split("|", 2)
                group = merger._group(name)
                group.panes.setdefault(int(start), {})[int(source)] = WindowStats.from_dict(value)
            else:
                rule, name = rest.split("|", 1)
                merger._group(name).episodes[rule] = Episode(value[0], value[1])
        for group_name, group in merger.groups.items():
            for pane_start in group.panes:
                merger._by_start.setdefault(pane_start, set()).add(group_name)
            if group.episodes:
                merger._firing.add(group_name)
        return merger

    def _group(self, name: str) -> _Group:
        group = self.groups.get(name)
        if group is None:
            scope, key = name.split("|", 1)
            group = self.groups[name] = _Group(Scope(scope), key)
        return group


def _pane_entry(group: str, start: int, source: int) -> str:
    return f"p|{start}|{source}|{group}"


def _episode_entry(group: str, rule: str) -> str:
    return f"e|{rule}|{group}"
