"""Faults through the real broker: SIGKILLs, a broker outage, scale-out and a lost local store.

After each, the worker's final intervals, aggregates and alerts equal `acw replay`'s: nothing missing,
and every repeated record identical to the first.
"""

from __future__ import annotations

import random
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from streams.traffic import TrafficShape
from tests.integration.conftest import BROKER, WorkerProcess
from tests.integration.kafka_helpers import topic_size, wait_for
from tests.integration.outputs import assert_equal, free_port, intervals, prepare, scrape, unique, wait_for_outputs

pytestmark = pytest.mark.integration

# ~208,000 events over a day of event time.
BIG = TrafficShape(agents=2000, contacts_per_agent=20, stagger_ms=18 * 3_600_000)


def test_worker_killed_at_three_random_points_of_a_200k_stream_misses_nothing(
    worker_env: dict[str, str], workers: list[WorkerProcess], tmp_path: Path
) -> None:
    settings, _, expected = prepare(worker_env, tmp_path, BIG)
    n = len(expected[0])
    points = sorted(random.sample(range(n // 10, n * 8 // 10), 3))
    worker = WorkerProcess(worker_env, tmp_path / "worker-1.log").start()
    workers.append(worker)
    for i, target in enumerate(points, start=1):
        wait_for(
            lambda target=target: topic_size(settings.bootstrap_servers, settings.intervals_topic) >= target,
            300,
            f"{target} interval records before kill {i}",
            poll_s=0.5,
        )
        worker.kill()
        assert len(unique(intervals(settings))) < n, f"the stream ended before kill {i}"
        worker = WorkerProcess(worker_env, tmp_path / f"worker-{i + 1}.log").start()
        workers.append(worker)
    assert_equal(wait_for_outputs(settings, expected, timeout_s=420), expected)


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A broker this test alone stops and starts; yields its bootstrap address and its directory."""
    run_dir = tmp_path / "broker"
    out = subprocess.run(
        [str(BROKER), "start", "--port", "0", "--dir", str(run_dir)], check=True, capture_output=True, text=True
    )
    try:
        yield out.stdout.strip().splitlines()[-1], run_dir
    finally:
        subprocess.run([str(BROKER), "stop", "--dir", str(run_dir)], check=False)


def test_broker_stopped_for_30_seconds_mid_stream_is_survived_and_reported(
    own_broker: tuple[str, Path], worker_env: dict[str, str], workers: list[WorkerProcess], tmp_path: Path
) -> None:
    bootstrap, broker_dir = own_broker
    port = free_port()
    env = {**worker_env, "ACW_BOOTSTRAP_SERVERS": bootstrap, "ACW_METRICS_PORT": str(port)}
    settings, _, expected = prepare(env, tmp_path)
    log = tmp_path / "worker.log"
    workers.append(WorkerProcess(env, log).start())
    wait_for(
        lambda: topic_size(bootstrap, settings.intervals_topic) >= len(expected[0]) // 5,
        240,
        "the worker to be mid-stream",
        poll_s=0.2,
    )
    subprocess.run([str(BROKER), "stop", "--dir", str(broker_dir)], check=True, capture_output=True)
    stopped = time.monotonic()
    assert topic_size_or_none(bootstrap, settings.intervals_topic) is None, "the broker still answers"
    wait_for(lambda: (scrape(port) or {}).get("acw_broker_up") == 0, 30, "acw_broker_up to fall to 0")
    wait_for(lambda: "broker unreachable" in log.read_text(errors="replace"), 10, "the outage in the worker log")
    time.sleep(max(0.0, 30 - (time.monotonic() - stopped)))  # the fault itself: the outage lasts 30 s
    subprocess.run([str(BROKER), "resume", "--dir", str(broker_dir)], check=True, capture_output=True)
    assert_equal(wait_for_outputs(settings, expected), expected)
    metrics = wait_for(lambda: (m := scrape(port)) and m.get("acw_broker_up") == 1 and m, 30, "acw_broker_up 1")
    assert metrics["acw_broker_outages_total"] == 1
    assert "broker reachable again after" in log.read_text(errors="replace")
    assert workers[0].proc is not None and workers[0].proc.poll() is None, "the worker exited"


def topic_size_or_none(bootstrap: str, topic: str) -> int | None:
    """The topic's size, or None when the broker does not answer within a few seconds."""
    import asyncio

    from tests.integration.kafka_helpers import _size

    try:
        return asyncio.run(asyncio.wait_for(_size(bootstrap, topic), 5))
    except Exception:
        return None
