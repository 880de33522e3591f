"""Where simulated events go: a JSON Lines or Avro container file, or a Kafka topic, paced to a speed."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

from streams.settings import Settings
from streams.simulator import Emitted, Faults, SimulationConfig, platform_items, simulate, to_json_line, with_faults


class _Pacer:
    """Sleeps so records go out at `speed` times event-time pace (0: no pacing)."""

    def __init__(self, speed: float) -> None:
        self.speed = speed
        self.origin: tuple[float, int] | None = None

    def delay(self, send_at_ms: int) -> float:
        if not self.speed:
            return 0.0
        if self.origin is None:
            self.origin = (time.monotonic(), send_at_ms)
        wall, first = self.origin
        return max(0.0, wall + (send_at_ms - first) / 1000 / self.speed - time.monotonic())


def run_simulation(
    config: SimulationConfig,
    faults: Faults,
    settings: Settings,
    out: Path | None = None,
    topic: str | None = None,
    speed: float = 0.0,
    fmt: str | None = None,
    progress: Callable[[int, float], None] | None = None,
) -> Counter[str]:
    """Emit the simulation to a file or topic; counts of records sent once (`events`) and injected faults.

    `fmt` names a platform format to render the simulated events in (`simulator_platforms`); otherwise
    they are our own CallEvents (JSON Lines or Avro container files by suffix, ACW_INPUT_FORMAT on Kafka).
    `progress(records, share of the simulated time done)` is called every 10,000 records.
    """
    platform = fmt is not None and fmt not in ("avro", "json")
    if platform and out is not None and out.suffix == ".avro":
        raise ValueError(f"{fmt} records are JSON: write them to a .jsonl file")
    events = simulate(config)
    items = with_faults(platform_items(events, fmt) if platform else events, faults, config.seed)  # type: ignore[arg-type]
    if topic is not None and fmt in ("avro", "json"):
        settings = replace(settings, input_format=fmt)
    if progress is not None:
        items = _reporting(items, config, progress)
    if out is not None:
        return _to_file(items, out, _Pacer(speed))
    assert topic is not None
    return asyncio.run(_to_kafka(items, topic, settings, _Pacer(speed)))


def _reporting(
    items: Iterator[Emitted], config: SimulationConfig, progress: Callable[[int, float], None]
) -> Iterator[Emitted]:
    """The items unchanged, telling `progress` every 10,000 how far through the simulated time they are."""
    for n, item in enumerate(items, start=1):
        if not n % 10_000:
            progress(n, (item.send_at_ms - config.start_ms) / config.duration_ms)
        yield item


def _count(counts: Counter[str], item: Emitted) -> None:
    """Events (or platform records) sent once each (late ones included), and each injected fault by kind."""
    if item.fault not in ("duplicate", "malformed"):
        counts["events"] += 1
    if item.fault:
        counts[item.fault] += 1


def _to_file(items: Iterator[Emitted], out: Path, pacer: _Pacer) -> Counter[str]:
    counts: Counter[str] = Counter()
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".avro":
        from fastavro import parse_schema, writer

        from streams.serialization import load_schema

        def records() -> Iterator[dict[str, object]]:
            for item in items:
                if item.event is None:
                    counts["malformed_skipped"] += 1  # an Avro container cannot hold garbage
                    continue
                _count(counts, item)
                yield item.event.to_record()

        with open(out, "wb") as f:
            writer(f, parse_schema(load_schema("call_event")), records(), codec="deflate")
        return counts
    with open(out, "wb") as f:
        for item in items:
            time.sleep(pacer.delay(item.send_at_ms))
            f.write(to_json_line(item) + b"\n")
            _count(counts, item)
            if pacer.speed:
                f.flush()
    return counts


async def _to_kafka(items: Iterator[Emitted], topic: str, settings: Settings, pacer: _Pacer) -> Counter[str]:
    from aiokafka import AIOKafkaProducer

    from streams.connection import client_options
    from streams.serialization import encode_call_event

    counts: Counter[str] = Counter()
    producer = AIOKafkaProducer(**client_options(settings), linger_ms=20, acks="all")
    await producer.start()
    try:
        for item in items:
            delay = pacer.delay(item.send_at_ms)
            if delay:
                await asyncio.sleep(delay)
            value = item.raw if item.event is None else encode_call_event(item.event, settings.input_format)
            await producer.send(topic, value, key=item.key)
            _count(counts, item)
        await producer.flush()
    finally:
        await producer.stop()
    return counts
