"""Bytes the interval stage's checkpoints write: one partition's core, checkpointed every N events like the worker.

    .venv/bin/python bench/checkpoint_bytes.py FILE [--events 500000] [--every 50000]
    PYTHONPATH=/tmp/base .venv/bin/python bench/checkpoint_bytes.py FILE ...   # the same for another checkout

FILE is JSON Lines of CallEvents (e.g. `acw simulate --agents 20000 --duration 2.5h --speed 0 --out FILE`). The
first `--events` events go through one `PartitionCore` with the default job; every `--every` events the update
records are taken and then the dirty entries, as `streams/worker/stage.py` does, and their JSON is measured.
Prints the total and the largest checkpoint, and the seconds spent taking and encoding the entries.
"""

from __future__ import annotations

import argparse
import itertools
import time
from pathlib import Path

import orjson

from streams.domain.partition import PartitionCore
from streams.settings import Settings
from streams.sources.callevent import CallEventSource
from streams.sources.intake import Intake


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("file", type=Path)
    parser.add_argument("--events", type=int, default=500_000)
    parser.add_argument("--every", type=int, default=50_000)
    args = parser.parse_args()
    settings = Settings()
    intake = Intake(CallEventSource("json"))
    now_ms = int(time.time() * 1000)
    with open(args.file, "rb") as f:
        events = [e for line in itertools.islice(f, args.events) for e in intake.read(line, now_ms).events]
    core = PartitionCore.new(settings.rules(), settings.aggregation())
    total = largest = checkpoints = 0
    spent = 0.0
    for i, event in enumerate(events, 1):
        core.offer(event)
        if i % args.every == 0:
            core.take_updates()
            core.take_window_updates()
            started = time.perf_counter()
            size = sum(len(orjson.dumps(v)) for v in core.take_dirty().values() if v is not None)
            spent += time.perf_counter() - started
            total, largest, checkpoints = total + size, max(largest, size), checkpoints + 1
    print(
        f"{len(events):,} events, {checkpoints} checkpoints: {total / 1e6:.1f} MB of entries in all, "
        f"largest {largest / 1e6:.1f} MB, {spent:.2f} s taking and encoding them"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
