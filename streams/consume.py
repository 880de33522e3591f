"""`acw consume`: any of the product's topics decoded to JSON Lines (or readable lines), with or without a registry.

The data platform's first look at a topic: each record with its partition, offset, Kafka timestamp, key,
headers and decoded value. Values are read by the topic's specification: Avro of our schemas (framed with
the registry's ids when ACW_SCHEMA_REGISTRY_URL is set, each writer's schema then fetched by id), JSON for
the platforms' formats and internal panes.
"""

from __future__ import annotations

import base64
import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from streams.connection import client_options
from streams.domain.events import InvalidEvent
from streams.serialization import WriterSchemas, codec, confluent_schema_id
from streams.settings import Settings
from streams.topics import TopicSpec, spec_for

_RELATIVE = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class ConsumeError(ValueError):
    """A topic or start position the command cannot use; the message says why."""


def parse_since(text: str, now: dt.datetime | None = None) -> int:
    """Epoch ms of `--since`: ISO-8601 (UTC unless it says otherwise), epoch ms, or a duration back (15m, 2h, 1d)."""
    now = now or dt.datetime.now(dt.UTC)
    match = _RELATIVE.match(text.strip())
    if match:
        return round((now.timestamp() - float(match[1]) * _UNITS[match[2]]) * 1000)
    if text.strip().isdigit():
        return int(text.strip())
    try:
        parsed = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ConsumeError(f"--since {text!r}: not ISO-8601, epoch ms or a duration like 15m, 2h, 1d") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return round(parsed.timestamp() * 1000)


@dataclass(frozen=True)
class Start:
    """Where reading starts: the end (new records only), the beginning, or the first record at or after a time."""

    beginning: bool = False
    since_ms: int | None = None


class ValueDecoder:
    """Turns one topic's record values into JSON-ready data, by the topic's specification."""

    def __init__(self, spec: TopicSpec, settings: Settings) -> None:
        self.spec = spec
        self.registry = None
        self.writers: WriterSchemas | None = None
        if spec.schema is not None and spec.value_format != "json":
            if settings.schema_registry_url and spec.role != "rekey":  # re-keyed events stay plain (internal)
                from streams.schema_registry import SchemaRegistry

                self.registry = SchemaRegistry(settings)
                self.writers = WriterSchemas(spec.schema)
            self._plain = codec(spec.schema).decode

    async def decode(self, value: bytes | None) -> Any:
        """The value as data; one that cannot be decoded becomes {"undecodable": reason, "raw": base64}."""
        if value is None:
            return None
        try:
            if self.spec.schema is None or self.spec.value_format == "json":
                return orjson.loads(value)
            if self.writers is not None and self.registry is not None:
                schema_id = confluent_schema_id(value)
                if schema_id is None:
                    raise InvalidEvent("not_framed", "no Confluent header, but ACW_SCHEMA_REGISTRY_URL is set")
                await self.registry.learn(schema_id, self.writers)
                return self.writers.decode(schema_id, value[5:])
            return self._plain(value)
        except InvalidEvent as exc:
            return {"undecodable": exc.reason, "detail": exc.detail, "raw": base64.b64encode(value).decode()}
        except Exception as exc:
            return {"undecodable": type(exc).__name__, "detail": str(exc), "raw": base64.b64encode(value).decode()}


def _text(data: bytes | None) -> str | None:
    """Bytes as text when they are UTF-8, else as `base64:...`."""
    if data is None:
        return None
    try:
        return data.decode()
    except UnicodeDecodeError:
        return "base64:" + base64.b64encode(data).decode()


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, bytes):
        return _text(value)
    return value


def envelope(topic: str, message: Any, value: Any) -> dict[str, Any]:
    """One consumed record as JSON-ready data."""
    return {
        "topic": topic,
        "partition": message.partition,
        "offset": message.offset,
        "timestamp": message.timestamp,
        "key": _text(message.key),
        "headers": {k: _text(v) for k, v in (message.headers or ())},
        "value": _jsonable(value),
    }


def readable(record: dict[str, Any]) -> str:
    """One record as a line for a person: where, when, key and the value as compact JSON."""
    when = dt.datetime.fromtimestamp(record["timestamp"] / 1000, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    value = orjson.dumps(record["value"]).decode()
    return f"{record['partition']}/{record['offset']}  {when[:-4]}Z  {record['key']}  {value}"


async def consume(
    settings: Settings,
    topic: str,
    start: Start,
    emit: Callable[[dict[str, Any]], None],
    limit: int | None = None,
    stop_at_end: bool = False,
) -> int:
    """Decode a topic's records to `emit` from `start`; returns how many. Stops at `limit`, at the end if asked."""
    spec = spec_for(settings, topic)
    if spec is None:
        raise ConsumeError(f"{topic} is not one of the product's topics (acw topics verify lists them)")
    decoder = ValueDecoder(spec, settings)
    consumer = AIOKafkaConsumer(**client_options(settings), enable_auto_commit=False)
    await consumer.start()
    shown = 0
    try:
        tps = await topic_partitions(consumer, topic)
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        if start.since_ms is not None:
            found = await consumer.offsets_for_times({tp: start.since_ms for tp in tps})
            for tp in tps:
                consumer.seek(tp, found[tp].offset if found[tp] is not None else ends[tp])
        else:
            # Explicit offsets: seek_to_beginning over several partitions was seen to leave some at their end.
            firsts = await consumer.beginning_offsets(tps) if start.beginning else ends
            for tp in tps:
                consumer.seek(tp, firsts[tp])
        pending = {tp for tp in tps if await consumer.position(tp) < ends[tp]}
        if stop_at_end and not pending:
            return 0
        while True:
            batch = await consumer.getmany(timeout_ms=500)
            for tp, messages in batch.items():
                for message in messages:
                    emit(envelope(topic, message, await decoder.decode(message.value)))
                    shown += 1
                    if limit is not None and shown >= limit:
                        return shown
                if messages and messages[-1].offset + 1 >= ends[tp]:
                    pending.discard(tp)
            if stop_at_end and not pending:
                return shown
    finally:
        await consumer.stop()


async def topic_partitions(consumer: AIOKafkaConsumer, topic: str) -> list[TopicPartition]:
    """Every partition of a topic, from fresh cluster metadata; raises ConsumeError when there is no such topic."""
    cluster = await consumer._client.fetch_all_metadata()  # the public partitions_for_topic only knows subscriptions
    partitions = cluster.partitions_for_topic(topic)
    if not partitions:
        raise ConsumeError(f"topic {topic} does not exist")
    return [TopicPartition(topic, p) for p in sorted(partitions)]
