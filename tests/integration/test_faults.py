"""Faults through the real broker: SIGKILLs, a broker outage, scale-out and a lost local store.

After each, the worker's final intervals, aggregates and alerts equal `acw replay`'s: nothing missing,
and every repeated record identical to the first.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from streams.settings import Settings
from streams.traffic import TrafficShape
from tests.integration.conftest import WorkerProcess
from tests.integration.kafka_helpers import (
    committed_to_end,
    read_topic,
    topic_size,
    topic_size_or_none,
    wait_for,
)
from tests.integration.outputs import assert_equal, intervals, prepare, send, split_file, unique, wait_for_outputs
from tests.support import services
from tests.support.ports import free_port
from tests.support.scrape import scrape
from tests.support.seeds import logged_seed
from tests.support.services import BROKER

pytestmark = pytest.mark.integration

# ~208,000 events over a day of event time.
BIG = TrafficShape(agents=2000, contacts_per_agent=20, stagger_ms=18 * 3_600_000)


@pytest.mark.timeout(900)
def test_worker_killed_at_three_random_points_of_a_200k_stream_misses_nothing(
    worker_env: dict[str, str], workers: list[WorkerProcess], tmp_path: Path
) -> None:
    settings, _, expected = prepare(worker_env, tmp_path, BIG)
    n = len(expected[0])
    seed = logged_seed("kill points")
    points = sorted(random.Random(seed).sample(range(n // 10, n * 8 // 10), 3))
    print(f"kill points {points} of {n} intervals")
    worker = WorkerProcess(worker_env, tmp_path / "worker-1.log").start()
    workers.append(worker)
    for i, target in enumerate(points, start=1):
        wait_for(
            lambda target=target: topic_size(settings.bootstrap_servers, settings.intervals_topic) >= target,
            300,
            f"{target} interval records before kill {i} (seed {seed})",
            poll_s=0.5,
        )
        worker.kill()
        assert len(unique(intervals(settings))) < n, f"the stream ended before kill {i} (seed {seed})"
        worker = WorkerProcess(worker_env, tmp_path / f"worker-{i + 1}.log").start()
        workers.append(worker)
    assert_equal(wait_for_outputs(settings, expected, timeout_s=420), expected)


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A broker this test alone stops and starts; yields its bootstrap address and its directory."""
    run_dir = tmp_path / "broker"
    with services.broker(run_dir) as bootstrap:
        yield bootstrap, run_dir


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


ASSIGNED = re.compile(r"acw-intervals: assigned partitions \[\d")


def _assigned(log: Path) -> bool:
    """The worker was given at least one input partition."""
    return bool(ASSIGNED.search(log.read_text(errors="replace"))) if log.exists() else False


def _joined(log: Path) -> bool:
    """The worker took part in a rebalance (with six partitions, a fourth worker may get only standbys)."""
    return log.exists() and "acw-intervals: assigned partitions [" in log.read_text(errors="replace")


def test_three_workers_scale_out_and_in_mid_stream_and_outputs_equal_replay(
    worker_env: dict[str, str], workers: list[WorkerProcess], tmp_path: Path
) -> None:
    """Three workers share six partitions; a fourth joins, then one of the first leaves, each between stages.

    The stream is sent in three stages, so each membership change happens mid-stream by construction.
    Faust's sticky assignor leaves the fourth worker only standby replicas until the first one leaves;
    then partitions (and their state, recovered from the changelog) move to it.
    """
    settings, path, expected = prepare(worker_env, tmp_path, produce=False)
    stages = split_file(path, 3)

    def start(name: str) -> WorkerProcess:
        env = {**worker_env, "ACW_DATA_DIR": str(tmp_path / name), "ACW_LOG_LEVEL": "INFO"}
        worker = WorkerProcess(env, tmp_path / f"{name}.log").start()
        workers.append(worker)
        return worker

    first = [start(name) for name in ("a", "b", "c")]
    wait_for(lambda: all(_assigned(tmp_path / f"{n}.log") for n in "abc"), 180, "three workers with partitions")
    send(settings, stages[0])
    wait_for(
        lambda: topic_size(settings.bootstrap_servers, settings.intervals_topic) >= len(expected[0]) // 6,
        180,
        "outputs of the first stage",
    )
    start("d")
    wait_for(lambda: _joined(tmp_path / "d.log"), 180, "the fourth worker to join the group")
    send(settings, stages[1])
    first[0].stop()  # the newcomer (with standby replicas) or the others take over its partitions
    wait_for(lambda: _assigned(tmp_path / "d.log"), 180, "partitions to move to the fourth worker")
    send(settings, stages[2])
    assert_equal(wait_for_outputs(settings, expected), expected)
    for name in "bcd":
        assert "Traceback" not in (tmp_path / f"{name}.log").read_text(errors="replace"), (
            f"worker {name} logged an error"
        )


SMALL = TrafficShape(agents=200, contacts_per_agent=20, stagger_ms=18 * 3_600_000)


def _make_stale(stores: list[Path], settings: Settings) -> int:
    """Give each store its changelog's latest meta and Faust's offset of the changelog's end, keeping older entries.

    What a standby that lost the end of a checkpoint batch keeps (docs/benchmarks.md, "Cause found"): a store
    that opens and reads through, whose offset tells Faust it is complete (so Faust reads nothing more), with
    the newest offsets in its meta but entries as an earlier checkpoint left them. Returns the stores changed.
    """
    import rocksdict

    changed = 0
    for store in stores:
        stage, partition = store.stem.rsplit("-state-", 1)
        topic = f"{settings.app_id}-{stage}-state-changelog"
        records = [(k, v) for k, v in read_topic(settings.bootstrap_servers, topic) if k is not None]
        mine = [(k, v) for k, v in records if orjson.loads(k).startswith(f"{partition}|")]
        metas = [v for k, v in mine if orjson.loads(k) == f"{partition}|m" and v is not None]
        if not metas:
            continue
        db = rocksdict.Rdict(str(store), options=rocksdict.Options(raw_mode=True))
        try:
            if db.get(orjson.dumps(f"{partition}|m")) == metas[-1]:
                continue  # the store already holds the last checkpoint
            db[orjson.dumps(f"{partition}|m")] = metas[-1]
            db[b"__faust\0offset__"] = str(len(mine) - 1).encode()  # no compaction yet: offsets are 0..n-1
            changed += 1
        finally:
            db.close()
    return changed


def _damage(stores: list[Path], how: str) -> int:
    """Damage the local stores; returns how many files were damaged (or stores deleted)."""
    damaged = 0
    for store in stores:
        if how == "deleted":
            shutil.rmtree(store)
            damaged += 1
            continue
        for f in store.iterdir():
            if how == "garbage" and f.is_file() and f.name != "LOCK":
                f.write_bytes(os.urandom(max(64, f.stat().st_size)))
                damaged += 1
            elif how == "bad-block" and f.suffix == ".sst" and f.stat().st_size > 64:
                data = bytearray(f.read_bytes())
                middle = len(data) // 2
                data[middle : middle + 8] = bytes(b ^ 0xFF for b in data[middle : middle + 8])
                f.write_bytes(bytes(data))
                damaged += 1
    return damaged


@pytest.mark.parametrize("how", ["deleted", "garbage", "bad-block", "stale"])
def test_a_lost_or_corrupted_local_store_is_rebuilt_from_the_changelog(
    worker_env: dict[str, str], workers: list[WorkerProcess], tmp_path: Path, how: str
) -> None:
    """`bad-block` flips bytes inside the stores' data files: RocksDB opens them, and iterating just stops early,
    so without the check at start the worker would restore less state than it wrote, silently. `stale` leaves
    stores that read through and look complete but hold older entries: only the checkpoint's fingerprint tells."""
    settings, path, expected = prepare(worker_env, tmp_path, SMALL, produce=False)
    stages = split_file(path, 3)

    def run_stage(i: int) -> WorkerProcess:
        send(settings, stages[i])
        worker = WorkerProcess(worker_env, tmp_path / f"worker-{i}.log").start()
        workers.append(worker)
        return worker

    for i in (0, 1):  # the second run recovers the first one's state from the changelog into its local store
        worker = run_stage(i)
        wait_for(
            lambda: committed_to_end(settings.bootstrap_servers, settings.app_id, settings.input_topic),
            90,  # before the worker deduplicated Faust's acknowledgements, commits crawled for minutes here
            f"stage {i} applied, checkpointed and committed",
            poll_s=1,
        )
        worker.stop()
    stores = sorted(Path(worker_env["ACW_DATA_DIR"]).rglob("*.db"))
    assert stores, "the worker left no local store to damage"
    assert (_make_stale(stores, settings) if how == "stale" else _damage(stores, how)) > 0
    run_stage(2)
    assert_equal(wait_for_outputs(settings, expected), expected)
    logged = (tmp_path / "worker-2.log").read_text(errors="replace")
    if how == "stale":
        assert "disagrees with its checkpoint" in logged and "reading the changelog instead" in logged
    else:  # Faust rebuilt the stores from the changelog: each matches its checkpoint's fingerprint
        assert "disagrees with its checkpoint" not in logged
    if how not in ("deleted", "stale"):
        assert "is unreadable" in logged and "rebuild it from its changelog" in logged
