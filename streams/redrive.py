"""`acw redrive`: dead letters of chosen reasons sent back to the topic they came from, after a fix.

It reads the dead-letter topic as consumer group `APP_ID-redrive`, up to the end offsets seen at start, and
commits after every record it re-sent was delivered: run again, it sends nothing twice. Should it die
between delivery and commit, the next run re-sends those records; the worker drops them as repeated
event ids, so outputs stay exact.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.structs import OffsetAndMetadata

from streams.connection import client_options
from streams.consume import ValueDecoder, topic_partitions
from streams.settings import Settings
from streams.topics import spec_for

# Dead letters that hold one of our intervals, not a source record: there is nothing to re-send.
NOT_REDRIVABLE = frozenset({"late_for_window"})
REDRIVEN_HEADER = "acw-redriven-from"


@dataclass
class RedriveSummary:
    """What one run re-sent and what it passed over, by reason."""

    sent: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)


async def redrive(
    settings: Settings,
    reasons: Iterable[str],
    to_topic: str | None = None,
    dry_run: bool = False,
    progress: Callable[[int], None] | None = None,
) -> RedriveSummary:
    """Re-send dead letters whose reason is one of `reasons` to their source topic (or `to_topic`)."""
    wanted = set(reasons)
    topic = settings.dead_letter_topic
    spec = spec_for(settings, topic)
    assert spec is not None
    decoder = ValueDecoder(spec, settings)
    inputs = {t for t, _ in settings.inputs()} | {settings.rekey_topic}
    consumer = AIOKafkaConsumer(
        **client_options(settings),
        group_id=f"{settings.app_id}-redrive",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    producer = AIOKafkaProducer(**client_options(settings), acks="all", enable_idempotence=True)
    await consumer.start()
    await producer.start()
    summary = RedriveSummary()
    try:
        ends = await _assigned_ends(consumer, topic)
        pending = {tp for tp, end in ends.items() if await consumer.position(tp) < end}
        seen = 0
        while pending:
            batch = await consumer.getmany(*pending, timeout_ms=1000)
            deliveries = []
            for tp, messages in batch.items():
                for message in messages:
                    if message.offset >= ends[tp]:
                        break
                    seen += 1
                    record = await decoder.decode(message.value)
                    if not isinstance(record, dict) or "reason" not in record:
                        summary.skipped["undecodable"] += 1
                        continue
                    reason = record["reason"]
                    target = to_topic or record["source_topic"]
                    if (
                        reason not in wanted
                        or reason in NOT_REDRIVABLE
                        or record.get("value") is None
                        or (to_topic is None and target not in inputs)
                    ):
                        summary.skipped[reason] += 1
                        continue
                    summary.sent[reason] += 1
                    if not dry_run:
                        headers = [(k, v) for k, v in (message.headers or ()) if not k.startswith("acw-")]
                        origin = f"{record['source_topic']}:{record['source_partition']}:{record['source_offset']}"
                        headers.append((REDRIVEN_HEADER, origin.encode()))
                        deliveries.append(
                            await producer.send(target, record["value"], key=record["key"], headers=headers)
                        )
                if messages and messages[-1].offset + 1 >= ends[tp]:
                    pending.discard(tp)
            await asyncio.gather(*deliveries)
            if not dry_run and batch:
                offsets = {
                    tp: OffsetAndMetadata(min(msgs[-1].offset + 1, ends[tp]), "") for tp, msgs in batch.items() if msgs
                }
                await consumer.commit(offsets)
            if progress is not None:
                progress(seen)
    finally:
        await producer.stop()
        await consumer.stop()
    return summary


async def _assigned_ends(consumer: AIOKafkaConsumer, topic: str) -> dict[TopicPartition, int]:
    """Take every partition of the topic from the group's committed offset (else the start); their end offsets now."""
    tps = await topic_partitions(consumer, topic)
    consumer.assign(tps)
    firsts = await consumer.beginning_offsets(tps)
    for tp in tps:
        committed = await consumer.committed(tp)
        consumer.seek(tp, firsts[tp] if committed is None else max(committed, firsts[tp]))
    return await consumer.end_offsets(tps)
