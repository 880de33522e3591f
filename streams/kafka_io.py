"""File-to-topic production with aiokafka (`acw produce`) ."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from aiokafka import AIOKafkaProducer

from streams.connection import client_options
from streams.domain.events import InvalidEvent, event_from_record
from streams.replay import _records
from streams.serialization import check_not_in_future, encode_call_event, event_from_json
from streams.settings import Settings
from streams.sources import Source
from streams.sources.formats import PLATFORM_FORMATS, build_source


@dataclass
class ProduceSummary:
    """What `produce` sent."""

    valid: int = 0
    invalid: int = 0


async def produce_file(
    path: Path,
    topic: str,
    settings: Settings,
    fmt: str,
    progress: Callable[[int], None] | None = None,
    max_future_ms: int = 86_400_000,
    keyed: bool = True,
) -> ProduceSummary:
    """Send a file's events keyed by agent; records the worker would reject are sent raw, unkeyed.

    In a platform format each line is sent as it is, keyed by its agent's routing key (Connect: the agent
    ARN, as Kinesis keys it; Genesys and TaskRouter: the agent id, as a forwarder should), or unkeyed as
    EventBridge delivers (`keyed=False`). A record that does not translate is sent unkeyed.
    """
    if fmt in PLATFORM_FORMATS:
        return await _send_all(settings, topic, _platform_records(path, build_source(fmt, settings), keyed), progress)
    return await _send_all(settings, topic, _call_event_records(path, fmt, max_future_ms), progress)


Outgoing = tuple[bytes, bytes | None, bool]  # value, key, whether it is a valid record of its format


def _call_event_records(path: Path, fmt: str, max_future_ms: int) -> Iterator[Outgoing]:
    """Our events encoded in `fmt` and keyed by agent; anything the worker would reject as it is, unkeyed."""
    now_ms = int(time.time() * 1000)
    for _, item in _records(path):
        try:
            event = event_from_json(item) if isinstance(item, bytes) else event_from_record(item)
            check_not_in_future(event, now_ms, max_future_ms)
        except InvalidEvent:
            raw = item if isinstance(item, bytes) else repr(item).encode()
            yield raw.rstrip(b"\n"), None, False
            continue
        yield encode_call_event(event, fmt), event.agent_id.encode(), True


def _platform_records(path: Path, source: Source, keyed: bool) -> Iterator[Outgoing]:
    """A platform file's lines as they are, keyed by routing key; the worker validates them (its dead letters)."""
    with open(path, "rb") as f:
        for line in f:
            if line.isspace():
                continue
            value = line.rstrip(b"\r\n")
            try:
                events = source.translate(value).events
            except InvalidEvent:
                events = ()
            yield value, source.routing_key(events[0]) if keyed and events else None, True


async def _send_all(
    settings: Settings, topic: str, records: Iterator[Outgoing], progress: Callable[[int], None] | None
) -> ProduceSummary:
    """Send records with an idempotent producer, waiting for delivery every 10,000 records and at the end."""
    producer = AIOKafkaProducer(
        **client_options(settings), acks="all", linger_ms=20, max_batch_size=256 * 1024, enable_idempotence=True
    )
    await producer.start()
    summary = ProduceSummary()
    pending: list[asyncio.Future[object]] = []
    try:
        for value, key, valid in records:
            pending.append(await producer.send(topic, value, key=key))
            if valid:
                summary.valid += 1
            else:
                summary.invalid += 1
            if len(pending) >= 10_000:
                await asyncio.gather(*pending)
                pending.clear()
                if progress:
                    progress(summary.valid + summary.invalid)
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return summary
