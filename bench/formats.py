"""`acw replay` per input format on the same simulated day: what each platform adapter costs next to the core.

    .venv/bin/python -m bench.formats [--agents 500] [--runs 3] [--out bench/results/formats.json]

One simulated day is written in our own format (JSON Lines) and rendered in each platform format. For each
format: the adapter alone (translate every record, no core), replay with intervals only, and the default job
(windows and alerts). Our own format, replayed in the same run, is the baseline. Figures are medians of
--runs runs, in records/s and in CallEvents/s (a platform record can carry several events, restated ones
included); the intervals each format gives are listed so a speed-up can be checked not to change them.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

from bench import machine
from streams.domain.processor import RulesConfig
from streams.replay import replay
from streams.settings import Settings
from streams.simulator import Faults, SimulationConfig, platform_items, simulate, to_json_line, with_faults
from streams.sources.formats import PLATFORM_FORMATS, build_source
from streams.sources.intake import Intake

ROOT = Path(__file__).resolve().parents[1]
START = 1_772_438_400_000  # 2026-03-02T08:00:00Z


def write_day(tmp: Path, agents: int) -> dict[str, Path]:
    config = SimulationConfig(agents=agents, duration_ms=8 * 3_600_000, start_ms=START, seed=17)
    paths = {"json": tmp / "json.jsonl"}
    paths["json"].write_bytes(b"".join(to_json_line(i) + b"\n" for i in with_faults(simulate(config), Faults(), 1)))
    for fmt in PLATFORM_FORMATS:
        paths[fmt] = tmp / f"{fmt}.jsonl"
        paths[fmt].write_bytes(b"".join(i.raw + b"\n" for i in platform_items(simulate(config), fmt) if i.raw))
    return paths


def bench_format(fmt: str, path: Path, runs: int, tmp: Path) -> dict[str, Any]:
    settings = Settings()
    lines = path.read_bytes().splitlines()
    source = build_source(fmt, settings)
    events = sum(len(source.translate(line).events) for line in lines)
    adapter, only, full = [], [], []
    for _ in range(runs):
        t = time.perf_counter()
        for line in lines:
            source.translate(line)
        adapter.append(time.perf_counter() - t)
        t = time.perf_counter()
        summary = replay([path], tmp / f"{fmt}-i", RulesConfig(), aggregate=False, intake=Intake(source))
        only.append(time.perf_counter() - t)
        t = time.perf_counter()
        replay([path], tmp / f"{fmt}-f", RulesConfig(), aggregation=settings.aggregation(), intake=Intake(source))
        full.append(time.perf_counter() - t)
    n = len(lines)
    adapter_s, only_s, full_s = (statistics.median(x) for x in (adapter, only, full))
    return {
        "records": n,
        "events": events,
        "intervals": sum(summary.intervals.values()),
        "adapter_records_per_s": round(n / adapter_s),
        "replay_intervals_only_records_per_s": round(n / only_s),
        "replay_intervals_only_events_per_s": round(events / only_s),
        "replay_default_job_records_per_s": round(n / full_s),
        "replay_default_job_events_per_s": round(events / full_s),
        "adapter_share_of_intervals_only_replay": round(adapter_s / only_s, 3),
        "runs_intervals_only_s": [round(x, 3) for x in only],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=500)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "formats.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        paths = write_day(tmp, args.agents)
        results = {fmt: bench_format(fmt, path, args.runs, tmp) for fmt, path in paths.items()}
    base = results["json"]
    print(f"replay per input format, {args.agents} agents over 8 h, medians of {args.runs} runs (baseline: json)")
    print(f"{'format':<24}{'records':>9}{'events':>9}{'adapter rec/s':>15}{'intervals-only ev/s':>21}"
          f"{'default job ev/s':>18}{'adapter share':>15}")  # fmt: skip
    for fmt, r in results.items():
        print(f"{fmt:<24}{r['records']:>9,}{r['events']:>9,}{r['adapter_records_per_s']:>15,}"
              f"{r['replay_intervals_only_events_per_s']:>21,}{r['replay_default_job_events_per_s']:>18,}"
              f"{r['adapter_share_of_intervals_only_replay']:>15.0%}")  # fmt: skip
        assert r["intervals"] == base["intervals"], f"{fmt} gave {r['intervals']} intervals, json {base['intervals']}"
    out = {
        "machine": machine(),
        "agents": args.agents,
        "runs": args.runs,
        "formats": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(orjson.dumps(out, option=orjson.OPT_INDENT_2) + b"\n")
    print(f"-> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
