"""The live worker through the real broker gives exactly `acw replay`'s outputs, also across a SIGKILL and a rebalance.

Outputs: intervals, final window aggregates and alert transitions. Traffic timestamps are from
2026-01-01, weeks before any test run, so nothing may depend on wall-clock time.
"""

from __future__ import annotations

import asyncio
import random
import re
import socket
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest

from streams.kafka_io import create_topics, produce_file
from streams.replay import replay
from streams.settings import Settings
from streams.traffic import TrafficShape
from tests.integration.conftest import GARBAGE_REASONS, WorkerProcess, write_traffic
from tests.integration.kafka_helpers import read_records, wait_for

pytestmark = pytest.mark.integration

# ~52,000 events over a day of event time (logins spread over 18 hours), weeks before any test run.
SHAPE = TrafficShape(agents=500, contacts_per_agent=20, stagger_ms=18 * 3_600_000)


def _settings(env: dict[str, str]) -> Settings:
    return Settings.from_env(env)


Outputs = tuple[dict[str, Any], dict[Any, Any], dict[Any, Any]]


def _interval_key(r: dict[str, Any]) -> str:
    return r["interval_id"]


def _aggregate_key(r: dict[str, Any]) -> tuple[str, str, int, int]:
    return (r["scope"], r["key"], r["window_start"], r["window_size_seconds"])


def _alert_key(r: dict[str, Any]) -> tuple[str, str]:
    return (r["alert_id"], r["state"])


def _unique(records: list[dict[str, Any]], key: Any = _interval_key) -> dict[Any, dict[str, Any]]:
    """Index records, asserting that every repeat is identical."""
    out: dict[Any, dict[str, Any]] = {}
    for r in records:
        assert out.setdefault(key(r), r) == r, f"repeated record differs: {key(r)}"
    return out


def _replay_outputs(path: Path, out: Path, settings: Settings) -> Outputs:
    replay([path], out, settings.rules(), aggregation=settings.aggregation())

    def read(name: str) -> list[dict[str, Any]]:
        return [orjson.loads(line) for line in (out / name).read_bytes().splitlines()]

    return (
        _unique(read("intervals.jsonl")),
        _unique(read("aggregates.jsonl"), _aggregate_key),
        _unique(read("alerts.jsonl"), _alert_key),
    )


def _worker_outputs(settings: Settings) -> Outputs:
    finals = [
        r for r in read_records(settings.bootstrap_servers, settings.aggregates_topic, "acw_aggregate") if r["final"]
    ]
    return (
        _unique(_intervals(settings)),
        _unique(finals, _aggregate_key),
        _unique(read_records(settings.bootstrap_servers, settings.alerts_topic, "acw_alert"), _alert_key),
    )


def _wait_for_outputs(settings: Settings, expected: Outputs, kinds: int = 3) -> Outputs:
    """Wait until the worker produced as many distinct records of each kind as replay, then return them.

    `kinds` = 1 compares intervals only.
    """
    expected = expected[:kinds]  # type: ignore[assignment]

    def complete() -> Outputs | None:
        got = _worker_outputs(settings)[:kinds]
        return got if all(len(g) >= len(e) for g, e in zip(got, expected, strict=True)) else None  # type: ignore[return-value]

    try:
        return wait_for(complete, 180, "every interval, final aggregate and alert", poll_s=3)
    except AssertionError:
        _assert_equal(_worker_outputs(settings)[:kinds], expected)  # type: ignore[arg-type]
        raise


def _assert_equal(got: Outputs, expected: Outputs) -> None:
    for name, g, e in zip(("intervals", "final aggregates", "alerts"), got, expected, strict=False):
        assert g.keys() == e.keys(), f"{name}: {len(g.keys() - e.keys())} extra, {len(e.keys() - g.keys())} missing"
        differing = [k for k in e if g[k] != e[k]]
        assert not differing, f"{name}: {len(differing)} differ, e.g. {g[differing[0]]} != {e[differing[0]]}"


def _prepare(env: dict[str, str], tmp_path: Path) -> tuple[Settings, Path, Outputs]:
    settings = _settings(env)
    fmt = settings.input_format
    path = tmp_path / "traffic.jsonl"
    events = write_traffic(path, SHAPE)
    assert len(events) >= 50_000
    expected = _replay_outputs(path, tmp_path / "replay", settings)
    assert all(expected), "replay produced no intervals, aggregates or alerts to compare with"
    asyncio.run(create_topics(settings))
    sent = asyncio.run(produce_file(path, settings.input_topic, settings.bootstrap_servers, fmt))
    assert sent.valid == len(events) and sent.invalid == len(GARBAGE_REASONS)
    return settings, path, expected


def _intervals(settings: Settings) -> list[dict[str, Any]]:
    return read_records(settings.bootstrap_servers, settings.intervals_topic, "acw_interval")


def test_worker_intervals_equal_replay_and_garbage_is_dead_lettered(
    worker_env: dict[str, str], workers: list[WorkerProcess], tmp_path: Path
) -> None:
    worker_env["ACW_INPUT_FORMAT"] = "json"  # so each garbage line keeps the reason replay gives it
    port = _free_port()
    worker_env["ACW_METRICS_PORT"] = str(port)
    settings, _, expected = _prepare(worker_env, tmp_path)
    workers.append(WorkerProcess(worker_env, tmp_path / "worker.log").start())
    _assert_equal(_wait_for_outputs(settings, expected), expected)

    def dead_letters() -> list[dict[str, Any]] | None:
        d = read_records(settings.bootstrap_servers, settings.dead_letter_topic, "dead_letter")
        return d if len(d) >= len(GARBAGE_REASONS) else None

    dead = wait_for(dead_letters, 60, "dead letters")
    assert sorted(d["reason"] for d in dead) == GARBAGE_REASONS
    replay_dead = [orjson.loads(x) for x in (tmp_path / "replay" / "dead-letter.jsonl").read_bytes().splitlines()]
    assert sorted(d["reason"] for d in replay_dead) == GARBAGE_REASONS
    assert all(d["value"] and d["source_offset"] >= 0 for d in dead)
    counted = wait_for(lambda: _dead_letter_metrics(port), 30, "dead letters counted in /metrics")
    assert counted == Counter(GARBAGE_REASONS)


def _dead_letter_metrics(port: int) -> Counter[str] | None:
    """acw_dead_letters_total by reason from a worker's /metrics (None until every dead letter is counted)."""
    try:
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read().decode()
    except OSError:
        return None
    counts: Counter[str] = Counter()
    for line in body.splitlines():
        if line.startswith("acw_dead_letters_total{"):
            reason = line.split('reason="', 1)[1].split('"', 1)[0]
            counts[reason] = int(float(line.rsplit(" ", 1)[1]))
    return counts if sum(counts.values()) >= len(GARBAGE_REASONS) else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("kinds", [pytest.param(1, id="intervals"), pytest.param(3, id="aggregates-and-alerts")])
def test_worker_killed_mid_stream_and_restarted_misses_nothing(
    worker_env: dict[str, str], workers: list[WorkerProcess], tmp_path: Path, kinds: int
) -> None:
    settings, _, expected = _prepare(worker_env, tmp_path)
    first = WorkerProcess(worker_env, tmp_path / "worker-1.log").start()
    workers.append(first)
    target = int(len(expected[0]) * random.uniform(0.2, 0.6))
    wait_for(lambda: len(_intervals(settings)) >= target, 240, f"{target} intervals before the kill", poll_s=0.5)
    first.kill()
    before = len(_intervals(settings))
    assert before < len(expected[0]), "the worker finished before it could be killed mid-stream"
    workers.append(WorkerProcess(worker_env, tmp_path / "worker-2.log").start())
    _assert_equal(_wait_for_outputs(settings, expected, kinds), expected)


def test_a_second_worker_joins_and_the_first_leaves_mid_stream_and_nothing_changes(
    worker_env: dict[str, str], workers: list[WorkerProcess], tmp_path: Path
) -> None:
    """Two workers share the partitions, then the first leaves: every output equals replay's."""
    settings, _, expected = _prepare(worker_env, tmp_path)
    first = WorkerProcess({**worker_env, "ACW_DATA_DIR": str(tmp_path / "a")}, tmp_path / "a.log").start()
    workers.append(first)
    wait_for(
        lambda: len(_intervals(settings)) >= len(expected[0]) // 10,
        240,
        "the first worker to be mid-stream",
        poll_s=0.2,
    )
    second_env = {**worker_env, "ACW_DATA_DIR": str(tmp_path / "b"), "ACW_LOG_LEVEL": "INFO"}
    workers.append(WorkerProcess(second_env, tmp_path / "b.log").start())
    assigned = re.compile(r"acw-intervals: assigned partitions \[\d")
    wait_for(
        lambda: assigned.search((tmp_path / "b.log").read_text(errors="replace")),
        180,
        "the second worker to be assigned partitions",
    )
    first.stop()
    assert len(_intervals(settings)) < len(expected[0]), "the stream ended before the first worker left"
    _assert_equal(_wait_for_outputs(settings, expected), expected)


def test_committed_offset_ahead_of_state_is_caught_up(
    worker_env: dict[str, str], workers: list[WorkerProcess], tmp_path: Path
) -> None:
    """Faust acks the records it skips around rebalances, so it can commit offsets the worker never applied.

    The offsets stored with the state win: partition 1 is committed to its end, so no record of it is
    ever delivered (only the periodic reconcile finds it); partition 2 is committed mid-way, so its
    first delivery starts past the state.
    """
    from aiokafka import AIOKafkaConsumer, TopicPartition
    from aiokafka.structs import OffsetAndMetadata

    settings, _, expected = _prepare(worker_env, tmp_path)

    async def commit_ahead() -> int:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=settings.bootstrap_servers, group_id=settings.app_id, enable_auto_commit=False
        )
        await consumer.start()
        try:
            ends = TopicPartition(settings.input_topic, 1), TopicPartition(settings.input_topic, 2)
            consumer.assign(list(ends))
            end = (await consumer.end_offsets([ends[0]]))[ends[0]]
            await consumer.commit({ends[0]: OffsetAndMetadata(end, ""), ends[1]: OffsetAndMetadata(3000, "")})
            return int(end)
        finally:
            await consumer.stop()

    end = asyncio.run(commit_ahead())
    workers.append(WorkerProcess(worker_env, tmp_path / "worker.log").start())
    _assert_equal(_wait_for_outputs(settings, expected), expected)
    logged = (tmp_path / "worker.log").read_text(errors="replace")
    assert f"{settings.input_topic}:1 continues at offset {end}, past its state: catching up from 0" in logged
    assert f"{settings.input_topic}:2 continues at offset 3000, past its state: catching up from 0" in logged
