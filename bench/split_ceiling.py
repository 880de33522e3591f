"""How fast a worker could be with its core in a second process: a minimal loop on a real broker, one and two processes.

    .venv/bin/python -m bench.split_ceiling BOOTSTRAP TOPIC EVENTS INTERVALS [--processes 1|2] [--runs 3]
        [--windows 15m] [--scopes TEAM] [--encode-in child|parent]

Reads every record of TOPIC (JSON `CallEvent`s keyed by agent, as bench.peers loads them) with a plain aiokafka
consumer, in batches of up to 4,096. With `--processes 1` the loop decodes each batch, offers it to one
`PartitionCore` per partition and sends the Avro intervals in record batches, all in one process. With
`--processes 2` a forked child decodes, runs the cores and encodes: the parent hands it each batch's raw values
through a pipe without waiting and sends the encoded intervals that come back, so fetching and sending overlap
decoding and the core. events/s run from the first fetch to the last interval acknowledged by the broker
(acks=all); each run is a fresh interpreter when `measure` starts it, and reports each process's peak RSS.
`--encode-in parent` leaves the child only decoding and the cores: it returns the intervals as plain records
(dicts) and the parent encodes them, which moves the Avro encoding to the side with CPU to spare.

What the loop leaves out, so that it bounds a real worker from above: Faust (group membership, its fetcher
thread), checkpoints and their changelogs, metrics, dead letters, the panes topic and the merge stage, live
agent state. The peers job's team windows are counted in the core (their panes are built) but not sent.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import pickle
import statistics
import subprocess
import sys
import threading
import time
import uuid
from multiprocessing import get_context
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from bench import machine
from streams import gc_tuning
from streams.domain.partition import PartitionCore
from streams.outputs import apply_event
from streams.serialization import codec, event_from_json
from streams.settings import Settings
from streams.topics import outputs as output_specs
from streams.worker.kafka_sink import murmur2

ROOT = Path(__file__).resolve().parents[1]
BATCH = 4096
Interval = tuple[bytes, Any, int]  # key, Avro value (or the plain record, to encode), timestamp


class _Intervals:
    """An output sink that keeps only the intervals: encoded as the worker encodes them, or as plain records."""

    def __init__(self, encode: Any | None) -> None:
        self.encode = encode
        self.records: list[Interval] = []

    def interval(self, interval: Any) -> None:
        record = interval.to_record()
        value = record if self.encode is None else self.encode(record)
        self.records.append((interval.agent_id.encode(), value, record["ended_at"]))

    def alert(self, *_: Any) -> None: ...
    def aggregate(self, *_: Any) -> None: ...
    def pane(self, *_: Any) -> None: ...
    def progress(self, *_: Any) -> None: ...
    def rejected(self, *_: Any) -> None: ...
    def dead_letter(self, *_: Any) -> None: ...


class _Cores:
    """One core per partition; a batch of raw values in, its intervals out (encoded unless `encode` is False)."""

    def __init__(self, settings: Settings, encode: bool = True) -> None:
        self.rules, self.aggregation = settings.rules(), settings.aggregation()
        self.encode = _encoder(settings) if encode else None
        self.cores: dict[int, PartitionCore] = {}

    def apply(self, partition: int, values: list[bytes]) -> list[Interval]:
        core = self.cores.get(partition)
        if core is None:
            core = self.cores[partition] = PartitionCore.new(self.rules, self.aggregation)
        sink = _Intervals(self.encode)
        for value in values:
            apply_event(core, event_from_json(value), sink, None)
        return sink.records


def _encoder(settings: Settings) -> Any:
    return codec(output_specs(settings)["intervals"].schema).encode


def _child(inbox: Connection, outbox: Connection, settings: Settings, encode: bool) -> None:
    gc_tuning.tune(settings.gc_threshold)
    cores = _Cores(settings, encode)
    while (message := pickle.loads(inbox.recv_bytes())) is not None:
        outbox.send_bytes(pickle.dumps([cores.apply(p, values) for p, values in message], protocol=5))


class _Sender:
    """Intervals to the output topic in record batches per partition, as the worker's sink sends them."""

    def __init__(self, producer: AIOKafkaProducer, topic: str, partitions: int) -> None:
        self.producer, self.topic, self.partitions = producer, topic, partitions
        self.sent = 0
        self.tasks: list[asyncio.Future[Any]] = []

    def send(self, batches: list[list[Interval]]) -> None:
        builders: dict[int, Any] = {}
        for records in batches:
            for key, value, timestamp in records:
                p = (murmur2(key) & 0x7FFFFFFF) % self.partitions
                builder = builders.get(p)
                if builder is None:
                    builder = builders[p] = self.producer.create_batch()
                if builder.append(key=key, value=value, timestamp=timestamp) is None:
                    self._flush(builder, p)
                    builder = builders[p] = self.producer.create_batch()
                    builder.append(key=key, value=value, timestamp=timestamp)
            self.sent += len(records)
        for p, builder in builders.items():
            self._flush(builder, p)

    def _flush(self, builder: Any, partition: int) -> None:
        self.tasks.append(asyncio.ensure_future(self.producer.send_batch(builder, self.topic, partition=partition)))

    async def settle(self, keep: int = 0) -> None:
        """Wait until at most `keep` batches are still being handed to the producer, then for their delivery."""
        if len(self.tasks) > keep:
            tasks, self.tasks = self.tasks, []
            await asyncio.gather(*await asyncio.gather(*tasks))


async def run(
    bootstrap: str,
    topic: str,
    events: int,
    intervals: int,
    processes: int,
    settings: Settings,
    encode_in: str = "child",
) -> dict[str, float]:
    """One pass over the topic with `settings`' job; events/s and each process's peak RSS."""
    out_topic = f"split-ceiling-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        partitions = len((await admin.describe_topics([topic]))[0]["partitions"])
        await admin.create_topics([NewTopic(out_topic, partitions, 1)])
    finally:
        await admin.close()
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None)
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=10, max_batch_size=262144, compression_type="zstd"
    )
    await consumer.start()
    await producer.start()
    sender = _Sender(producer, out_topic, partitions)
    loop = asyncio.get_running_loop()
    child = None
    try:
        if processes == 2:
            ctx = get_context("fork")
            inbox_r, inbox_w = ctx.Pipe(duplex=False)
            outbox_r, outbox_w = ctx.Pipe(duplex=False)
            child = ctx.Process(target=_child, args=(inbox_r, outbox_w, settings, encode_in == "child"), daemon=True)
            child.start()
            results: asyncio.Queue[bytes] = asyncio.Queue()

            def read() -> None:  # the pipe is read in a thread, so a full pipe never blocks the loop
                try:
                    while True:
                        loop.call_soon_threadsafe(results.put_nowait, outbox_r.recv_bytes())
                except (EOFError, OSError):
                    loop.call_soon_threadsafe(results.put_nowait, b"")  # the child is gone

            threading.Thread(target=read, daemon=True).start()

            encode = _encoder(settings)

            async def forward() -> None:
                while sender.sent < intervals:
                    data = await results.get()
                    if not data:
                        raise RuntimeError(f"the child stopped after {sender.sent} intervals of {intervals}")
                    batches = pickle.loads(data)
                    if encode_in == "parent":
                        batches = [[(key, encode(r), ts) for key, r, ts in records] for records in batches]
                    sender.send(batches)

            forwarding = asyncio.ensure_future(forward())
        else:
            cores = _Cores(settings)
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        gc_tuning.tune(settings.gc_threshold)
        seen = 0
        start = time.perf_counter()
        while seen < events:
            fetched = await consumer.getmany(timeout_ms=1000, max_records=BATCH)
            batch = [(tp.partition, [r.value for r in records]) for tp, records in fetched.items()]
            seen += sum(len(values) for _, values in batch)
            if processes == 2:
                await loop.run_in_executor(None, inbox_w.send_bytes, pickle.dumps(batch, protocol=5))
            else:
                sender.send([cores.apply(p, values) for p, values in batch])
                await sender.settle(keep=64)
        if processes == 2:
            await forwarding
        await sender.settle()
        seconds = time.perf_counter() - start
        if sender.sent != intervals:
            raise RuntimeError(f"{sender.sent} intervals, expected {intervals}")
        return {
            "events_per_s": events / seconds,
            "peak_rss_mb": _peak_rss_mb(os.getpid()),
            "child_peak_rss_mb": _peak_rss_mb(child.pid) if child is not None else 0.0,
        }
    finally:
        if child is not None:
            inbox_w.send_bytes(pickle.dumps(None))
            child.join(timeout=30)
        await consumer.stop()
        await producer.stop()


def _peak_rss_mb(pid: int) -> float:
    """A process's peak resident memory so far (VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def measure(
    bootstrap: str,
    topic: str,
    events: int,
    intervals: int,
    processes: int,
    windows: str,
    scopes: str,
    encode_in: str = "child",
) -> dict[str, float]:
    """One `run` in a fresh interpreter (as a worker starts), so that its memory is the loop's alone."""
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.split_ceiling",
            bootstrap,
            topic,
            str(events),
            str(intervals),
            "--processes",
            str(processes),
            "--runs",
            "1",
            "--windows",
            windows,
            "--scopes",
            scopes,
            "--encode-in",
            encode_in,
        ],
        cwd=ROOT,
        capture_output=True,
        check=True,
        timeout=1800,
    )
    run: dict[str, float] = orjson.loads(out.stdout)["all_runs"][0]
    return run


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("bootstrap")
    parser.add_argument("topic")
    parser.add_argument("events", type=int)
    parser.add_argument("intervals", type=int)
    parser.add_argument("--processes", type=int, choices=(1, 2), default=2)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--windows", default="15m", help="ACW_WINDOWS of the job (default: the peers job's)")
    parser.add_argument("--scopes", default="TEAM", help="ACW_SCOPES of the job (default: the peers job's)")
    parser.add_argument(
        "--encode-in", choices=("child", "parent"), default="child", help="which process encodes the intervals"
    )
    args = parser.parse_args()
    settings = Settings(windows=args.windows, scopes=args.scopes)
    runs = [
        asyncio.run(
            run(args.bootstrap, args.topic, args.events, args.intervals, args.processes, settings, args.encode_in)
        )
        for _ in range(args.runs)
    ]
    result = {
        "machine": machine(),
        "processes": args.processes,
        "encode_in": args.encode_in,
        "job": {"ACW_WINDOWS": args.windows, "ACW_SCOPES": args.scopes},
        "events_per_s": statistics.median(r["events_per_s"] for r in runs),
        "all_runs": runs,
    }
    print(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
