"""The ceiling of a Faust agent on this machine: a noack agent that only counts events (no decode, no work).

    python -m bench.faust_ceiling BOOTSTRAP TOPIC N RESULT_FILE

Run by bench.bench as a same-run baseline for the worker; writes events/s to RESULT_FILE and exits.
"""

from __future__ import annotations

import os
import sys
import time

import faust


def main() -> None:
    bootstrap, topic_name, n, result_file = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    app = faust.App(
        f"faust-ceiling-{time.time_ns()}",
        broker=f"kafka://{bootstrap}",
        web_enabled=False,
        store="memory://",
        consumer_auto_offset_reset="earliest",
        stream_wait_empty=False,
        stream_buffer_maxsize=65536,
        broker_max_poll_records=5000,
        datadir=os.environ.get("TMPDIR", "/tmp") + "/faust-ceiling",
    )
    topic = app.topic(topic_name, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw")
    state: dict[str, float] = {"n": 0, "t0": 0.0}

    @app.agent(topic)
    async def count(stream: faust.StreamT) -> None:
        async for _ in stream.noack().events():
            if not state["n"]:
                state["t0"] = time.monotonic()
            state["n"] += 1
            if state["n"] >= n:
                with open(result_file, "w") as f:
                    f.write(f"{n / (time.monotonic() - state['t0'])}\n")
                os._exit(0)

    faust.Worker(app, loglevel="ERROR", quiet=True).execute_from_commandline()


if __name__ == "__main__":
    main()
