"""Soak: one worker fed a simulated contact-center day in real time for >= 10 minutes; RSS must level off.

    bench/run.sh soak [--minutes 10] [--agents 2000] [--out bench/results/soak.json]

A local broker, the topics and one `acw worker`; `acw simulate` sends a whole day of `--agents` agents
(1% duplicates, 2 s reordering, some malformed records) compressed into `--minutes` of wall-clock time.
Every 5 s the worker's resident memory and its /metrics (events applied, lag) are sampled; a line per
minute is printed. The worker's RSS in the second minute (warm, state filling) is the baseline the
rest of the run is compared with. Nothing is asserted: the figures are the result.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

from bench import machine
from bench.memory import _rss_mb
from tests.support import services
from tests.support.ports import free_port
from tests.support.scrape import scrape, total

ROOT = Path(__file__).resolve().parents[1]


def _scrape(port: int) -> dict[str, float]:
    """Events applied, intervals and lag summed over their labels ({} while the worker does not answer)."""
    series = scrape(port)
    names = ("acw_events_applied_total", "acw_consumer_lag", "acw_intervals_total")
    return {name: v for name in names if (v := total(series, name)) is not None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="wall-clock length of the run (default 10)")
    parser.add_argument("--agents", type=int, default=2000, help="simulated agents (default 2000)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "soak.json")
    args = parser.parse_args()
    speed = 24 * 60 / args.minutes  # a simulated day in the run's wall-clock time
    tmp = Path(tempfile.mkdtemp(prefix="acw-soak-"))
    with services.broker(tmp / "broker") as bootstrap:
        _soak(args, speed, tmp, bootstrap)


def _soak(args: argparse.Namespace, speed: float, tmp: Path, bootstrap: str) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACW_")}
    env.update(
        {
            "ACW_BOOTSTRAP_SERVERS": bootstrap,
            "ACW_DATA_DIR": str(tmp / "worker"),
            "ACW_METRICS_PORT": str(port),
            "PYTHONPATH": str(ROOT),
        }
    )
    acw = [sys.executable, "-m", "streams.cli"]
    worker = simulator = None
    samples: list[dict[str, float]] = []
    try:
        subprocess.run([*acw, "topics", "create"], env=env, check=True, capture_output=True, cwd=ROOT)
        worker = subprocess.Popen([*acw, "worker"], env=env, cwd=ROOT, stderr=open(tmp / "worker.log", "wb"))  # noqa: SIM115
        simulator = subprocess.Popen(
            [*acw, "simulate", "--agents", str(args.agents), "--duration", "1d", "--speed", f"{speed:g}",
             "--duplicates", "0.01", "--reorder-ms", "2000", "--malformed", "0.0005",
             "--topic", "call-events"],
            env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=open(tmp / "simulate.log", "wb"),  # noqa: SIM115
        )  # fmt: skip
        started = time.monotonic()
        end = started + args.minutes * 60
        next_print = started + 60
        print(f"soak: {args.agents} agents, a simulated day at {speed:g}x for {args.minutes:g} min; worker log {tmp}")
        print(f"{'min':>5} {'rss MB':>8} {'applied':>10} {'ev/s':>7} {'lag':>8}")
        last_applied, last_t = 0.0, started
        while time.monotonic() < end:
            if worker.poll() is not None:
                raise SystemExit(f"the worker exited with {worker.returncode}; see {tmp / 'worker.log'}")
            now = time.monotonic()
            metrics = _scrape(port)
            rss = _rss_mb(worker.pid) or 0.0
            sample = {"t": round(now - started, 1), "rss_mb": round(rss, 1), **metrics}
            samples.append(sample)
            if now >= next_print:
                applied = metrics.get("acw_events_applied_total", 0.0)
                rate = (applied - last_applied) / (now - last_t)
                lag = metrics.get("acw_consumer_lag", 0.0)
                print(f"{(now - started) / 60:5.1f} {rss:8.1f} {applied:10.0f} {rate:7.0f} {lag:8.0f}", flush=True)
                last_applied, last_t, next_print = applied, now, next_print + 60
            time.sleep(5)
    finally:
        for proc in (simulator, worker):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()

    def rss_between(a: float, b: float) -> list[float]:
        return [s["rss_mb"] for s in samples if a * 60 <= s["t"] < b * 60 and s["rss_mb"]]

    baseline = statistics.median(rss_between(1, 2))
    last = statistics.median(rss_between(args.minutes - 1, args.minutes))
    applied = samples[-1].get("acw_events_applied_total", 0.0)
    result = {
        "machine": machine(),
        "command": "bench/run.sh soak " + " ".join(sys.argv[1:]),
        "agents": args.agents,
        "minutes": args.minutes,
        "speed": speed,
        "events_applied": applied,
        "events_per_second": round(applied / samples[-1]["t"], 1),
        "rss_mb": {
            "median_minute_2": baseline,
            "median_last_minute": last,
            "max": max(s["rss_mb"] for s in samples),
            "growth_after_minute_2_mb": round(last - baseline, 1),
        },
        "samples": samples,
    }
    args.out.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
    print(
        f"RSS: {baseline:.0f} MB in minute 2, {last:.0f} MB in the last minute, max {result['rss_mb']['max']:.0f} MB; "
        f"{applied:.0f} events applied ({result['events_per_second']:.0f}/s). Written to {args.out}"
    )


if __name__ == "__main__":
    main()
