"""Peak memory of `acw replay` with 20,000 agents over a simulated day: state must stay bounded.

    .venv/bin/python -m bench.memory [--agents 20000] [--contacts 24] [--out bench/results/memory.json]

Agents log in at random over 16 hours and work `--contacts` contacts each, so agents come and go all day
and windows keep closing. The replay runs in a child process whose resident memory is sampled every
0.2 s: if closed windows, finished spans and resolved episodes are dropped, RSS levels off instead of
growing with the day. Baseline in the same run: a child that only imports the replay code.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

from streams.traffic import TrafficShape, end_of_input_events, generate

ROOT = Path(__file__).resolve().parents[1]
HOUR_MS = 3_600_000


def _rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def tree_rss_mb(pid: int) -> float | None:
    """RSS of a process and its children together (the worker and its core process), in MB."""
    own = _rss_mb(pid)
    if own is None:
        return None
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        children = []
    return own + sum(_rss_mb(int(child)) or 0.0 for child in children)


def _run_sampled(cmd: list[str]) -> tuple[float, list[tuple[float, float]]]:
    """Run a child; (its peak sampled RSS in MB, [(seconds since start, RSS MB)] samples)."""
    started = time.monotonic()
    child = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL)
    samples = []
    while child.poll() is None:
        rss = _rss_mb(child.pid)
        if rss is not None:
            samples.append((time.monotonic() - started, rss))
        time.sleep(0.2)
    if child.returncode != 0:
        raise SystemExit(f"{cmd} failed with {child.returncode}")
    return max((rss for _, rss in samples), default=0.0), samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--agents", type=int, default=20_000)
    parser.add_argument("--contacts", type=int, default=24)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "memory.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "day.jsonl"
        shape = TrafficShape(agents=args.agents, contacts_per_agent=args.contacts, stagger_ms=16 * HOUR_MS)
        events = generate(shape, seed=5)
        events += end_of_input_events(events[-1].occurred_at_ms + 2 * HOUR_MS, 6)
        with open(path, "wb") as f:
            for e in events:
                f.write(orjson.dumps(e.to_record()) + b"\n")
        n, span_h = len(events), (events[-1].occurred_at_ms - events[0].occurred_at_ms) / HOUR_MS
        del events
        python = sys.executable
        base_peak, _ = _run_sampled([python, "-c", "import time, streams.replay, streams.cli; time.sleep(1)"])
        started = time.monotonic()
        peak, samples = _run_sampled([python, "-m", "streams.cli", "replay", str(path), "--out", f"{tmp}/out"])
        seconds = time.monotonic() - started
    quarters = {}
    for q in (0.25, 0.5, 0.75, 1.0):
        at = [rss for t, rss in samples if t <= q * seconds]
        quarters[f"{int(q * 100)}%"] = round(max(at), 1) if at else None
    result = {
        "agents": args.agents,
        "events": n,
        "event_time_hours": round(span_h, 1),
        "replay_seconds": round(seconds, 1),
        "peak_rss_mb": round(peak, 1),
        "baseline_import_rss_mb": round(base_peak, 1),
        "rss_mb_by_progress": quarters,
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
    }
    print(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))


if __name__ == "__main__":
    main()
