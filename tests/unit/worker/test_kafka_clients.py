"""The worker's own producers are started once, however many stages ask for them at the same time."""

from __future__ import annotations

import asyncio
from typing import Any

import aiokafka
import pytest

from streams.settings import Settings
from streams.worker.kafka_clients import SideClients


class _Producer:
    started: list[_Producer] = []

    def __init__(self, **options: Any) -> None:
        self.options = options

    async def start(self) -> None:
        await asyncio.sleep(0)  # starting takes a round trip: a second caller arrives meanwhile
        _Producer.started.append(self)


@pytest.mark.parametrize("which", ["output_producer", "state_producer"])
def test_concurrent_first_uses_start_one_producer(monkeypatch: pytest.MonkeyPatch, which: str) -> None:
    monkeypatch.setattr(aiokafka, "AIOKafkaProducer", _Producer)
    _Producer.started = []
    clients = SideClients(Settings.from_env({}), None)

    async def run() -> list[Any]:
        return list(await asyncio.gather(*(getattr(clients, which)() for _ in range(3))))

    got = asyncio.run(run())
    assert len(_Producer.started) == 1 and all(p is _Producer.started[0] for p in got)
