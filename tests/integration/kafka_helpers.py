"""Reading topics back from the real broker in tests."""

from __future__ import annotations

import asyncio
import datetime
import time
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from streams.serialization import codec


async def _read_all(bootstrap: str, topic: str) -> list[tuple[bytes | None, bytes | None]]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        parts = await consumer._client.fetch_all_metadata()
        partitions = parts.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        if not tps:
            return []
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        end = await consumer.end_offsets(tps)
        out: list[tuple[bytes | None, bytes | None]] = []
        remaining = {tp for tp in tps if end[tp] > 0}
        while remaining:
            batch = await consumer.getmany(*remaining, timeout_ms=1000)
            for tp, messages in batch.items():
                out.extend((m.key, m.value) for m in messages)
                if messages and messages[-1].offset >= end[tp] - 1:
                    remaining.discard(tp)
        return out
    finally:
        await consumer.stop()


async def _size(bootstrap: str, topic: str) -> int:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        parts = await consumer._client.fetch_all_metadata()
        tps = [TopicPartition(topic, p) for p in parts.partitions_for_topic(topic) or set()]
        if not tps:
            return 0
        start, end = await consumer.beginning_offsets(tps), await consumer.end_offsets(tps)
        return sum(end[tp] - start[tp] for tp in tps)
    finally:
        await consumer.stop()


def topic_size(bootstrap: str, topic: str) -> int:
    """How many records a topic holds (repeats included), from its offsets: cheap to poll."""
    return asyncio.run(_size(bootstrap, topic))


async def _committed_to_end(bootstrap: str, group: str, topic: str) -> bool:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        parts = await consumer._client.fetch_all_metadata()
        tps = [TopicPartition(topic, p) for p in parts.partitions_for_topic(topic) or set()]
        end = await consumer.end_offsets(tps)
        for tp in tps:
            if end[tp] > 0 and (await consumer.committed(tp) or 0) < end[tp]:
                return False
        return bool(tps)
    finally:
        await consumer.stop()


def committed_to_end(bootstrap: str, group: str, topic: str) -> bool:
    """Whether the group committed every partition of the topic up to its end (all applied and checkpointed)."""
    return asyncio.run(_committed_to_end(bootstrap, group, topic))


def topic_size_or_none(bootstrap: str, topic: str) -> int | None:
    """The topic's size, or None when the broker does not answer within a few seconds."""
    try:
        return asyncio.run(asyncio.wait_for(_size(bootstrap, topic), 5))
    except Exception:
        return None


def read_topic(bootstrap: str, topic: str) -> list[tuple[bytes | None, bytes | None]]:
    """Every (key, value) currently in a topic."""
    return asyncio.run(_read_all(bootstrap, topic))


def read_records(bootstrap: str, topic: str, schema: str) -> list[dict[str, Any]]:
    """Every record of a topic decoded with one of our schemas."""
    decode = codec(schema).decode
    return [decode(v) for _, v in read_topic(bootstrap, topic) if v is not None]


def wait_for(condition: Callable[[], Any], timeout_s: float, what: str, poll_s: float = 0.5) -> Any:
    """Poll until `condition()` is truthy, or fail naming `what`."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
        time.sleep(poll_s)


def read_with_registry(bootstrap: str, topic: str, registry_url: str) -> list[dict[str, Any]]:
    """Every record of a topic as a standard consumer sees it: confluent-kafka with its AvroDeserializer.

    Nothing of our code is used. Each item has the record's `key` (text), `value` (timestamps as epoch ms,
    as our own JSON writes them), Kafka `timestamp` (ms) and `headers`.
    """
    from confluent_kafka import Consumer, TopicPartition
    from confluent_kafka.schema_registry import SchemaRegistryClient
    from confluent_kafka.schema_registry.avro import AvroDeserializer
    from confluent_kafka.serialization import MessageField, SerializationContext

    deserialize = AvroDeserializer(SchemaRegistryClient({"url": registry_url}))
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": f"reader-{time.monotonic_ns()}", "enable.auto.commit": False}
    )
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in partitions}
        consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
        pending = {p for p, end in ends.items() if end > 0}
        out: list[dict[str, Any]] = []
        deadline = time.monotonic() + 60
        while pending and time.monotonic() < deadline:
            message = consumer.poll(1.0)
            if message is None or message.error():
                continue
            if message.value() is not None:
                value = deserialize(message.value(), SerializationContext(topic, MessageField.VALUE))
                out.append(
                    {
                        "key": message.key().decode() if message.key() is not None else None,
                        "value": _epoch_ms(value),
                        "timestamp": message.timestamp()[1],
                        "headers": dict(message.headers() or []),
                    }
                )
            if message.offset() + 1 >= ends[message.partition()]:
                pending.discard(message.partition())
        assert not pending, f"could not read {topic} to its end"
        return out
    finally:
        consumer.close()


def _epoch_ms(value: Any) -> Any:
    """Decoded Avro with timestamp-millis datetimes turned back into epoch milliseconds."""
    if isinstance(value, dict):
        return {k: _epoch_ms(v) for k, v in value.items()}
    if isinstance(value, datetime.datetime):
        return round(value.timestamp() * 1000)
    return value
