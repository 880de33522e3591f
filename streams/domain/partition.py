"""One input partition's core in the worker: the pipeline, with AGENT windows finished in the same partition.

An agent's events all reach one partition, so its panes come from one source: its windows need no merge
across partitions. `PartitionCore` merges them next to the pipeline (a `WindowMerger` of one source) and
hands on only the panes of the other scopes, whose windows are merged across partitions downstream.
The window records and alerts are those the cross-partition merge would give; only when they are sent
changes (as soon as this partition is final, rather than after a round trip through the panes topic).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from streams.domain.agent_view import AgentView
from streams.domain.aggregates import Scope, WindowKey, WindowStats
from streams.domain.events import CallEvent
from streams.domain.merge import WindowMerger
from streams.domain.pipeline import AcwPipeline, AggregationConfig, LiveView, Output
from streams.domain.processor import Processor, RulesConfig, Step

# Scopes whose groups live in one partition: an agent's events are all routed to its partition.
LOCAL_SCOPES = frozenset({Scope.AGENT})
# Checkpoint entries of the local merger carry this prefix beside the pipeline's own ("a|", "w|").
_LOCAL = "l|"


class PartitionCore:
    """The pipeline of one input partition, with the windows of partition-local scopes merged in place."""

    def __init__(self, pipeline: AcwPipeline, local: WindowMerger) -> None:
        self.pipeline = pipeline
        self.local = local
        self._scopes = LOCAL_SCOPES & pipeline.config.scopes

    @classmethod
    def new(cls, rules: RulesConfig, config: AggregationConfig) -> PartitionCore:
        """An empty core."""
        return cls(AcwPipeline(rules, config), WindowMerger(config, sources=1))

    @property
    def processor(self) -> Processor:
        """The interval state machine, for stream time and its counts."""
        return self.pipeline.processor

    @property
    def open(self) -> dict[tuple[str, str, int], tuple[str | None, str | None]]:
        """(agent, contact, disconnected_at) of every open interval, with its team and queue."""
        return self.pipeline.open

    # --- feeding -------------------------------------------------------------------------------

    def offer(self, event: CallEvent) -> tuple[Step, Output]:
        """Take one arriving event; its disposition and everything that became final."""
        step, out = self.pipeline.offer(event)
        return step, self._localize(out) if out else out

    def advance(self, to_ms: int) -> Output:
        """Move stream time forward without an event."""
        return self._localize(self.pipeline.advance(to_ms))

    def finish(self) -> Output:
        """End of input: everything pending, made final."""
        return self._localize(self.pipeline.finish())

    def _localize(self, out: Output) -> Output:
        """Merge the local scopes' final panes here; their windows final by the new progress join the output."""
        if self._scopes and out.final_panes:
            remote = []
            for pane, stats in out.final_panes:
                if pane.scope in self._scopes:
                    self.local.offer_pane(0, pane, stats)
                else:
                    remote.append((pane, stats))
            out.final_panes = remote
        if out.progress is not None and self._scopes:
            merged = self.local.offer_progress(0, out.progress)
            out.aggregates.extend(merged.aggregates)
            out.window_alerts.extend(merged.alerts)
        return out

    # --- updates and live state ----------------------------------------------------------------

    def take_updates(self) -> list[tuple[WindowKey, WindowStats]]:
        """Open panes changed since the last call, of the scopes merged downstream (the others merge here)."""
        remote = []
        for pane, stats in self.pipeline.take_updates():
            if pane.scope in self._scopes:
                self.local.offer_pane(0, pane, stats)
            else:
                remote.append((pane, stats))
        return remote

    def take_window_updates(self) -> list[tuple[str, dict[str, Any]]]:
        """Records of the local open windows changed since the last call (after `take_updates`)."""
        return self.local.take_updates()

    def live(self) -> LiveView:
        """Open intervals, agents in ACW, the oldest open interval's age and firing open_over alerts."""
        return self.pipeline.live()

    def firing(self) -> dict[str, int]:
        """Window alert rule name -> local keys whose alert fires now."""
        return self.local.firing()

    def has_view_changes(self) -> bool:
        """Whether `take_views` may hand out something."""
        return self.pipeline.has_view_changes()

    def take_views(self) -> list[tuple[str, AgentView | None]]:
        """Agents whose live state changed since the last call; None once an agent logged out."""
        return self.pipeline.take_views()

    # --- checkpoints ---------------------------------------------------------------------------

    def has_dirty(self) -> bool:
        """Whether anything changed since the last `take_dirty`."""
        return self.pipeline.has_dirty() or self.local.has_dirty()

    def forget_changes(self) -> None:
        """Drop change tracking without building entries."""
        self.pipeline.forget_changes()
        self.local.forget_changes()

    def take_dirty(self) -> dict[str, Any]:
        """Changed state entries of both parts (the local merger's under `l|`), forgetting that they changed."""
        return dict(self.drain_dirty())

    def drain_dirty(self) -> Iterator[tuple[str, Any]]:
        """`take_dirty`'s entries one at a time, each built as it is reached (see `AcwPipeline.drain_dirty`)."""
        own = self.pipeline.drain_dirty()
        local = self.local.drain_dirty() if self.local.has_dirty() else iter(())
        return _chain_local(own, local)

    def mark_dirty(self, entries: Iterable[str]) -> None:
        """Count entries as changed again (their checkpoint was not written)."""
        names = list(entries)
        self.pipeline.mark_dirty(n for n in names if not n.startswith(_LOCAL))
        local = [n[len(_LOCAL) :] for n in names if n.startswith(_LOCAL)]
        self.local.mark_dirty(local)  # also marks its meta, which is in every checkpoint anyway

    def meta(self) -> dict[str, Any]:
        """Stream-level state of both parts."""
        return {**self.pipeline.meta(), "lw": self.local.meta()}

    @classmethod
    def restore(
        cls, rules: RulesConfig, config: AggregationConfig, meta: dict[str, Any] | None, entries: dict[str, Any]
    ) -> PartitionCore:
        """Rebuild from `meta()` and `take_dirty()` entries (a checkpoint from before local windows has none)."""
        own = {k: v for k, v in entries.items() if not k.startswith(_LOCAL)}
        local = {k[len(_LOCAL) :]: v for k, v in entries.items() if k.startswith(_LOCAL)}
        pipeline = AcwPipeline.restore(rules, config, meta, own)
        merger = WindowMerger.restore(config, 1, meta.get("lw") if meta else None, local)
        return cls(pipeline, merger)


def _chain_local(own: Iterator[tuple[str, Any]], local: Iterator[tuple[str, Any]]) -> Iterator[tuple[str, Any]]:
    yield from own
    for name, value in local:
        yield _LOCAL + name, value
