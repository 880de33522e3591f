"""Running the pipeline and merger over events in tests, and a brute-force recomputation of window aggregates."""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from streams.domain.aggregates import scope_keys, union_ms
from streams.domain.events import CallEvent
from streams.domain.intervals import AcwInterval
from streams.domain.merge import WindowMerger
from streams.domain.pipeline import AcwPipeline, AggregationConfig, Output
from streams.domain.processor import RulesConfig


@dataclass
class Results:
    """Everything one run produced."""

    intervals: list[AcwInterval] = field(default_factory=list)
    finals: dict[tuple[str, str, int, int], dict[str, Any]] = field(default_factory=dict)
    alerts: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[tuple[AcwInterval, str]] = field(default_factory=list)

    def feed(self, out: Output, merger: WindowMerger, source: int = 0) -> None:
        """Take one pipeline step's output, passing its panes and progress to the merger."""
        self.intervals.extend(out.intervals)
        self.alerts.extend(out.alerts)
        self.rejected.extend(out.rejected)
        for pane, stats in out.final_panes:
            merger.offer_pane(source, pane, stats)
        if out.progress is not None:
            self.take(merger.offer_progress(source, out.progress))

    def take(self, merged: Any) -> None:
        """Take final window records and window alerts."""
        for _, record in merged.aggregates:
            key = (record["scope"], record["key"], record["window_start"], record["window_size_seconds"])
            assert self.finals.setdefault(key, record) == record, f"a repeated final record differs: {key}"
        self.alerts.extend(merged.alerts)

    def alert_set(self) -> set[tuple[str, str]]:
        """(alert_id, state) of every alert record; asserts repeats do not happen."""
        keys = [(a["alert_id"], a["state"]) for a in self.alerts]
        assert len(keys) == len(set(keys)), "an alert transition was emitted twice"
        return set(keys)


def run(events: list[CallEvent], rules: RulesConfig, config: AggregationConfig) -> Results:
    """One pipeline over the whole stream, finished at end of input, like `acw replay`."""
    pipe = AcwPipeline(rules, config)
    merger = WindowMerger(config, 1)
    results = Results()
    for event in events:
        _, out = pipe.offer(event)
        results.feed(out, merger)
    results.feed(pipe.finish(), merger)
    results.open_spans = [(a, d, pipe.processor.watermark_ms, t, q) for (a, _, d), (t, q) in pipe.open.items()]  # type: ignore[attr-defined]
    return results


def brute_force(
    intervals: list[AcwInterval],
    open_spans: list[tuple[str, int, int, str | None, str | None]],
    config: AggregationConfig,
) -> dict[tuple[str, str, int, int], dict[str, Any]]:
    """Window figures recomputed from scratch: every window holding each interval's end, in every scope."""
    booked: dict[tuple[str, str, int, int], list[AcwInterval]] = defaultdict(list)
    spans: dict[tuple[str, str], dict[str, list[tuple[int, int]]]] = defaultdict(lambda: defaultdict(list))
    for iv in intervals:
        for scope, key in scope_keys(iv.agent_id, iv.team_id, iv.queue_id):
            spans[(scope.value, key)][iv.agent_id].append((iv.disconnected_at_ms, iv.ended_at_ms))
            for spec in config.windows:
                for start in spec.starts(iv.ended_at_ms):
                    booked[(scope.value, key, start, spec.size_ms)].append(iv)
    for agent, disc, until, team, queue in open_spans:
        for scope, key in scope_keys(agent, team, queue):
            spans[(scope.value, key)][agent].append((disc, until))
    windows = set(booked)
    for (scope, key), per_agent in spans.items():
        for agent_spans in per_agent.values():
            for a, b in agent_spans:
                for spec in config.windows:
                    first = a - a % spec.hop_ms - spec.size_ms + spec.hop_ms
                    for start in range(first, b, spec.hop_ms):
                        if union_ms([(a, b)], start, start + spec.size_ms):
                            windows.add((scope, key, start, spec.size_ms))
    out = {}
    for scope, key, start, size in windows:
        ivs = booked.get((scope, key, start, size), [])
        acws = sorted(iv.ended_at_ms - iv.disconnected_at_ms for iv in ivs)
        n = len(acws)

        def rank(q: str, acws: list[int] = acws, n: int = n) -> float | None:
            return acws[max(1, math.ceil(Fraction(q) * n)) - 1] / 1000 if n else None

        handled = [iv for iv in ivs if iv.handle_seconds is not None]
        handle_ms = sum(round(iv.talk_seconds * 1000) if iv.talk_seconds is not None else 0 for iv in handled)
        handle_ms += sum(round(iv.hold_seconds * 1000) if iv.hold_seconds is not None else 0 for iv in handled)
        handle_acw = sum(iv.ended_at_ms - iv.disconnected_at_ms for iv in handled)
        handle_ms += handle_acw
        reasons: dict[str, int] = defaultdict(int)
        for iv in ivs:
            reasons[iv.end_reason.value] += 1
        agent_acw = sum(union_ms(s, start, start + size) for s in spans[(scope, key)].values())
        out[(scope, key, start, size // 1000)] = {
            "contacts": n,
            "contacts_with_acw": sum(1 for a in acws if a > 0),
            "acw_sum_seconds": sum(acws) / 1000,
            "acw_avg_seconds": sum(acws) / n / 1000 if n else None,
            "acw_max_seconds": acws[-1] / 1000 if n else None,
            "acw_p50_seconds": rank("0.5"),
            "acw_p90_seconds": rank("0.9"),
            "handle_avg_seconds": handle_ms / len(handled) / 1000 if handled else None,
            "acw_pct": 100 * handle_acw / handle_ms if handle_ms else None,
            "timed_out": reasons.get("TIMED_OUT", 0),
            "end_reasons": dict(sorted(reasons.items())),
            "agent_acw_seconds": agent_acw / 1000,
        }
    return out
