"""Where the peers job worker's memory is at its peak: allocation sites at the high-water mark (memray).

    .venv/bin/pip install -e '.[bench]'   # memray
    .venv/bin/python -m bench.memory_peak [--events FILE] [--agents 20000] [--duration 2.5h] [--top 25]
                                          [--python-allocators]

Simulates the peers job's traffic (or reads a JSON Lines file of events), loads it into a local broker, runs
`acw worker` with the peers job's settings under `memray run --native` until the last interval is out, and
prints (and writes to bench/results/memory_peak.json) the live heap at its peak by allocation site, each
site named by its innermost frames. memray slows the worker, so its events/s are not a throughput figure;
environment variables such as ACW_CONSUMER_FETCH_BYTES pass through to the worker, to compare settings.
Without `--python-allocators` memray sees Python's small objects only as the 256 KiB pymalloc arenas that hold
them, each charged to whatever allocation happened to open it; with it every object is charged to its own site
(slower, and the capture is larger).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import platform
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

from bench.bench import _metric
from bench.peers import ROOT, SAME_JOB, START_MS, _PeakRss, _worker_env
from streams.kafka_io import produce_file
from streams.replay import replay
from streams.settings import Settings
from streams.simulator import Faults, SimulationConfig, parse_duration
from streams.simulator_io import run_simulation
from streams.topic_admin import create_topics
from tests.support import services


def peak_sites(capture: Path, depth: int) -> tuple[int, list[tuple[str, int]]]:
    """Total live bytes at the high-water mark, and those bytes by allocation site (innermost `depth` frames)."""
    from memray import FileReader  # the bench extra; imported here so --help works without it

    sites: collections.Counter[str] = collections.Counter()
    for record in FileReader(capture).get_high_watermark_allocation_records(merge_threads=True):
        frames = record.stack_trace()[:depth]
        sites[" <- ".join(f"{fn} ({Path(file).name}:{line})" for fn, file, line in frames) or "(native)"] += record.size
    return sum(sites.values()), sites.most_common()


def run(events: Path, n: int, expected_intervals: int, tmp: Path, python_allocators: bool) -> tuple[float, Path]:
    """The worker under memray over `events`; its peak RSS in MB and the capture file."""
    capture = tmp / "worker.memray"
    with services.broker(tmp / "kafka") as bootstrap:
        topic = "peers-input"
        settings = Settings(bootstrap_servers=bootstrap, input_topic=topic, input_format="json")
        asyncio.run(create_topics(settings))
        asyncio.run(produce_file(events, topic, settings, "json"))
        env, port = _worker_env(bootstrap, topic)
        env["ACW_IDLE_ADVANCE_AFTER_SECONDS"] = "0"
        cmd = [sys.executable, "-m", "memray", "run", "--native", "-q", "-o", str(capture)]
        if python_allocators:
            cmd.append("--trace-python-allocators")
        proc = subprocess.Popen([*cmd, "-m", "streams.cli", "worker"], env=env, cwd=ROOT, stderr=subprocess.DEVNULL)
        rss = _PeakRss(proc.pid)
        try:
            deadline = time.monotonic() + 3600
            while _metric(port, "acw_intervals_total") < expected_intervals:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("the worker did not emit every interval in time")
                time.sleep(0.5)
        finally:
            peak = rss.stop()
            proc.send_signal(signal.SIGINT)  # memray finishes its capture on a clean exit
            proc.wait(timeout=300)
    return peak, capture


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=Path, help="JSON Lines events (default: simulate the peers job's)")
    parser.add_argument("--agents", type=int, default=20_000)
    parser.add_argument("--duration", default="2.5h")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--depth", type=int, default=3, help="frames naming an allocation site")
    parser.add_argument(
        "--python-allocators", action="store_true", help="charge each Python object to its own site, not its arena"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "memory_peak.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        events = args.events
        if events is None:
            events = tmp / "sim.jsonl"
            config = SimulationConfig(agents=args.agents, duration_ms=parse_duration(args.duration), start_ms=START_MS)
            run_simulation(config, Faults(), Settings(), out=events)
        n = sum(1 for _ in events.open("rb"))
        job = Settings(windows=SAME_JOB["windows"], scopes=SAME_JOB["scopes"])
        replay([events], tmp / "replay", job.rules(), None, job.aggregation(), aggregate=False)
        expected = len((tmp / "replay" / "intervals.jsonl").read_bytes().splitlines())
        peak_rss, capture = run(events, n, expected, tmp, args.python_allocators)
        total, sites = peak_sites(capture, args.depth)
    print(f"{n:,} events; worker peak RSS {peak_rss:.0f} MB; live heap at its peak {total / 1e6:.0f} MB")
    for site, size in sites[: args.top]:
        print(f"{size / 1e6:8.1f} MB  {site}")
    result: dict[str, Any] = {
        "events": n,
        "peak_rss_mb": round(peak_rss, 1),
        "heap_at_peak_mb": round(total / 1e6, 1),
        "sites_mb": {site: round(size / 1e6, 1) for site, size in sites[: args.top]},
        "python_allocators_traced": args.python_allocators,
        "python": platform.python_version(),
    }
    args.out.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
