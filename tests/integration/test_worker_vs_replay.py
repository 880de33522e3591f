"""The live worker through the real broker gives exactly `acw replay`'s outputs, also across a SIGKILL and a rebalance.

Outputs: intervals, final window aggregates and alert transitions. Traffic timestamps are from
2026-01-01, weeks before any test run, so nothing may depend on wall-clock time.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest

from streams.traffic import T_START_MS
from tests.integration.conftest import GARBAGE_REASONS, WorkerProcess
from tests.integration.kafka_helpers import read_records, wait_for
from tests.integration.outputs import assert_equal, intervals, prepare, send, split_file, wait_for_outputs
from tests.support.ports import free_port
from tests.support.scrape import by_label, scrape

pytestmark = pytest.mark.integration


def test_worker_intervals_equal_replay_and_garbage_is_dead_lettered(
    worker_env: dict[str, str], workers: list[WorkerProcess], tmp_path: Path
) -> None:
    worker_env["ACW_INPUT_FORMAT"] = "json"  # so each garbage line keeps the reason replay gives it
    port = free_port()
    worker_env["ACW_METRICS_PORT"] = str(port)
    settings, _, expected = prepare(worker_env, tmp_path)
    workers.append(WorkerProcess(worker_env, tmp_path / "worker.log").start())
    assert_equal(wait_for_outputs(settings, expected), expected)

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
    _report_from_the_topic_equals_the_report_from_replay(worker_env, tmp_path)


def _report_from_the_topic_equals_the_report_from_replay(env: dict[str, str], tmp_path: Path) -> None:
    """`acw report --from-topics` reads the worker's intervals topic; its numbers equal those of replay's files."""
    since = ["--since", str(T_START_MS + 3_600_000)]  # also reads from shortly before a time, not from offset 0
    for args, out in (
        (["--from-topics"], tmp_path / "report-topic"),
        ([str(tmp_path / "replay")], tmp_path / "report-replay"),
    ):
        command = [sys.executable, "-m", "streams.cli", "report", *args, *since, "--out", str(out)]
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
    from_topic = orjson.loads((tmp_path / "report-topic" / "figures.json").read_bytes())
    from_replay = orjson.loads((tmp_path / "report-replay" / "figures.json").read_bytes())
    assert from_topic["overall"]["contacts"] > 0
    assert from_topic["period"]["first_disconnect"] >= "2026-01-01T01:00:00Z"
    assert from_topic == from_replay


def _dead_letter_metrics(port: int) -> Counter[str] | None:
    """acw_dead_letters_total by reason from a worker's /metrics (None until every dead letter is counted)."""
    counts = Counter(
        {reason: int(n) for reason, n in by_label(scrape(port), "acw_dead_letters_total", "reason").items()}
    )
    return counts if sum(counts.values()) >= len(GARBAGE_REASONS) else None


def test_a_second_worker_joins_and_the_first_leaves_mid_stream_and_nothing_changes(
    worker_env: dict[str, str], workers: list[WorkerProcess], tmp_path: Path
) -> None:
    """Two workers share the partitions, then the first leaves: every output equals replay's.

    The traffic goes out in three parts, so each step happens mid-stream however fast the workers
    are: the first worker alone, both sharing the partitions, the second alone after the handover.
    """
    settings, path, expected = prepare(worker_env, tmp_path, produce=False)
    parts = split_file(path, 3)
    send(settings, parts[0])
    first = WorkerProcess({**worker_env, "ACW_DATA_DIR": str(tmp_path / "a")}, tmp_path / "a.log").start()
    workers.append(first)
    wait_for(lambda: len(intervals(settings)) > 0, 240, "the first worker to be mid-stream", poll_s=0.2)
    second_env = {**worker_env, "ACW_DATA_DIR": str(tmp_path / "b"), "ACW_LOG_LEVEL": "INFO"}
    workers.append(WorkerProcess(second_env, tmp_path / "b.log").start())
    assigned = re.compile(r"acw-intervals: assigned partitions \[\d")
    wait_for(
        lambda: assigned.search((tmp_path / "b.log").read_text(errors="replace")),
        180,
        "the second worker to be assigned partitions",
    )
    send(settings, parts[1])
    first.stop()
    send(settings, parts[2])
    assert_equal(wait_for_outputs(settings, expected), expected)


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

    settings, _, expected = prepare(worker_env, tmp_path)

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
    assert_equal(wait_for_outputs(settings, expected), expected)
    logged = (tmp_path / "worker.log").read_text(errors="replace")
    assert f"{settings.input_topic}:1 continues at offset {end}, past its state: catching up from 0" in logged
    assert f"{settings.input_topic}:2 continues at offset 3000, past its state: catching up from 0" in logged
