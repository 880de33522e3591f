"""Throughput of `acw replay` and of the worker through the local broker, with same-run baselines.

    .venv/bin/python -m bench.bench [--agents 2000] [--runs 3] [--out bench/results/latest.json]

Prints a table and writes JSON. Each figure is the median of --runs runs. Baselines measured in the same run:
for replay, parsing the same JSON Lines with orjson and nothing else, and the job with windows in one process as
well as in the processes `acw replay` runs by default (ACW_REPLAY_PROCESSES); for the worker, a bare aiokafka consumer
reading the same topic without decoding, and an empty noack Faust agent (bench/faust_ceiling.py).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from bench import machine
from streams.domain.processor import RulesConfig
from streams.kafka_io import produce_file
from streams.replay import replay
from streams.settings import Settings
from streams.topic_admin import create_topics
from streams.traffic import TrafficShape, end_of_input_events, generate
from tests.support import services
from tests.support.ports import free_port
from tests.support.scrape import by_label, scrape, total

ROOT = Path(__file__).resolve().parents[1]
# After the first event, /metrics is polled this often: each poll renders and sends the whole body, and
# polling every 50 ms cost the measured worker several percent of its time (0.5 s on a run of a minute or more).
END_POLL_S = 0.5
# How often `run_workers` reads the workers' /metrics for their end, and how fresh it asks that page to be. A
# worker renders /metrics at most every ACW_METRICS_REFRESH_SECONDS (2 s by default), which rounded a 10 s run of
# the default job to 2 s steps: until 2026-12-04's eighth session its figures fell on 206,055 events in 8.2, 10.3,
# 12.4 or 14.6 s (25,000, 20,000, 16,600 or 14,100 events/s). The day's page is small: 4 renders a second cost
# little.
WORKERS_POLL_S = 0.25
WORKERS_METRICS_REFRESH_S = "0.05"


def write_results(out: Path, result: dict[str, Any]) -> None:
    """Write a benchmark's figures as indented JSON and say where."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2) + b"\n")
    print(f"written to {out}")


def write_events(path: Path, agents: int) -> int:
    events = generate(TrafficShape(agents=agents, contacts_per_agent=20), seed=11)
    events += end_of_input_events(events[-1].occurred_at_ms + 2 * 3_600_000, Settings().partitions)
    with open(path, "wb") as f:
        for e in events:
            f.write(orjson.dumps(e.to_record()) + b"\n")
    return len(events)


def bench_replay(path: Path, n: int, runs: int, tmp: Path) -> dict[str, Any]:
    rates, full_rates, one_rates, parse_rates = [], [], [], []
    processes = Settings().replay_process_count()  # as `acw replay` runs by default
    for _ in range(runs):
        t = time.perf_counter()
        with open(path, "rb") as f:
            for line in f:
                orjson.loads(line)
        parse_rates.append(n / (time.perf_counter() - t))
        t = time.perf_counter()
        summary = replay([path], tmp / "replay", RulesConfig(), aggregate=False)
        rates.append(n / (time.perf_counter() - t))
        t = time.perf_counter()
        full = replay([path], tmp / "replay-full", RulesConfig(), processes=processes)
        full_rates.append(n / (time.perf_counter() - t))
        t = time.perf_counter()
        replay([path], tmp / "replay-one", RulesConfig(), processes=1)
        one_rates.append(n / (time.perf_counter() - t))
    return {
        "events": n,
        "intervals": sum(summary.intervals.values()),
        "final_aggregates": full.aggregates,
        "replay_events_per_s": statistics.median(rates),
        "replay_with_aggregates_events_per_s": statistics.median(full_rates),
        "replay_processes": processes,
        "replay_with_aggregates_one_process_events_per_s": statistics.median(one_rates),
        "baseline_orjson_parse_events_per_s": statistics.median(parse_rates),
        "runs": [round(r) for r in rates],
        "runs_with_aggregates": [round(r) for r in full_rates],
        "runs_with_aggregates_one_process": [round(r) for r in one_rates],
    }


def bench_codecs(path: Path, runs: int) -> dict[str, Any]:
    """avro vs fastavro encode/decode, and JSON decoding, on our own CallEvent records (µs per record, medians)."""
    import io
    import json

    import avro.io
    import avro.schema

    from streams.domain.events import event_from_record
    from streams.serialization import _without_logical_types, codec, event_from_json, load_schema

    records, lines = [], []
    with open(path, "rb") as f:
        for i, line in enumerate(f):
            if i >= 20_000:
                break
            lines.append(line)
            records.append(event_from_json(line).to_record())
    fast = codec("call_event")
    schema = avro.schema.parse(json.dumps(_without_logical_types(load_schema("call_event"))))
    writer, reader = avro.io.DatumWriter(schema), avro.io.DatumReader(schema)

    # fastavro fills a missing field from its default; the reference library wants every field present.
    defaults = {f["name"]: f["default"] for f in load_schema("call_event")["fields"] if "default" in f}

    def avro_encode(r: dict[str, Any]) -> bytes:
        buf = io.BytesIO()
        writer.write({**defaults, **r}, avro.io.BinaryEncoder(buf))
        return buf.getvalue()

    encoded = [fast.encode(r) for r in records]
    assert encoded == [avro_encode(r) for r in records[:2000]] + encoded[2000:], "encodings differ"
    timings: dict[str, list[float]] = {
        "fastavro_encode": [],
        "fastavro_decode": [],
        "avro_encode": [],
        "avro_decode": [],
        "json_event": [],  # JSON line -> validated CallEvent, as the json format reads it (msgspec)
        "json_event_orjson_validator": [],  # the same before msgspec: orjson, then the validator
    }
    for _ in range(runs):
        for name, fn, data in (
            ("fastavro_encode", fast.encode, records),
            ("fastavro_decode", fast.decode, encoded),
            ("avro_encode", avro_encode, records),
            ("avro_decode", lambda b: reader.read(avro.io.BinaryDecoder(io.BytesIO(b))), encoded),
            ("json_event", event_from_json, lines),
            ("json_event_orjson_validator", lambda b: event_from_record(orjson.loads(b)), lines),
        ):
            t = time.perf_counter()
            for item in data:
                fn(item)
            timings[name].append((time.perf_counter() - t) / len(data) * 1e6)
    return {f"{k}_us": round(statistics.median(v), 2) for k, v in timings.items()}


def _metric(port: int, name: str) -> float:
    """The sum of a worker's series of metric `name`, 0 while it does not answer."""
    return total(scrape(port), name) or 0.0


def _finals(port: int) -> float:
    """Final window aggregate records a worker sent so far, 0 while it does not answer."""
    return by_label(scrape(port), "acw_aggregates_total", "final").get("true", 0.0)


def run_worker_once(
    env: dict[str, str], n: int, expected: tuple[int, int], timeout_s: float, tree: Path = ROOT
) -> tuple[float, float]:
    """Events/s of one worker run from the checkout `tree` (this one unless a baseline's is given): until the
    last interval, and until the last final aggregate, of the (intervals, final aggregates) `expected`."""
    run = run_workers(env, n, expected[0], timeout_s, tree, expected_finals=expected[1])
    assert run.job_events_per_s is not None
    return run.events_per_s, run.job_events_per_s


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time a process has used so far (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class WorkersRun:
    """What one measured run of one or more workers gave."""

    events_per_s: float
    consumed: list[float]  # events each worker consumed
    busy: list[float]  # CPU seconds each worker used per second of the measurement
    job_events_per_s: float | None = None  # until the last final aggregate, when asked for


def run_workers(
    env: dict[str, str],
    n: int,
    expected_intervals: int,
    timeout_s: float,
    tree: Path = ROOT,
    workers: int = 1,
    expected_finals: int | None = None,
) -> WorkersRun:
    """`workers` worker processes in one consumer group, from the checkout `tree` (this one by default).

    Measured from the first event any of them consumed until their intervals add up to `expected_intervals`
    and, with `expected_finals`, on until their final window aggregates add up to it (the whole job done).
    """
    run = uuid.uuid4().hex[:8]
    env = {
        **env,
        "ACW_APP_ID": f"bench-{run}",
        # Outputs carry event time, and the traffic may be dated back: keep the broker from deleting them.
        "ACW_RETENTION_DAYS": "3650",
        "ACW_AGGREGATES_RETENTION_DAYS": "3650",
        "ACW_ALERTS_RETENTION_DAYS": "3650",
        "ACW_INTERVALS_TOPIC": f"bench-intervals-{run}",
        "ACW_METRICS_REFRESH_SECONDS": WORKERS_METRICS_REFRESH_S,
        "PYTHONPATH": str(tree),
    }
    ports = [free_port() for _ in range(workers)]
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "streams.cli", "worker"],
            env={**env, "ACW_METRICS_PORT": str(port), "ACW_DATA_DIR": tempfile.mkdtemp(prefix="acw-bench-")},
            cwd=tree,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for port in ports
    ]
    try:
        deadline = time.monotonic() + timeout_s
        t0 = None
        run: WorkersRun | None = None
        while time.monotonic() < deadline:
            if t0 is None and any(_metric(port, "acw_events_consumed_total") > 0 for port in ports):
                t0 = time.monotonic()
                cpu0 = [cpu_seconds(p.pid) for p in procs]
            waiting = run is None and t0 is not None  # each scrape renders the whole /metrics: one per poll
            if waiting and sum(_metric(port, "acw_intervals_total") for port in ports) >= expected_intervals:
                elapsed = time.monotonic() - t0
                busy = [(cpu_seconds(p.pid) - c) / elapsed for p, c in zip(procs, cpu0, strict=True)]
                run = WorkersRun(n / elapsed, [_metric(port, "acw_events_consumed_total") for port in ports], busy)
            if run is not None:
                if expected_finals is None:
                    return run
                if sum(_finals(port) for port in ports) >= expected_finals:
                    run.job_events_per_s = n / (time.monotonic() - (t0 or 0))
                    return run
            time.sleep(0.05 if t0 is None else WORKERS_POLL_S)
        raise RuntimeError("worker did not finish in time")
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=30)


def faust_ceiling_rate(bootstrap: str, topic: str, n: int, tmp: Path) -> float:
    result = tmp / f"ceiling-{uuid.uuid4().hex[:6]}.txt"
    subprocess.run(
        [sys.executable, "-m", "bench.faust_ceiling", bootstrap, topic, str(n), str(result)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=600,
        check=False,
    )
    return float(result.read_text())


async def bare_consumer_rate(bootstrap: str, topic: str, n: int, decode: Callable[[bytes], Any] | None = None) -> float:
    """A plain aiokafka consumer reading every record (and decoding each with `decode`, if given)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None)
    await consumer.start()
    try:
        parts = (await consumer._client.fetch_all_metadata()).partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in parts]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        seen = 0
        t = time.perf_counter()
        while seen < n:
            batch = await consumer.getmany(timeout_ms=1000, max_records=10_000)
            for records in batch.values():
                if decode is not None:
                    for r in records:
                        decode(r.value)
                seen += len(records)
        return n / (time.perf_counter() - t)
    finally:
        await consumer.stop()


def bench_worker(
    path: Path, n: int, expected: tuple[int, int], runs: int, tmp: Path, baseline_tree: Path | None = None
) -> dict[str, Any]:
    with services.broker(tmp / "kafka") as bootstrap:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ACW_")}
        env.update({"ACW_BOOTSTRAP_SERVERS": bootstrap, "ACW_IDLE_ADVANCE_AFTER_SECONDS": "0", "PYTHONPATH": str(ROOT)})
        settings = Settings.from_env(env)
        asyncio.run(create_topics(settings))
        asyncio.run(produce_file(path, settings.input_topic, settings, "avro"))
        rates: list[tuple[float, float]] = []
        rates2: list[tuple[float, float]] = []  # ACW_WORKER_PROCESSES=2: the cores in a core process
        before: list[tuple[float, float]] = []
        bare, ceiling = [], []
        for _ in range(runs):
            bare.append(asyncio.run(bare_consumer_rate(bootstrap, settings.input_topic, n)))
            ceiling.append(faust_ceiling_rate(bootstrap, settings.input_topic, n, tmp))
            if baseline_tree is not None:
                before.append(run_worker_once(env, n, expected, timeout_s=600, tree=baseline_tree))
            rates.append(run_worker_once(env, n, expected, timeout_s=600))
            rates2.append(run_worker_once({**env, "ACW_WORKER_PROCESSES": "2"}, n, expected, timeout_s=600))
        result = {
            "worker_events_per_s": statistics.median(r for r, _ in rates),
            "worker_job_events_per_s": statistics.median(j for _, j in rates),
            "baseline_bare_consumer_events_per_s": statistics.median(bare),
            "baseline_faust_empty_agent_events_per_s": statistics.median(ceiling),
            "runs": [round(r) for r, _ in rates],
            "job_runs": [round(j) for _, j in rates],
            "worker_two_processes_events_per_s": statistics.median(r for r, _ in rates2),
            "worker_two_processes_job_events_per_s": statistics.median(j for _, j in rates2),
            "two_processes_runs": [round(r) for r, _ in rates2],
            "two_processes_job_runs": [round(j) for _, j in rates2],
        }
        if baseline_tree is not None:
            result["baseline_tree"] = str(baseline_tree)
            result["baseline_tree_worker_events_per_s"] = statistics.median(r for r, _ in before)
            result["baseline_tree_worker_job_events_per_s"] = statistics.median(j for _, j in before)
            result["baseline_tree_runs"] = [round(r) for r, _ in before]
            result["baseline_tree_job_runs"] = [round(j) for _, j in before]
        return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--agents", type=int, default=2000, help="agents in the generated day (default 2000)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "latest.json")
    parser.add_argument("--skip-worker", action="store_true")
    parser.add_argument(
        "--baseline-tree",
        type=Path,
        help="another checkout (e.g. a `git worktree` of main) whose worker is measured in the same runs",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        path = tmp / "events.jsonl"
        n = write_events(path, args.agents)
        result: dict[str, Any] = {
            "machine": machine(),
            "command": " ".join(["python -m bench.bench", *sys.argv[1:]]),
            "replay": bench_replay(path, n, args.runs, tmp),
        }
        result["codecs"] = bench_codecs(path, args.runs)
        print("codecs (us/record): " + ", ".join(f"{k[:-3]} {v}" for k, v in result["codecs"].items()))
        print(
            f"replay: {result['replay']['replay_events_per_s']:,.0f} events/s intervals only, "
            f"{result['replay']['replay_with_aggregates_events_per_s']:,.0f} with aggregates and alerts in "
            f"{result['replay']['replay_processes']} process(es), "
            f"{result['replay']['replay_with_aggregates_one_process_events_per_s']:,.0f} in one "
            f"(medians of {args.runs}); "
            f"orjson parse alone: {result['replay']['baseline_orjson_parse_events_per_s']:,.0f}/s; {n:,} events"
        )
        if not args.skip_worker:
            expected = (result["replay"]["intervals"], result["replay"]["final_aggregates"])
            result["worker"] = bench_worker(path, n, expected, args.runs, tmp, args.baseline_tree)
            w = result["worker"]
            print(
                f"worker: {w['worker_events_per_s']:,.0f} events/s to the last interval, "
                f"{w['worker_job_events_per_s']:,.0f} to the last final aggregate (medians of {args.runs}); "
                f"with a core process: {w['worker_two_processes_events_per_s']:,.0f} and "
                f"{w['worker_two_processes_job_events_per_s']:,.0f}; "
                f"bare aiokafka consumer: {w['baseline_bare_consumer_events_per_s']:,.0f}/s; "
                f"empty Faust agent: {w['baseline_faust_empty_agent_events_per_s']:,.0f}/s"
                + (
                    f"; baseline tree: {w['baseline_tree_worker_events_per_s']:,.0f}/s to the last interval, "
                    f"{w['baseline_tree_worker_job_events_per_s']:,.0f}/s to the last final aggregate"
                    if args.baseline_tree
                    else ""
                )
            )
    write_results(args.out, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
