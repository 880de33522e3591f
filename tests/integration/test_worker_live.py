"""Live behaviour: re-keying of mis-keyed records, a stuck agent timing out with no further events, /metrics."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from streams.domain.events import CallEvent, EventType
from streams.serialization import codec
from streams.settings import Settings
from streams.topic_admin import create_topics
from tests.integration.conftest import WorkerProcess
from tests.integration.kafka_helpers import read_topic, wait_for
from tests.support.ports import free_port
from tests.support.scrape import scrape, total

pytestmark = pytest.mark.integration


async def _send(bootstrap: str, topic: str, messages: list[tuple[bytes, CallEvent]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for key, event in messages:
            await producer.send_and_wait(topic, orjson.dumps(event.to_record()), key=key)
    finally:
        await producer.stop()


def _metric(port: int, name: str) -> float | None:
    return total(scrape(port), name)


def test_rekeying_idle_timeout_and_metrics(
    worker_env: dict[str, str], workers: list[WorkerProcess], tmp_path: Path
) -> None:
    port = free_port()
    worker_env.update(
        {
            "ACW_INPUT_FORMAT": "json",
            "ACW_IDLE_ADVANCE_AFTER_SECONDS": "1",
            "ACW_MAX_ACW_SECONDS": "3",
            "ACW_METRICS_PORT": str(port),
        }
    )
    settings = Settings.from_env(worker_env)
    asyncio.run(create_topics(settings))
    workers.append(WorkerProcess(worker_env, tmp_path / "worker.log").start())
    wait_for(lambda: _metric(port, "acw_events_rekeyed_total") is not None, 60, "the metrics endpoint")
    now = int(time.time() * 1000)
    mis_keyed = [
        CallEvent("r1", EventType.CONTACT_CONNECTED, now - 60_000, "rk-1", contact_id="c1"),
        CallEvent("r2", EventType.CONTACT_DISCONNECTED, now - 30_000, "rk-1", contact_id="c1"),
        CallEvent("r3", EventType.AGENT_AVAILABLE, now - 29_000, "rk-1"),
    ]
    stuck = CallEvent("s1", EventType.CONTACT_DISCONNECTED, now, "stuck-1", contact_id="c9")
    asyncio.run(
        _send(
            settings.bootstrap_servers,
            settings.input_topic,
            [(b"not-the-agent", e) for e in mis_keyed] + [(b"stuck-1", stuck)],
        )
    )

    def intervals() -> dict[str, tuple[bytes | None, dict]]:
        decode = codec("acw_interval").decode
        out = {}
        for k, v in read_topic(settings.bootstrap_servers, settings.intervals_topic):
            r = decode(v)
            out[r["agent_id"]] = (k, r)
        return out if {"rk-1", "stuck-1"} <= out.keys() else {}

    got = wait_for(intervals, 90, "the re-keyed agent's interval and the stuck agent's timeout")
    key, rk = got["rk-1"]
    assert key == b"rk-1" and rk["end_reason"] == "AVAILABLE" and rk["acw_seconds"] == 1.0
    assert rk["talk_seconds"] == 30.0
    key, st = got["stuck-1"]
    assert key == b"stuck-1" and st["end_reason"] == "TIMED_OUT" and st["acw_seconds"] == 3.0
    assert _metric(port, "acw_events_rekeyed_total") == 3.0
    # with no further events, the timer still checkpoints (and so acknowledges) what arrived
    wait_for(lambda: (_metric(port, "acw_checkpoints_total") or 0) >= 1, 30, "a checkpoint without new events")
