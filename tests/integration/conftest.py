"""Fixtures for tests through the real Kafka broker: the broker itself, worker processes, traffic files."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from streams.domain.events import CallEvent
from streams.traffic import TrafficShape, end_of_input_events, generate
from tests.support import services

ROOT = Path(__file__).resolve().parents[2]
PARTITIONS = 6


@pytest.fixture(scope="session")
def kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real single-node Kafka on a free 127.0.0.1 port for the whole session; yields its bootstrap address."""
    with services.broker(tmp_path_factory.mktemp("kafka")) as bootstrap:
        yield bootstrap


@pytest.fixture(scope="session")
def schema_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Schema Registry (Apicurio, Confluent API) on a free port for the session; yields its URL."""
    with services.registry(tmp_path_factory.mktemp("registry")) as url:
        yield url


class WorkerProcess:
    """An `acw worker` subprocess with its own settings."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.env = env
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> WorkerProcess:
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "streams.cli", "worker"],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
        return self

    def kill(self) -> None:
        """SIGKILL: no shutdown, no final commit."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def worker_env(kafka: str, tmp_path: Path) -> dict[str, str]:
    """Settings for a worker with topics and consumer group of its own."""
    run = uuid.uuid4().hex[:8]
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACW_")}
    env.update(
        {
            "ACW_BOOTSTRAP_SERVERS": kafka,
            "ACW_APP_ID": f"acw-test-{run}",
            "ACW_INPUT_TOPIC": f"events-{run}",
            "ACW_REKEY_TOPIC": f"events-{run}.rekeyed",
            "ACW_INTERVALS_TOPIC": f"intervals-{run}",
            "ACW_DEAD_LETTER_TOPIC": f"dead-{run}",
            "ACW_PANES_TOPIC": f"panes-{run}",
            "ACW_AGGREGATES_TOPIC": f"aggregates-{run}",
            "ACW_ALERTS_TOPIC": f"alerts-{run}",
            "ACW_AGENT_STATE_TOPIC": f"agent-state-{run}",
            "ACW_PARTITIONS": str(PARTITIONS),
            "ACW_DATA_DIR": str(tmp_path / "worker-data"),
            "ACW_METRICS_PORT": "0",
            "ACW_IDLE_ADVANCE_AFTER_SECONDS": "0",
            # Outputs carry event time as their Kafka timestamp, and the traffic is dated weeks back: with the
            # default retention the broker would delete them within minutes (README, Topics).
            "ACW_RETENTION_DAYS": "3650",
            "ACW_AGGREGATES_RETENTION_DAYS": "3650",
            "ACW_ALERTS_RETENTION_DAYS": "3650",
            "PYTHONPATH": str(ROOT),
        }
    )
    if "ACW_TEST_WORKER_PROCESSES" in os.environ:  # 2: every worker test again with the core process
        env["ACW_WORKER_PROCESSES"] = os.environ["ACW_TEST_WORKER_PROCESSES"]
    if "ACW_TEST_WORKER_LOG_LEVEL" in os.environ:  # e.g. INFO, to read restore and catch-up lines in worker logs
        env["ACW_LOG_LEVEL"] = os.environ["ACW_TEST_WORKER_LOG_LEVEL"]
    return env


@pytest.fixture
def workers(worker_env: dict[str, str], tmp_path: Path) -> Iterator[list[WorkerProcess]]:
    """Started workers are stopped at the end of the test."""
    started: list[WorkerProcess] = []
    yield started
    for w in started:
        w.stop()


GARBAGE_LINES = [
    b'{"event_id": "g1", "event_type": "CONTACT_CONNECTED"',  # truncated JSON
    b'{"event_id": "g2", "event_type": "AGENT_AVAILABLE", "occurred_at": "yesterday", "agent_id": "x"}',
    b'{"event_id": "g3", "event_type": "TELEPORTED", "occurred_at": 1767225600000, "agent_id": "x"}',
    b'{"event_id": "g4", "event_type": "AGENT_AVAILABLE", "occurred_at": 1767225600000}',
    b'{"event_id": 5, "event_type": "AGENT_AVAILABLE", "occurred_at": 1767225600000, "agent_id": "x"}',
    b'{"event_id": "g6", "event_type": "AGENT_AVAILABLE", "occurred_at": 1767225600, "agent_id": "x"}',
    b"[1, 2, 3]",
    b"\x00\x9f\xff\xfe binary noise \x01\x02",
    b'{"event_id": "g9", "event_type": "AGENT_AVAILABLE", "occurred_at": 3786912000000, "agent_id": "x"}',
    b'{"event_id": "g10", "event_type": "AGENT_AVAILABLE", "occurred_at": 1767225600000, "agent_id": ""}',
    b'{"event_id": "g11", "event_type": "AGENT_AVAILABLE", "occurred_at": 1767225600000, "agent_id": "'
    + b"x" * 100_000
    + b'"}',
    b'{"event_id": "g12", "event_type": "AGENT_AVAILABLE", "occurred_at": 1767225600000, "agent_id": "\xff\xfe"}',
    b'{"event_id": "g13", "event_type": "CONTACT_OFFERED", "occurred_at": 1767225600000, "agent_id": "x", '
    b'"contact_id": "c", "channel": "FAX"}',
]
GARBAGE_REASONS = sorted(
    [
        "unparseable",
        "bad_timestamp",
        "unknown_enum",
        "missing_field",
        "wrong_type",
        "timestamp_out_of_range",
        "not_an_object",
        "unparseable",
        "timestamp_in_future",
        "missing_field",
        "field_too_long",
        "unparseable",
        "unknown_enum",
    ]
)


def write_traffic(path: Path, shape: TrafficShape, seed: int = 7, garbage: bool = True) -> list[CallEvent]:
    """Generated traffic, end-of-input events and (optionally) garbage lines spread through a JSONL file."""
    events = generate(shape, seed)
    events += end_of_input_events(events[-1].occurred_at_ms + 2 * 3_600_000, PARTITIONS)
    step = max(1, len(events) // (len(GARBAGE_LINES) + 1))
    with open(path, "wb") as f:
        for i, event in enumerate(events):
            if garbage and i % step == step // 2 and i // step < len(GARBAGE_LINES):
                f.write(GARBAGE_LINES[i // step] + b"\n")
            f.write(orjson.dumps(event.to_record()) + b"\n")
    return events
