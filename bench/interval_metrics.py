"""What counting an interval in the Prometheus metrics costs: `Metrics.observe_interval` against the same
observations made through prometheus_client's own `Histogram`, in the same process.

    .venv/bin/python -m bench.interval_metrics [--agents 2000] [--teams 1300] [--runs 5]
        [--out bench/results/interval_metrics.json]

The intervals are those of a generated day (`--teams` teams, as many queues, so the label values fold into
`other` as on the peers job). Both call `Metrics.observe_interval`; `baseline` with its histograms swapped for
prometheus_client `Histogram`s of the same names, labels and buckets (what the worker used until 2026-12-04).
Prints µs per interval, medians of `--runs`, and writes them to `--out`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

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


def with_prometheus_histograms(metrics: Metrics) -> Metrics:
    """`metrics` with its interval histograms swapped for prometheus_client's `Histogram` (the worker's before)."""
    registry = CollectorRegistry()
    buckets = {
        "interval_duration": ACW_BUCKETS,
        "queue_interval_duration": ACW_BUCKETS,
        "talk": TALK_BUCKETS,
        "hold": HOLD_BUCKETS,
        "handle": TALK_BUCKETS,
    }
    for attr, edges in buckets.items():
        ours = getattr(metrics, attr)
        setattr(
            metrics, attr, Histogram(ours.name, ours.documentation, ours.labelnames, buckets=edges, registry=registry)
        )
    return metrics


def observe_all(metrics: Metrics, intervals: list[AcwInterval]) -> float:
    """Seconds for `Metrics.observe_interval` on every interval."""
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
        baseline = with_prometheus_histograms(Metrics(CollectorRegistry()))
        runs["baseline"].append(observe_all(baseline, intervals) / len(intervals) * 1e6)
        runs["ours"].append(observe_all(Metrics(CollectorRegistry()), intervals) / len(intervals) * 1e6)
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
