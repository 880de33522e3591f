"""What each scope and window of the job costs: replay events/s and output records per ACW_SCOPES/ACW_WINDOWS.

    .venv/bin/python -m bench.job_costs [--agents 2000] [--runs 3] [--out bench/results/job_costs.json]

The same generated day is replayed with each job in turn, the jobs alternating within every run so they share
the machine's noise; each figure is the median of --runs runs. Aggregate records are counted per scope and
window, since every one of them is a record on `acw.aggregates` that consumers read and the broker keeps.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import orjson

from bench.bench import ROOT, write_events, write_results
from streams.replay import replay
from streams.settings import Settings

JOBS: dict[str, dict[str, str]] = {
    "intervals only": {},
    "default: all scopes, 15m,1h/5m": {},
    "all scopes, 15m": {"ACW_WINDOWS": "15m"},
    "TEAM,QUEUE,CENTER, 15m,1h/5m": {"ACW_SCOPES": "TEAM,QUEUE,CENTER"},
    "TEAM,QUEUE,CENTER, 15m": {"ACW_SCOPES": "TEAM,QUEUE,CENTER", "ACW_WINDOWS": "15m"},
}


def _records(out: Path) -> Counter[str]:
    """Final aggregate records by scope and window size, and alert records."""
    counts: Counter[str] = Counter()
    with open(out / "aggregates.jsonl", "rb") as f:
        for line in f:
            r = orjson.loads(line)
            counts[f"{r['scope']} {r['window_size_seconds'] // 60} min"] += 1
    with open(out / "alerts.jsonl", "rb") as f:
        counts["alerts"] = sum(1 for _ in f)
    return counts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--agents", type=int, default=2000, help="agents in the generated day (default 2000)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "job_costs.json")
    args = parser.parse_args()
    base = {k: v for k, v in os.environ.items() if not k.startswith("ACW_")}
    rates: dict[str, list[float]] = {name: [] for name in JOBS}
    records: dict[str, Counter[str]] = {}
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        path = tmp / "events.jsonl"
        n = write_events(path, args.agents)
        for _ in range(args.runs):
            for name, env in JOBS.items():
                settings = Settings.from_env({**base, **env})
                out = tmp / "out"
                t = time.perf_counter()
                replay(
                    [path],
                    out,
                    settings.rules(),
                    aggregation=settings.aggregation(),
                    aggregate=name != "intervals only",
                )
                rates[name].append(n / (time.perf_counter() - t))
                records[name] = _records(out)
    result: dict[str, Any] = {
        "command": " ".join(["python -m bench.job_costs", *sys.argv[1:]]),
        "events": n,
        "jobs": {},
    }
    for name in JOBS:
        median = statistics.median(rates[name])
        result["jobs"][name] = {
            "replay_events_per_s": round(median),
            "runs": [round(r) for r in rates[name]],
            "aggregate_records": sum(v for k, v in records[name].items() if k != "alerts"),
            "records": dict(sorted(records[name].items())),
        }
        print(f"{name:34} {median:9,.0f} events/s  {dict(sorted(records[name].items()))}")
    write_results(args.out, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
