"""Our worker against the Python ceiling, a Quix Streams peer and `acw replay`, on the same simulated topic.

    .venv/bin/python -m bench.peers [--agents 20000] [--duration 2.5h] [--runs 3] [--out bench/results/peers.json]

One run of the simulator (>= 1,000,000 events, JSON, 6 partitions) is loaded once; then, several times each
with medians: (1) our worker, events/s from the first event consumed (its /metrics) to the last interval on its
topic (the topic's end offsets; /metrics is scraped every 15 s meanwhile, as deploy/prometheus does), and peak
RSS; (2) a bare aiokafka consumer decoding the same records, no processing (the ceiling for Python); (3) the
Quix Streams peer (bench/quix_peer.py), events/s and peak RSS; (4) `acw replay` of the same file, with and
without aggregates. The peer's intervals and 15-minute team windows are checked against replay's. Finally the
latency from event time to interval emit at a fixed input rate: the simulator sends in accelerated real time
while the worker runs, and each interval's Kafka timestamp is compared with the wall time its end was sent at.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from bench import core_bound, machine, split_ceiling
from bench.bench import END_POLL_S, _metric, bare_consumer_rate
from bench.memory import tree_rss_mb
from streams.kafka_io import produce_file
from streams.replay import replay
from streams.serialization import event_from_json
from streams.settings import Settings
from streams.simulator import Faults, SimulationConfig, parse_duration, simulate, with_faults
from streams.simulator_io import _Pacer, _to_kafka, run_simulation
from streams.topic_admin import create_topics, describe
from tests.support import services
from tests.support.ports import free_port

ROOT = Path(__file__).resolve().parents[1]
START_MS = 1_772_438_400_000  # 2026-03-02T08:00:00Z
SAME_JOB = {"windows": "15m", "scopes": "TEAM"}


class _PeakRss:
    """Samples the resident memory of a process and its children (a core process) in a thread until stopped."""

    def __init__(self, pid: int) -> None:
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(pid,), daemon=True)
        self._thread.start()

    def _run(self, pid: int) -> None:
        while not self._stop.is_set():
            rss = tree_rss_mb(pid)
            if rss is not None:
                self.peak = max(self.peak, rss)
            time.sleep(0.2)

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return self.peak


async def _partitions(bootstrap: str, topic: str) -> int:
    """How many partitions `topic` has on the broker (0: not created yet)."""
    found = await describe(Settings(bootstrap_servers=bootstrap), [topic])
    return int(found.get(topic, {}).get("partitions", 0))


async def _read_json(bootstrap: str, topic: str) -> list[Any]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(await _partitions(bootstrap, topic))]
        if not tps:
            return []
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        end = await consumer.end_offsets(tps)
        out: list[Any] = []
        remaining = {tp for tp in tps if end[tp] > 0}
        while remaining:
            batch = await consumer.getmany(*remaining, timeout_ms=1000)
            for tp, messages in batch.items():
                out.extend(messages)
                if messages and messages[-1].offset >= end[tp] - 1:
                    remaining.discard(tp)
        return out
    finally:
        await consumer.stop()


def _worker_env(bootstrap: str, topic: str) -> tuple[dict[str, str], int]:
    run = uuid.uuid4().hex[:8]
    port = free_port()
    # Passed on, to compare their figures.
    memory_knobs = ("ACW_CONSUMER_FETCH_BYTES", "ACW_MALLOC_TUNING", "ACW_WORKER_PROCESSES")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACW_") or k in memory_knobs}
    env.update(
        {
            "ACW_BOOTSTRAP_SERVERS": bootstrap,
            "ACW_INPUT_TOPIC": topic,
            "ACW_INPUT_FORMAT": "json",
            "ACW_APP_ID": f"peers-{run}",
            "ACW_INTERVALS_TOPIC": f"peers-intervals-{run}",
            "ACW_AGGREGATES_TOPIC": f"peers-aggregates-{run}",
            "ACW_ALERTS_TOPIC": f"peers-alerts-{run}",
            "ACW_PANES_TOPIC": f"peers-panes-{run}",
            # Outputs carry event time, and the traffic may be dated back: keep the broker from deleting them.
            "ACW_RETENTION_DAYS": "3650",
            "ACW_AGGREGATES_RETENTION_DAYS": "3650",
            "ACW_ALERTS_RETENTION_DAYS": "3650",
            "ACW_REKEY_TOPIC": f"peers-rekey-{run}",
            "ACW_DEAD_LETTER_TOPIC": f"peers-dead-{run}",
            "ACW_METRICS_PORT": str(port),
            # The peer's job: intervals and a 15-minute window per team (the default also keeps hourly hopping
            # windows for agents, queues and the center, several times the output).
            "ACW_WINDOWS": SAME_JOB["windows"],
            "ACW_SCOPES": SAME_JOB["scopes"],
            "ACW_DATA_DIR": tempfile.mkdtemp(prefix="acw-peers-"),
            "PYTHONPATH": str(ROOT),
        }
    )
    return env, port


def _start_worker(env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "streams.cli", "worker"], env=env, cwd=ROOT, stderr=subprocess.DEVNULL
    )


# While the worker runs, its /metrics is scraped as often as deploy/prometheus scrapes it. Its end is found on the
# broker (the intervals topic's end offsets), not by scraping: on this job the page grows to about 7 MB (1,300
# teams' histograms), and rendering it twice a second took CPU from the worker being measured.
SCRAPE_EVERY_S = 15.0


def run_worker(
    bootstrap: str, topic: str, n: int, expected_intervals: int, processes: int | None = None
) -> dict[str, float]:
    """The worker's events/s and peak RSS (with its core process's) on the loaded topic; `processes`: its
    ACW_WORKER_PROCESSES (None: the environment's, else the default)."""
    env, port = _worker_env(bootstrap, topic)
    env["ACW_IDLE_ADVANCE_AFTER_SECONDS"] = "0"
    if processes is not None:
        env["ACW_WORKER_PROCESSES"] = str(processes)
    proc = subprocess.Popen(
        [sys.executable, "-m", "streams.cli", "worker"], env=env, cwd=ROOT, stderr=subprocess.DEVNULL
    )
    rss = _PeakRss(proc.pid)
    try:
        deadline = time.monotonic() + 1800
        while _metric(port, "acw_events_consumed_total") <= 0:  # the page is small until the first event
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("the worker consumed nothing")
            time.sleep(0.05)
        t0 = time.monotonic()
        done = asyncio.run(_wait_for_records(bootstrap, env["ACW_INTERVALS_TOPIC"], expected_intervals, port, deadline))
        result = {"events_per_s": n / (done - t0), "peak_rss_mb": rss.stop()}
        # What the checkpoints wrote per event so far (0 from a checkout without the counter).
        result["checkpoint_entries_per_event"] = _metric(port, "acw_checkpoint_entries_total") / n
        # The worker counts a batch's intervals after handing them to its producer, so the topic can be ahead
        # for a moment; the count must catch up, or the topic holds records that are not this run's intervals.
        while _metric(port, "acw_intervals_total") < expected_intervals:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("the intervals topic holds more records than the worker counted")
            time.sleep(0.05)
        return result
    finally:
        rss.stop()
        proc.terminate()
        proc.wait(timeout=60)


async def _wait_for_records(bootstrap: str, topic: str, expected: int, port: int, deadline: float) -> float:
    """When `topic` first holds `expected` records (its end offsets summed), polled every END_POLL_S."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        scraped = time.monotonic()
        partitions = 0
        while time.monotonic() < deadline:
            if not partitions:
                partitions = await _partitions(bootstrap, topic)
            else:
                ends = await consumer.end_offsets([TopicPartition(topic, p) for p in range(partitions)])
                if sum(ends.values()) >= expected:
                    return time.monotonic()
            if time.monotonic() - scraped >= SCRAPE_EVERY_S:
                scraped = time.monotonic()
                await asyncio.to_thread(_metric, port, "acw_intervals_total")
            await asyncio.sleep(END_POLL_S)
        raise RuntimeError("the worker did not emit every interval in time")
    finally:
        await consumer.stop()


def run_quix(bootstrap: str, topic: str, tmp: Path) -> dict[str, Any]:
    prefix = f"quix-{uuid.uuid4().hex[:8]}"
    result = tmp / f"{prefix}.json"
    cmd = [sys.executable, "-m", "bench.quix_peer", "--bootstrap", bootstrap, "--input", topic, "--prefix", prefix]
    cmd += ["--state-dir", str(tmp / prefix), "--result", str(result)]
    proc = subprocess.Popen(cmd, cwd=ROOT, stderr=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    rss = _PeakRss(proc.pid)
    proc.wait(timeout=3600)
    peak = rss.stop()
    seen = orjson.loads(result.read_bytes())
    return {
        "events_per_s": seen["events"] / (seen["last"] - seen["first"]),
        "events": seen["events"],
        "peak_rss_mb": peak,
        "prefix": prefix,
    }


def check_quix_outputs(bootstrap: str, prefix: str, replay_dir: Path) -> dict[str, Any]:
    """The peer's intervals and 15-minute team windows against replay's (windows both have)."""
    expected = {
        r["interval_id"]: r for r in map(orjson.loads, (replay_dir / "intervals.jsonl").read_bytes().splitlines())
    }
    got = {}
    for m in asyncio.run(_read_json(bootstrap, f"{prefix}-intervals")):
        r = orjson.loads(m.value)
        got[r["interval_id"]] = r
    same = sum(1 for k, r in got.items() if expected.get(k) == r)
    finals = {}
    for r in map(orjson.loads, (replay_dir / "aggregates.jsonl").read_bytes().splitlines()):
        if r["scope"] == "TEAM" and r["window_size_seconds"] == 900:
            finals[(r["key"], r["window_start"])] = (r["contacts"], round(r["acw_sum_seconds"], 3))
    windows = {}
    for m in asyncio.run(_read_json(bootstrap, f"{prefix}-team-15m")):
        r = orjson.loads(m.value)
        windows[(m.key.decode(), r["start"])] = (r["value"]["contacts"], round(r["value"]["acw_sum_seconds"], 3))
    common = windows.keys() & finals.keys()
    return {
        "intervals_expected": len(expected),
        "intervals_peer": len(got),
        "intervals_identical": same,
        "team_windows_expected": len(finals),
        "team_windows_peer": len(windows),
        "team_windows_compared": len(common),
        "team_windows_equal": sum(1 for k in common if windows[k] == finals[k]),
        # Quix's windows close on the stream time of each repartition-topic partition, which several source
        # partitions feed at their own pace: what arrives behind it is dropped as late.
        "team_window_contacts_expected": sum(finals[k][0] for k in common),
        "team_window_contacts_peer": sum(windows[k][0] for k in common),
    }


async def _append_time(bootstrap: str, topic: str) -> None:
    """Make the broker stamp each record of `topic` with its append time instead of the producer's event time."""
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        resource = ConfigResource(ConfigResourceType.TOPIC, topic, {"message.timestamp.type": "LogAppendTime"})
        await admin.alter_configs([resource])
    finally:
        await admin.close()


def latency_run(
    bootstrap: str, agents: int, speed: float, seconds: float, processes: int | None = None
) -> dict[str, Any]:
    """p50/p99 of (when an interval was appended to its topic - wall time its end was sent at) at a fixed input rate.

    The worker stamps intervals with their event time, so the bench's intervals topic is set to the broker's
    append time: the record's timestamp is then when it landed on the topic.
    """
    topic = f"peers-live-{uuid.uuid4().hex[:8]}"
    env, port = _worker_env(bootstrap, topic)
    if processes is not None:
        env["ACW_WORKER_PROCESSES"] = str(processes)
    settings = Settings.from_env(env)
    asyncio.run(create_topics(settings))
    asyncio.run(_append_time(bootstrap, settings.intervals_topic))
    proc = subprocess.Popen(
        [sys.executable, "-m", "streams.cli", "worker"], env=env, cwd=ROOT, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and _metric(port, "faust_total_rebalances") < 1:
            time.sleep(0.5)  # polling for the worker to join its group, so traffic is not a backlog
        while time.monotonic() < deadline and _metric(port, "acw_table_recovery_in_progress") > 0:
            time.sleep(0.5)
        start_ms = int(time.time() * 1000)
        config = SimulationConfig(agents=agents, duration_ms=round(seconds * speed * 1000), start_ms=start_ms, seed=9)
        pacer = _Pacer(speed)
        pacer.origin = (time.monotonic(), start_ms)
        wall0 = time.time()
        items = with_faults(simulate(config), Faults(), config.seed)
        counts = asyncio.run(_to_kafka(items, topic, settings, pacer))
        settled, last = time.monotonic(), -1.0
        while time.monotonic() - settled < 3 and time.monotonic() < deadline + 600:
            emitted = _metric(port, "acw_intervals_total")
            if emitted != last:
                settled, last = time.monotonic(), emitted
            time.sleep(0.2)
        records = asyncio.run(_read_json(bootstrap, settings.intervals_topic))
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    from streams.serialization import codec

    decode = codec("acw_interval").decode
    lags = sorted(
        m.timestamp / 1000 - (wall0 + (decode(m.value)["ended_at"] - start_ms) / 1000 / speed) for m in records
    )
    return {
        "input_events_per_s": counts["events"] / seconds,
        "speed": speed,
        "intervals": len(lags),
        "latency_p50_s": lags[len(lags) // 2] if lags else None,
        "latency_p99_s": lags[min(len(lags) - 1, int(len(lags) * 0.99))] if lags else None,
    }


def _median(runs: list[dict[str, Any]], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def _timed(fn: Callable[[], Any], n: int) -> float:
    t = time.perf_counter()
    fn()
    return n / (time.perf_counter() - t)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--agents", type=int, default=20_000)
    parser.add_argument("--duration", default="2.5h")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "peers.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        path = tmp / "sim.jsonl"
        config = SimulationConfig(agents=args.agents, duration_ms=parse_duration(args.duration), start_ms=START_MS)
        n = run_simulation(config, Faults(), Settings(), out=path)["events"]
        print(f"simulated {n:,} events of {args.agents:,} agents", flush=True)
        same_job = Settings(windows=SAME_JOB["windows"], scopes=SAME_JOB["scopes"])
        rules, aggregation = same_job.rules(), same_job.aggregation()
        replay_full = [
            _timed(lambda: replay([path], tmp / "replay", rules, None, aggregation), n) for _ in range(args.runs)
        ]
        replay_only = [
            _timed(lambda: replay([path], tmp / "replay-only", rules, None, aggregation, aggregate=False), n)
            for _ in range(args.runs)
        ]
        expected_intervals = len((tmp / "replay" / "intervals.jsonl").read_bytes().splitlines())
        bound = core_bound.measure(path, same_job, same_job.partitions, args.runs)
        print(
            f"one process at best: decode {bound['decode_us_per_event']:.2f} + core {bound['core_us_per_event']:.2f} "
            f"us/event = {bound['one_process_ceiling_events_per_s']:,.0f}/s",
            flush=True,
        )
        print(
            f"replay: {statistics.median(replay_only):,.0f}/s intervals only, "
            f"{statistics.median(replay_full):,.0f}/s with aggregates",
            flush=True,
        )
        with services.broker(tmp / "kafka") as bootstrap:
            topic = "peers-input"
            settings = Settings(bootstrap_servers=bootstrap, input_topic=topic, input_format="json")
            asyncio.run(create_topics(settings))
            asyncio.run(produce_file(path, topic, settings, "json"))
            bare, ours, ours2, quix = [], [], [], []
            loop1: list[dict[str, float]] = []
            loop2: list[dict[str, float]] = []
            for i in range(args.runs):
                bare.append(asyncio.run(bare_consumer_rate(bootstrap, topic, n, event_from_json)))
                ours.append(run_worker(bootstrap, topic, n, expected_intervals))
                ours2.append(run_worker(bootstrap, topic, n, expected_intervals, processes=2))
                quix.append(run_quix(bootstrap, topic, tmp))
                for processes, loops in ((1, loop1), (2, loop2)):
                    loops.append(split_ceiling.measure(bootstrap, topic, n, expected_intervals, processes, **SAME_JOB))
                print(
                    f"run {i + 1}: bare {bare[-1]:,.0f}/s, ours {ours[-1]['events_per_s']:,.0f}/s "
                    f"({ours[-1]['peak_rss_mb']:.0f} MB), ours with a core process {ours2[-1]['events_per_s']:,.0f}/s "
                    f"({ours2[-1]['peak_rss_mb']:.0f} MB), quix {quix[-1]['events_per_s']:,.0f}/s "
                    f"({quix[-1]['peak_rss_mb']:.0f} MB), minimal loop {loop1[-1]['events_per_s']:,.0f}/s in one "
                    f"process, {loop2[-1]['events_per_s']:,.0f}/s in two",
                    flush=True,
                )
            check = check_quix_outputs(bootstrap, quix[-1]["prefix"], tmp / "replay")
            latency = latency_run(bootstrap, agents=5000, speed=30, seconds=60)  # about 1,000 events/s
            latency2 = latency_run(bootstrap, agents=5000, speed=30, seconds=60, processes=2)
    result = {
        "command": " ".join(["python -m bench.peers", *sys.argv[1:]]),
        "machine": machine(),
        "events": n,
        "agents": args.agents,
        "runs": args.runs,
        "job": {"ACW_WINDOWS": SAME_JOB["windows"], "ACW_SCOPES": SAME_JOB["scopes"]},
        "ours_events_per_s": _median(ours, "events_per_s"),
        "ours_peak_rss_mb": _median(ours, "peak_rss_mb"),
        # ACW_WORKER_PROCESSES=2: the interval stage's cores in a core process (RSS of both together).
        "ours_two_processes_events_per_s": _median(ours2, "events_per_s"),
        "ours_two_processes_peak_rss_mb": _median(ours2, "peak_rss_mb"),
        "bare_consumer_decoding_events_per_s": statistics.median(bare),
        "quix_events_per_s": _median(quix, "events_per_s"),
        "quix_peak_rss_mb": _median(quix, "peak_rss_mb"),
        "replay_events_per_s": statistics.median(replay_only),
        "replay_with_aggregates_events_per_s": statistics.median(replay_full),
        # What bounds the worker's share of the bare consumer (bench/core_bound.py, bench/split_ceiling.py).
        "one_process_ceiling_events_per_s": bound["one_process_ceiling_events_per_s"],
        "decode_us_per_event": bound["decode_us_per_event"],
        "core_us_per_event": bound["core_us_per_event"],
        "minimal_loop_one_process_events_per_s": _median(loop1, "events_per_s"),
        "minimal_loop_two_processes_events_per_s": _median(loop2, "events_per_s"),
        "quix_output_check": check,
        "latency": latency,
        "latency_two_processes": latency2,
        "all_runs": {
            "ours": ours,
            "ours_two_processes": ours2,
            "quix": quix,
            "bare": bare,
            "replay": replay_only,
            "replay_full": replay_full,
            "minimal_loop_one_process": loop1,
            "minimal_loop_two_processes": loop2,
            "core_bound": bound["all_runs"],
        },
    }
    text = orjson.dumps(result, option=orjson.OPT_INDENT_2).decode()
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
