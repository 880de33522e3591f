"""The fastest any one-process worker could be on a job: decoding each record and offering it to the core, nothing else.

    .venv/bin/python -m bench.core_bound FILE [--windows 15m] [--scopes TEAM] [--partitions 6] [--runs 3]

Reads a JSON Lines file of our events and measures, in process CPU time per event, (1) decoding every line as
the worker's bare-consumer baseline does (`event_from_json`), and (2) offering the decoded events in order to
one `PartitionCore` per input partition (agents placed by Kafka's default partitioner, as `produce_file` keys
them), with change tracking on, as the worker's interval stage runs them; no outputs are routed, encoded or
sent and nothing is checkpointed. A worker that runs in one process spends at least (1) + (2) per event, so
`one_process_ceiling_events_per_s` bounds it from above; bench.peers sets it against the bare consumer.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import orjson

from bench import machine
from streams import gc_tuning
from streams.domain.events import CallEvent
from streams.domain.partition import PartitionCore
from streams.serialization import event_from_json
from streams.settings import Settings
from streams.sources import agent_key
from streams.worker.kafka_sink import murmur2


def _decode(lines: list[bytes]) -> tuple[list[CallEvent], float]:
    start = time.process_time()
    events = [event_from_json(line) for line in lines]
    return events, time.process_time() - start


def _offer(events: list[CallEvent], settings: Settings, partitions: int) -> float:
    rules, aggregation = settings.rules(), settings.aggregation()
    cores = [PartitionCore.new(rules, aggregation) for _ in range(partitions)]
    placed = [cores[(murmur2(agent_key(e)) & 0x7FFFFFFF) % partitions] for e in events]
    start = time.process_time()
    for core, event in zip(placed, events, strict=True):
        core.offer(event)
    for core in cores:
        core.finish()
    return time.process_time() - start


def measure(path: Path, settings: Settings, partitions: int, runs: int) -> dict[str, Any]:
    """Decode and core CPU per event (medians of `runs`), and the one-process ceiling they give."""
    lines = path.read_bytes().splitlines()
    decode_s, core_s = [], []
    with gc_tuning.tuned(settings.gc_threshold):
        for _ in range(runs):
            events, seconds = _decode(lines)
            decode_s.append(seconds)
            core_s.append(_offer(events, settings, partitions))
            del events
    n = len(lines)
    decode_us = 1e6 * statistics.median(decode_s) / n
    core_us = 1e6 * statistics.median(core_s) / n
    return {
        "events": n,
        "partitions": partitions,
        "decode_us_per_event": decode_us,
        "core_us_per_event": core_us,
        "one_process_ceiling_events_per_s": 1e6 / (decode_us + core_us),
        "all_runs": {"decode_s": decode_s, "core_s": core_s},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("file", type=Path)
    parser.add_argument("--windows", default="15m")
    parser.add_argument("--scopes", default="TEAM")
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    result = {
        "machine": machine(),
        **measure(args.file, Settings(windows=args.windows, scopes=args.scopes), args.partitions, args.runs),
    }
    print(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
