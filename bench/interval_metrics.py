"""What counting an interval in the Prometheus metrics costs: `Metrics.observe_interval` against the same
observations made through prometheus_client's own `Histogram`, in the same process.

    .venv/bin/python -m bench.interval_metrics [--agents 2000] [--teams 1300] [--runs 5]
        [--out bench/results/interval_metrics.json]

The intervals are those of a generated day (`--teams` teams, as many queues, so the label values fold into
`other` as on the peers job). `baseline` observes each interval's five or six values into prometheus_client
`Histogram`s with the same names, labels and buckets (what the worker used until 2026-12-04); `ours` calls
`Metrics.observe_interval`. Prints µs per interval, medians of `--runs`, and writes them to `--out`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Histogram

from streams.domain.intervals import AcwInterval
from streams.domain.pipeline import AcwPipeline
from streams.domain.processor import RulesConfig
from streams.metrics import ACW_BUCKETS, HOLD_BUCKETS, TALK_BUCKETS, Metrics
from streams.settings import Settings
from streams.traffic import TrafficShape, generate

ROOT = Path(__file__).resolve().parents[1]


def day_intervals(agents: int, teams: int) -> list[AcwInterval]:
    """The intervals of one generated day."""
    pipeline = AcwPipeline(RulesConfig(), Settings().aggregation())
    intervals: list[AcwInterval] = []
    shape = TrafficShape(agents=agents, contacts_per_agent=20, teams=teams, queues=teams)
    for event in generate(shape, seed=11):
        intervals.extend(pipeline.offer(event)[1].intervals)
    intervals.extend(pipeline.finish().intervals)
    return intervals


def observe_with_prometheus_histograms(intervals: list[AcwInterval]) -> float:
    """Seconds to observe every interval into prometheus_client Histograms (the labels folded as ours are)."""
    r = CollectorRegistry()
    folder = Metrics(CollectorRegistry())  # only for its label folding and counters
    labels = ["team", "channel"]
    acw = Histogram("acw_interval_duration_seconds", "d", labels, buckets=ACW_BUCKETS, registry=r)
    by_queue = Histogram(
        "acw_queue_interval_duration_seconds", "d", ["queue", "channel"], buckets=ACW_BUCKETS, registry=r
    )
    talk = Histogram("acw_talk_duration_seconds", "d", labels, buckets=TALK_BUCKETS, registry=r)
    hold = Histogram("acw_hold_duration_seconds", "d", labels, buckets=HOLD_BUCKETS, registry=r)
    handle = Histogram("acw_handle_duration_seconds", "d", labels, buckets=TALK_BUCKETS, registry=r)
    team_children: dict[Any, Any] = {}
    queue_children: dict[Any, Any] = {}
    t = time.perf_counter()
    for interval in intervals:
        ch = interval.channel
        key = (folder.team(interval.team_id), ch, interval.end_reason)
        children = team_children.get(key)
        if children is None:
            team, c = key[0], ch.value
            children = team_children[key] = (
                folder.intervals.labels(team, interval.end_reason.value),
                acw.labels(team, c),
                talk.labels(team, c),
                hold.labels(team, c),
                handle.labels(team, c),
            )
        q = (folder.queue(interval.queue_id), ch)
        queue = queue_children.get(q)
        if queue is None:
            queue = queue_children[q] = by_queue.labels(q[0], ch.value)
        count, a, tk, hd, hn = children
        count.inc()
        a.observe(interval.acw_seconds)
        queue.observe(interval.acw_seconds)
        if interval.talk_seconds is not None:
            tk.observe(interval.talk_seconds)
        if interval.hold_seconds is not None:
            hd.observe(interval.hold_seconds)
        if interval.handle_seconds is not None:
            hn.observe(interval.handle_seconds)
    return time.perf_counter() - t


def observe_with_metrics(intervals: list[AcwInterval]) -> float:
    """Seconds for `Metrics.observe_interval` on every interval."""
    metrics = Metrics(CollectorRegistry())
    t = time.perf_counter()
    for interval in intervals:
        metrics.observe_interval(interval)
    return time.perf_counter() - t


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--agents", type=int, default=2000)
    parser.add_argument("--teams", type=int, default=1300)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "interval_metrics.json")
    args = parser.parse_args()
    intervals = day_intervals(args.agents, args.teams)
    runs: dict[str, list[float]] = {"baseline": [], "ours": []}
    for _ in range(args.runs):  # alternating, so both see the same load on a shared machine
        runs["baseline"].append(observe_with_prometheus_histograms(intervals) / len(intervals) * 1e6)
        runs["ours"].append(observe_with_metrics(intervals) / len(intervals) * 1e6)
    result = {
        "command": f"python -m bench.interval_metrics --agents {args.agents} --teams {args.teams} --runs {args.runs}",
        "intervals": len(intervals),
        "us_per_interval": {k: round(statistics.median(v), 2) for k, v in runs.items()},
        "runs": {k: [round(x, 2) for x in v] for k, v in runs.items()},
    }
    print(json.dumps(result, indent=1))
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
