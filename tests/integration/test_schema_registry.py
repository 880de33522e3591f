"""Broker, Schema Registry and worker together: standard Kafka tools read every output, newer writers are read.

The registry is a real Apicurio Registry (Confluent-compatible API) started by `deploy/registry/registry.sh`;
the outputs are read with confluent-kafka's AvroDeserializer, which knows nothing of our code.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import zlib
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from streams.domain.events import CallEvent
from streams.schema_registry import SchemaRegistry
from streams.serialization import FramedCodec, WriterSchemas, load_schema
from streams.settings import ConfigError, Settings
from streams.topic_admin import create_topics
from streams.traffic import TrafficShape
from tests.integration.conftest import ROOT, WorkerProcess, write_traffic
from tests.integration.kafka_helpers import read_with_registry, wait_for
from tests.integration.outputs import aggregate_key, alert_key, assert_equal, replay_outputs, unique
from tests.support.ports import free_port
from tests.unit.serialization.evolution import encode_newer, newer_call_event_schema, newer_record

pytestmark = pytest.mark.integration

SHAPE = TrafficShape(agents=120, contacts_per_agent=12, stagger_ms=6 * 3_600_000)
CT = {"Content-Type": "application/vnd.schemaregistry.v1+json"}


def _register(url: str, subject: str, schema: dict[str, Any]) -> int:
    response = httpx.post(f"{url}/subjects/{subject}/versions", json={"schema": json.dumps(schema)}, headers=CT)
    assert response.status_code == 200, response.text
    return int(response.json()["id"])


async def _send(bootstrap: str, topic: str, records: list[tuple[bytes | None, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        futures = [await producer.send(topic, value, key=key) for key, value in records]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


def _framed_traffic(events: list[CallEvent], today_id: int, newer_id: int) -> list[tuple[bytes | None, bytes]]:
    """Every other agent's events from a producer a schema version ahead (a new field set, same events)."""
    today = FramedCodec("call_event", today_id)
    newer_prefix = b"\x00" + newer_id.to_bytes(4, "big")
    out: list[tuple[bytes | None, bytes]] = []
    for event in events:
        if zlib.crc32(event.agent_id.encode()) % 2:
            out.append((event.agent_id.encode(), newer_prefix + encode_newer(newer_record(event))))
        else:
            out.append((event.agent_id.encode(), today.encode(event.to_record())))
    return out


def test_standard_consumers_read_every_output_equal_to_replay_and_newer_writers_are_resolved(
    worker_env: dict[str, str], workers: list[WorkerProcess], schema_registry: str, tmp_path: Path
) -> None:
    worker_env["ACW_SCHEMA_REGISTRY_URL"] = schema_registry
    settings = Settings.from_env(worker_env)
    path = tmp_path / "traffic.jsonl"
    events = write_traffic(path, SHAPE, garbage=False)
    expected = replay_outputs(path, tmp_path / "replay", settings)
    assert all(expected)
    subject = f"{settings.input_topic}-value"
    today_id = _register(schema_registry, subject, load_schema("call_event"))
    newer_id = _register(schema_registry, subject, newer_call_event_schema())  # accepted as BACKWARD compatible
    foreign_id = _register(
        schema_registry, f"other-{settings.input_topic}-value", {"type": "record", "name": "Other", "fields": []}
    )
    asyncio.run(create_topics(settings))
    records = _framed_traffic(events, today_id, newer_id)
    bad = [
        (b"x-unknown", b"\x00" + (2**31 - 1).to_bytes(4, "big") + b"\x02"),
        (b"x-foreign", b"\x00" + foreign_id.to_bytes(4, "big") + b"\x02"),
    ]
    records[len(records) // 2 : len(records) // 2] = bad
    asyncio.run(_send(settings.bootstrap_servers, settings.input_topic, records))
    workers.append(WorkerProcess(worker_env, tmp_path / "worker.log").start())

    def read(topic: str) -> list[dict[str, Any]]:
        return read_with_registry(settings.bootstrap_servers, topic, schema_registry)

    def outputs() -> tuple[Any, ...] | None:
        intervals = read(settings.intervals_topic)
        if len({r["value"]["interval_id"] for r in intervals}) < len(expected[0]):
            return None
        finals = [r for r in read(settings.aggregates_topic) if r["value"]["final"]]
        alerts = read(settings.alerts_topic)
        if len(finals) < len(expected[1]) or len(alerts) < len(expected[2]):
            return None
        return intervals, finals, alerts

    intervals, finals, alerts = wait_for(outputs, 240, "every output, read with the registry", poll_s=3)
    got = (
        unique([r["value"] for r in intervals]),
        unique([r["value"] for r in finals], aggregate_key),
        unique([r["value"] for r in alerts], alert_key),
    )
    assert_equal(got, expected)
    for r in intervals:
        assert r["timestamp"] == r["value"]["ended_at"] and r["key"] == r["value"]["agent_id"]
        assert r["headers"]["acw-schema"] == b"io.acwstreams.v1.AcwInterval"
        assert r["headers"]["acw-version"].startswith(b"acw-streams/")
    assert all(r["timestamp"] == r["value"]["window_end"] for r in finals)
    for r in alerts:
        at = r["value"]["resolved_at"] if r["value"]["state"] == "RESOLVED" else r["value"]["started_at"]
        assert r["timestamp"] == at and r["key"] == r["value"]["alert_id"]

    dead = wait_for(lambda: read(settings.dead_letter_topic) or None, 60, "dead letters")
    assert sorted((d["key"], d["value"]["reason"]) for d in dead) == [
        ("x-foreign", "incompatible_schema"),
        ("x-unknown", "unknown_schema_id"),
    ]
    assert all(d["headers"]["acw-schema"] == b"io.acwstreams.v1.DeadLetter" for d in dead)
    subjects = httpx.get(f"{schema_registry}/subjects").json()
    for topic in (
        settings.intervals_topic,
        settings.aggregates_topic,
        settings.alerts_topic,
        settings.dead_letter_topic,
    ):
        assert f"{topic}-value" in subjects


def _worker_exit(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "streams.cli", "worker"], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120
    )


def test_an_unreachable_registry_stops_the_worker_at_start_naming_the_setting(worker_env: dict[str, str]) -> None:
    worker_env["ACW_SCHEMA_REGISTRY_URL"] = f"http://127.0.0.1:{free_port()}/apis/ccompat/v7"
    done = _worker_exit(worker_env)
    assert done.returncode == 2, done.stderr
    assert "ACW_SCHEMA_REGISTRY_URL: cannot reach" in done.stderr


def test_an_output_schema_the_registry_refuses_stops_the_worker_naming_subject_and_schema(
    worker_env: dict[str, str], schema_registry: str
) -> None:
    worker_env["ACW_SCHEMA_REGISTRY_URL"] = schema_registry
    settings = Settings.from_env(worker_env)
    # An earlier version without the fields ours requires: BACKWARD forbids reading its records with ours.
    old = {
        "type": "record",
        "name": "AcwInterval",
        "namespace": "io.acwstreams.v1",
        "fields": [{"name": "interval_id", "type": "string"}],
    }
    _register(schema_registry, f"{settings.intervals_topic}-value", old)
    done = _worker_exit(worker_env)
    assert done.returncode == 2, done.stderr
    assert f"refused schemas/acw_interval.avsc for subject {settings.intervals_topic}-value" in done.stderr
    assert "409" in done.stderr


def test_a_registry_outage_is_a_dead_letter_reason_and_the_lookup_is_retried_later(schema_registry: str) -> None:
    down = SchemaRegistry(Settings(schema_registry_url=f"http://127.0.0.1:{free_port()}"))
    writers = WriterSchemas()
    for _ in range(2):  # the second fails at once, without waiting for a connection again
        with pytest.raises(Exception) as info:
            asyncio.run(down.learn(1, writers))
        assert getattr(info.value, "reason", None) == "registry_unavailable"
    assert 1 not in writers
    up = SchemaRegistry(Settings(schema_registry_url=schema_registry))
    with pytest.raises(ConfigError, match="ACW_SCHEMA_REGISTRY_URL"):
        asyncio.run(down.check())
    asyncio.run(up.check())
    asyncio.run(up.learn(2**31 - 2, writers))
    assert 2**31 - 2 in writers  # remembered as unknown: not asked again
