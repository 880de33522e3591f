"""How the worker's throughput grows with worker processes: one worker, then two in one consumer group.

    .venv/bin/python -m bench.scaling [--agents 2000] [--runs 3] [--out bench/results/scaling.json]

The same generated day (Avro, ACW_PARTITIONS partitions) is read in each run by one worker and by two workers
of one consumer group, one after the other on the same topic, the default job. The broker delays the group's
first rebalance by a few seconds so that two workers started together share the first assignment and no
rebalance falls inside the measurement. Prints medians and the ratio of each run, writes JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.bench import ROOT, run_workers, write_events, write_results
from streams.domain.processor import RulesConfig
from streams.kafka_io import produce_file
from streams.replay import replay
from streams.settings import Settings
from streams.topic_admin import create_topics
from tests.support import services

JOIN_WINDOW_MS = 8_000  # group.initial.rebalance.delay.ms: both workers join well within it


def _median(values: list[float]) -> float:
    return round(statistics.median(values), 2)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--agents", type=int, default=2000, help="agents in the generated day (default 2000)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "scaling.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        path = tmp / "events.jsonl"
        n = write_events(path, args.agents)
        intervals = sum(replay([path], tmp / "replay", RulesConfig(), aggregate=False).intervals.values())
        conf = tmp / "broker.properties"
        conf.write_text(f"group.initial.rebalance.delay.ms={JOIN_WINDOW_MS}\n")
        with services.broker(tmp / "kafka", conf) as bootstrap:
            env = {k: v for k, v in os.environ.items() if not k.startswith("ACW_")}
            env.update({"ACW_BOOTSTRAP_SERVERS": bootstrap, "ACW_IDLE_ADVANCE_AFTER_SECONDS": "0"})
            settings = Settings.from_env(env)
            asyncio.run(create_topics(settings))
            asyncio.run(produce_file(path, settings.input_topic, settings, "avro"))
            one: list[float] = []
            two: list[float] = []
            shares: list[list[int]] = []
            busy_one: list[float] = []
            busy_two: list[float] = []
            for i in range(args.runs):
                single = run_workers(env, n, intervals, timeout_s=900)
                pair = run_workers(env, n, intervals, timeout_s=900, workers=2)
                one.append(single.events_per_s)
                two.append(pair.events_per_s)
                busy_one.append(single.busy[0])
                busy_two.append(sum(pair.busy))
                shares.append([round(c) for c in pair.consumed])
                print(
                    f"run {i + 1}: one worker {one[-1]:,.0f} events/s ({single.busy[0]:.2f} cores busy), "
                    f"two {two[-1]:,.0f} ({two[-1] / one[-1]:.2f}x, {sum(pair.busy):.2f} cores); events consumed "
                    f"by each of the two: {' + '.join(f'{c:,.0f}' for c in pair.consumed)} of {n:,}"
                )
                if sum(pair.consumed) > n:  # a rebalance inside the measurement: some events were delivered twice
                    print(f"  warning: {sum(pair.consumed) - n:,.0f} events consumed twice; this run is not clean")
    ratios = [b / a for a, b in zip(one, two, strict=True)]
    result: dict[str, Any] = {
        "command": " ".join(["python -m bench.scaling", *sys.argv[1:]]),
        "cpus": os.cpu_count(),
        "events": n,
        "partitions": settings.partitions,
        "one_worker_events_per_s": round(statistics.median(one)),
        "two_workers_events_per_s": round(statistics.median(two)),
        "ratio_median": round(statistics.median(ratios), 2),
        "runs": {"one": [round(r) for r in one], "two": [round(r) for r in two]},
        "events_consumed_by_each_of_two": shares,
        "cores_busy_median": {"one": _median(busy_one), "two": _median(busy_two)},
    }
    print(
        f"one worker {result['one_worker_events_per_s']:,} events/s, two {result['two_workers_events_per_s']:,} "
        f"(median ratio {result['ratio_median']}x of {args.runs} runs, {n:,} events, {settings.partitions} partitions)"
    )
    write_results(args.out, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
