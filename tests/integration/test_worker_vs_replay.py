"""The live worker through the real broker gives exactly `acw replay`'s intervals, also across a SIGKILL."""

from __future__ import annotations

import asyncio
import random
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

SHAPE = TrafficShape(agents=500, contacts_per_agent=20)  # ~52,000 events


def _settings(env: dict[str, str]) -> Settings:
    return Settings.from_env(env)


def _replay_intervals(path: Path, out: Path, settings: Settings) -> dict[str, dict[str, Any]]:
    replay([path], out, settings.rules())
    lines = (out / "intervals.jsonl").read_bytes().splitlines()
    return {r["interval_id"]: r for r in map(orjson.loads, lines)}


def _unique(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Index by interval_id, asserting that every repeat is identical."""
    out: dict[str, dict[str, Any]] = {}
    for r in records:
        assert out.setdefault(r["interval_id"], r) == r, f"repeated interval differs: {r['interval_id']}"
    return out


def _prepare(env: dict[str, str], tmp_path: Path) -> tuple[Settings, Path, dict[str, dict[str, Any]]]:
    settings = _settings(env)
    fmt = settings.input_format
    path = tmp_path / "traffic.jsonl"
    events = write_traffic(path, SHAPE)
    assert len(events) >= 50_000
    expected = _replay_intervals(path, tmp_path / "replay", settings)
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
    settings, _, expected = _prepare(worker_env, tmp_path)
    workers.append(WorkerProcess(worker_env, tmp_path / "worker.log").start())
    wait_for(lambda: len(_unique(_intervals(settings))) >= len(expected), 240, "all intervals", poll_s=2)
    got = _unique(_intervals(settings))
    assert got == expected

    def dead_letters() -> list[dict[str, Any]] | None:
        d = read_records(settings.bootstrap_servers, settings.dead_letter_topic, "dead_letter")
        return d if len(d) >= len(GARBAGE_REASONS) else None

    dead = wait_for(dead_letters, 60, "dead letters")
    assert sorted(d["reason"] for d in dead) == GARBAGE_REASONS
    replay_dead = [orjson.loads(x) for x in (tmp_path / "replay" / "dead-letter.jsonl").read_bytes().splitlines()]
    assert sorted(d["reason"] for d in replay_dead) == GARBAGE_REASONS
    assert all(d["value"] and d["source_offset"] >= 0 for d in dead)


def test_worker_killed_mid_stream_and_restarted_misses_nothing(
    worker_env: dict[str, str], workers: list[WorkerProcess], tmp_path: Path
) -> None:
    settings, _, expected = _prepare(worker_env, tmp_path)
    first = WorkerProcess(worker_env, tmp_path / "worker-1.log").start()
    workers.append(first)
    target = int(len(expected) * random.uniform(0.2, 0.6))
    wait_for(lambda: len(_intervals(settings)) >= target, 240, f"{target} intervals before the kill", poll_s=0.5)
    first.kill()
    before = len(_intervals(settings))
    assert before < len(expected), "the worker finished before it could be killed mid-stream"
    workers.append(WorkerProcess(worker_env, tmp_path / "worker-2.log").start())
    wait_for(
        lambda: len(_unique(_intervals(settings))) >= len(expected),
        240,
        "all intervals after restart",
        poll_s=2,
    )
    got = _unique(_intervals(settings))
    assert got == expected


def test_second_worker_joining_mid_stream_changes_nothing(
    worker_env: dict[str, str], workers: list[WorkerProcess], tmp_path: Path
) -> None:
    settings, _, expected = _prepare(worker_env, tmp_path)
    workers.append(WorkerProcess({**worker_env, "ACW_DATA_DIR": str(tmp_path / "a")}, tmp_path / "a.log").start())
    wait_for(
        lambda: len(_intervals(settings)) >= len(expected) // 10, 240, "the first worker to be mid-stream", poll_s=0.2
    )
    workers.append(WorkerProcess({**worker_env, "ACW_DATA_DIR": str(tmp_path / "b")}, tmp_path / "b.log").start())
    wait_for(lambda: len(_unique(_intervals(settings))) >= len(expected), 240, "all intervals", poll_s=2)
    assert _unique(_intervals(settings)) == expected


def test_committed_offset_ahead_of_state_is_caught_up(
    worker_env: dict[str, str], workers: list[WorkerProcess], tmp_path: Path
) -> None:
    """Faust can commit offsets the worker never acknowledged; the offsets stored with the state win."""
    from aiokafka import AIOKafkaConsumer, TopicPartition
    from aiokafka.structs import OffsetAndMetadata

    settings, _, expected = _prepare(worker_env, tmp_path)

    async def commit_ahead() -> None:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=settings.bootstrap_servers, group_id=settings.app_id, enable_auto_commit=False
        )
        await consumer.start()
        try:
            tp = TopicPartition(settings.input_topic, 1)
            consumer.assign([tp])
            await consumer.commit({tp: OffsetAndMetadata(3000, "")})
        finally:
            await consumer.stop()

    asyncio.run(commit_ahead())
    workers.append(WorkerProcess(worker_env, tmp_path / "worker.log").start())
    wait_for(lambda: len(_unique(_intervals(settings))) >= len(expected), 240, "all intervals", poll_s=2)
    assert _unique(_intervals(settings)) == expected
    assert "catching up from 0" in (tmp_path / "worker.log").read_text(errors="replace")
