"""`acw topics verify`, `acw consume` and `acw redrive` against the real broker."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from streams.kafka_io import produce_file
from streams.settings import Settings
from streams.topic_admin import create_topics
from streams.traffic import TrafficShape
from tests.integration.conftest import ROOT, WorkerProcess, write_traffic
from tests.integration.kafka_helpers import committed_to_end, read_records, wait_for
from tests.integration.outputs import assert_equal, replay_outputs, unique

pytestmark = pytest.mark.integration

SHAPE = TrafficShape(agents=60, contacts_per_agent=8, stagger_ms=3 * 3_600_000)


def acw(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """`acw ARGS` as a user runs it, with these settings."""
    return subprocess.run(
        [sys.executable, "-m", "streams.cli", *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=180
    )


def test_verify_passes_on_created_topics_and_names_every_difference_otherwise(worker_env: dict[str, str]) -> None:
    settings = Settings.from_env(worker_env)

    async def make_a_wrong_aggregates_topic() -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
        await admin.start()
        try:
            topic = NewTopic(settings.aggregates_topic, 2, 1, topic_configs={"cleanup.policy": "compact"})
            await admin.create_topics([topic])
        finally:
            await admin.close()

    before = acw(worker_env, "topics", "verify")
    assert before.returncode == 1 and f"{settings.intervals_topic}: missing" in before.stdout
    asyncio.run(make_a_wrong_aggregates_topic())
    assert acw(worker_env, "topics", "create").returncode == 0
    after = acw(worker_env, "topics", "verify")
    assert after.returncode == 1, after.stdout
    lines = after.stdout.splitlines()
    assert f"{settings.aggregates_topic}: 2 partitions, needs 6 (ACW_PARTITIONS; co-partitioning)" in lines
    assert f"{settings.aggregates_topic}: cleanup.policy=compact, needs compact,delete" in lines
    assert all(line.startswith(settings.aggregates_topic) for line in lines), after.stdout
    wider = {**worker_env, "ACW_PARTITIONS": "8"}
    mismatch = acw(wider, "topics", "verify")
    assert mismatch.returncode == 1
    assert f"{settings.input_topic}: 6 partitions, needs 8 (ACW_PARTITIONS; an agent's events" in mismatch.stdout


def test_redrive_after_a_fix_gives_exactly_replays_outputs_and_a_second_run_sends_nothing(
    worker_env: dict[str, str], workers: list[WorkerProcess], tmp_path: Path
) -> None:
    path = tmp_path / "traffic.jsonl"
    events = write_traffic(path, SHAPE, garbage=False)
    avro = {**worker_env, "ACW_INPUT_FORMAT": "avro"}
    settings = Settings.from_env(avro)
    expected = replay_outputs(path, tmp_path / "replay", settings)
    asyncio.run(create_topics(settings))
    assert asyncio.run(produce_file(path, settings.input_topic, settings, "avro")).valid == len(events)
    # The mistake: a worker told its input is JSON dead-letters every Avro record as unparseable.
    wrong = WorkerProcess({**worker_env, "ACW_INPUT_FORMAT": "json"}, tmp_path / "wrong.log").start()
    workers.append(wrong)

    def dead_letters() -> list[dict[str, Any]] | None:
        d = read_records(settings.bootstrap_servers, settings.dead_letter_topic, "dead_letter")
        return d if len(d) >= len(events) else None

    dead = wait_for(dead_letters, 120, "every record dead-lettered")
    assert {d["reason"] for d in dead} == {"unparseable"} and len(dead) == len(events)
    # Stopped once it committed past them: the fixed worker must not read them from the input again.
    wait_for(
        lambda: committed_to_end(settings.bootstrap_servers, settings.app_id, settings.input_topic),
        90,
        "the wrong worker committed its input",
    )
    wrong.stop()
    # The fix, then the redrive: the same consumer group carries on after the dead-lettered offsets.
    workers.append(WorkerProcess(avro, tmp_path / "fixed.log").start())
    first = acw(avro, "redrive", "--reason", "unparseable", "--reason", "late")
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == f"re-sent {len(events):,} unparseable; passed over none"

    def intervals() -> dict[str, Any] | None:
        got = unique(read_records(settings.bootstrap_servers, settings.intervals_topic, "acw_interval"))
        return got if len(got) >= len(expected[0]) else None

    assert_equal((wait_for(intervals, 180, "the re-sent events' intervals", poll_s=2),), expected[:1])
    second = acw(avro, "redrive", "--reason", "unparseable")
    assert second.returncode == 0 and second.stdout.strip() == "re-sent nothing; passed over none"

    shown = acw(avro, "consume", settings.intervals_topic, "--from-beginning", "--to-end", "--json")
    assert shown.returncode == 0, shown.stderr
    records = [orjson.loads(line) for line in shown.stdout.splitlines()]
    assert unique([r["value"] for r in records]) == expected[0]
    assert all(r["timestamp"] == r["value"]["ended_at"] and r["key"] == r["value"]["agent_id"] for r in records)
    assert {r["headers"]["acw-schema"] for r in records} == {"io.acwstreams.v1.AcwInterval"}
    limited = acw(avro, "consume", settings.dead_letter_topic, "--from-beginning", "--limit", "3")
    assert limited.returncode == 0 and len(limited.stdout.splitlines()) == 3
    assert all('"reason":"unparseable"' in line for line in limited.stdout.splitlines())
