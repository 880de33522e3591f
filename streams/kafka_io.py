"""Topic creation and file-to-topic production with aiokafka (the CLI's `topics create` and `produce`)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from streams.connection import client_options
from streams.domain.events import InvalidEvent, event_from_record
from streams.replay import _records
from streams.serialization import check_not_in_future, encode_call_event, event_from_json
from streams.settings import Settings
from streams.sources import Source
from streams.sources.formats import PLATFORM_FORMATS, build_source
from streams.topics import TopicSpec, topic_specs


def new_topic(spec: TopicSpec) -> NewTopic:
    """The admin-client request that creates one topic as specified."""
    return NewTopic(spec.name, spec.partitions, spec.replication_factor, topic_configs=dict(spec.configs))


async def create_topics(settings: Settings) -> list[str]:
    """Create missing topics; returns the names created."""
    admin = AIOKafkaAdminClient(**client_options(settings))
    await admin.start()
    created = []
    try:
        existing = set(await admin.list_topics())
        for spec in topic_specs(settings):
            if spec.name in existing:
                continue
            try:
                await admin.create_topics([new_topic(spec)])
                created.append(spec.name)
            except TopicAlreadyExistsError:
                pass
    finally:
        await admin.close()
    return created


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


async def watch_intervals(settings: Settings, print_line: Callable[[str], None], limit: int | None = None) -> int:
    """Print each interval published on the intervals topic, from the start; returns how many were shown."""
    from streams.serialization import codec

    decode = codec("acw_interval").decode
    consumer = AIOKafkaConsumer(
        settings.intervals_topic,
        **client_options(settings),
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    shown = 0
    try:
        async for message in consumer:
            r = decode(message.value)
            talk = "-" if r["talk_seconds"] is None else f"{r['talk_seconds']:.0f}s"
            print_line(
                f"{r['agent_id']:<12} {r['contact_id']:<20} {r['channel']:<5} team={r['team_id'] or '-':<8} "
                f"talk={talk:<6} acw={r['acw_seconds']:>7.1f}s  {r['end_reason']}"
            )
            shown += 1
            if limit is not None and shown >= limit:
                break
    finally:
        await consumer.stop()
    return shown
