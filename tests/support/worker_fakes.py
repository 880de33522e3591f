"""A real `AcwWorker` that never connects: in-memory stand-ins for its producers, consumer acks and broker logs.

The stages, cores, sink and checkpoint code are the product's own; only the Kafka clients are replaced.
Each producer keeps what it was given, per topic partition, as an in-memory log; `feed` turns the records
of a log into the messages a stage's `consume_batch` takes.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from aiokafka import TopicPartition
from prometheus_client import CollectorRegistry

from streams.metrics import Metrics
from streams.settings import Settings
from streams.worker.app import AcwWorker


@dataclass
class FakeBatch:
    """A record batch that holds at most `limit` records."""

    limit: int
    records: list[tuple[bytes | None, bytes | None, int | None, list[tuple[str, bytes]]]] = field(default_factory=list)

    def append(self, *, key: bytes | None, value: bytes | None, timestamp: int | None, headers: Any = ()) -> int | None:
        if len(self.records) >= self.limit:
            return None
        self.records.append((key, value, timestamp, list(headers)))
        return len(self.records)

    def size(self) -> int:
        """Bytes of keys and values appended (an aiokafka batch's uncompressed size, near enough)."""
        return sum(len(key or b"") + len(value or b"") for key, value, _, _ in self.records)


@dataclass
class Message:
    """The parts of an aiokafka `ConsumerRecord` the stages read (timestamp in ms)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp: int | None = None
    headers: list[tuple[str, bytes]] = field(default_factory=list)

    @property
    def tp(self) -> TopicPartition:
        return TopicPartition(self.topic, self.partition)


class FakeProducer:
    """An aiokafka producer's batch interface, appending to in-memory logs.

    `fail_deliveries` makes every delivery fail; `gate`, when set, holds each `send_batch` until it opens.
    """

    def __init__(self, partitions: int, batch_limit: int = 10_000) -> None:
        self.partitions = partitions
        self.batch_limit = batch_limit
        self.logs: dict[tuple[str, int], list[Message]] = defaultdict(list)
        self.fail_deliveries = False
        self.gate: asyncio.Event | None = None
        self.on_partitions_for: Any = None  # called (once) when the sink first asks for a topic's partitions

    def create_batch(self) -> FakeBatch:
        return FakeBatch(self.batch_limit)

    async def partitions_for(self, topic: str) -> set[int]:
        if self.on_partitions_for is not None:
            hook, self.on_partitions_for = self.on_partitions_for, None
            hook()
        return set(range(self.partitions))

    async def send_batch(self, batch: FakeBatch, topic: str, partition: int) -> asyncio.Future[None]:
        if self.gate is not None:
            await self.gate.wait()
        delivery: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self.fail_deliveries:
            delivery.set_exception(ConnectionError("broker gone"))
            return delivery
        log = self.logs[topic, partition]
        for key, value, timestamp, headers in batch.records:
            log.append(Message(topic, partition, len(log), key, value, timestamp, headers))
        delivery.set_result(None)
        return delivery

    def records(self, topic: str) -> list[Message]:
        """Every record on `topic`, partition by partition."""
        return [m for (t, _), log in sorted(self.logs.items()) if t == topic for m in log]


@dataclass
class OfflineWorker:
    """An `AcwWorker` with fake clients, and what they were given."""

    worker: AcwWorker
    outputs: FakeProducer
    state: FakeProducer
    failures: list[BaseException]

    @property
    def settings(self) -> Settings:
        return self.worker.settings

    @property
    def acked(self) -> list[Message]:
        """The records acknowledged in the real Faust consumer's books (none is committed here), by partition."""
        books = self.worker.app.consumer._acked
        return [
            Message(tp.topic, tp.partition, offset, None, None)
            for tp in sorted(books)
            for run in books[tp]
            for offset in (run if isinstance(run, range) else [run])
        ]

    def assign(self, partitions: set[int]) -> None:
        """Assign these partitions of every stage's topics to the worker."""
        tps = {TopicPartition(t, p) for stage in self.worker.stages for t in stage.topics for p in partitions}
        for stage in self.worker.stages:
            stage.on_assigned(tps)

    def revoke(self, partitions: set[int]) -> None:
        tps = {TopicPartition(t, p) for stage in self.worker.stages for t in stage.topics for p in partitions}
        for stage in self.worker.stages:
            stage.on_revoked(tps)

    async def checkpoint(self) -> None:
        """Checkpoint every stage now and wait until the checkpoints are written."""
        for stage in self.worker.stages:
            await stage.checkpoint_now()
            if stage.checkpointing is not None:
                await stage.checkpointing

    def close(self) -> None:
        """End the worker's core process, if it started one."""
        client = getattr(self.worker.intervals, "client", None)
        if client is not None:
            client.kill()

    def changelog(self) -> dict[str, dict[str, Any]]:
        """Per changelog topic, the latest value of every key the checkpoints wrote (as compaction keeps them)."""
        tables: dict[str, dict[str, Any]] = defaultdict(dict)
        for (topic, _), log in sorted(self.state.logs.items()):
            for message in log:
                key = orjson.loads(message.key or b"null")
                tables[topic][key] = None if message.value is None else orjson.loads(message.value)
        return dict(tables)


# Every offline worker made, for `close_offline_workers` to end their core processes after a test.
OFFLINE_WORKERS: list[OfflineWorker] = []


def close_offline_workers() -> None:
    """End the core processes of every offline worker made so far."""
    while OFFLINE_WORKERS:
        OFFLINE_WORKERS.pop().close()


def offline_worker(
    tmp_path: Path,
    env: dict[str, str] | None = None,
    changelog: dict[str, dict[str, Any]] | None = None,
    local: dict[str, dict[str, Any]] | None = None,
) -> OfflineWorker:
    """A worker on one partition per topic (unless `env` says otherwise), its tables loaded from `changelog`.

    `changelog` is also what the stages read when they find the local store incomplete; `local`, when given,
    is what the local stores hold instead (as a standby handover that lost changelog records would leave them).
    """
    settings = Settings.from_env(
        {
            "ACW_STORE": "memory://",
            "ACW_DATA_DIR": str(tmp_path / "data"),
            "ACW_PARTITIONS": "1",
            "ACW_INPUT_FORMAT": "json",
            **(env or {}),
        }
    )
    worker = AcwWorker(settings, Metrics(CollectorRegistry()))
    outputs, state = FakeProducer(settings.partitions), FakeProducer(settings.partitions)
    failures: list[BaseException] = []

    async def output_producer() -> FakeProducer:
        return outputs

    async def state_producer() -> FakeProducer:
        return state

    async def earliest_offset(tp: Any) -> int:
        return 0

    async def read_log(topic: str, partition: int) -> AsyncIterator[tuple[bytes, bytes | None]]:
        """The changelog a restore reads when the local store is not whole: `changelog`, then what was written."""
        for key, value in (changelog or {}).get(topic, {}).items():
            yield orjson.dumps(key), None if value is None else orjson.dumps(value)
        for message in state.logs.get((topic, partition), []):
            if message.key is not None:
                yield message.key, message.value

    worker.sink._producer = output_producer  # type: ignore[assignment]
    worker.clients.read_log = read_log  # type: ignore[method-assign]
    worker.clients.state_producer = state_producer  # type: ignore[method-assign]
    worker.clients.earliest_offset = earliest_offset  # type: ignore[method-assign]
    for stage in worker.stages:  # acknowledged as the stages' subscriptions make them in a running app
        worker.app.topics._acking_topics.update(stage.topics)
    worker.fail = failures.append  # type: ignore[method-assign]
    for stage in worker.stages:
        prefix = stage.table.changelog_topic.get_topic_name()
        store = changelog if local is None else local
        for key, value in (store or {}).get(prefix, {}).items():
            if value is not None:
                stage.table.data[key] = value
    made = OfflineWorker(worker, outputs, state, failures)
    OFFLINE_WORKERS.append(made)
    return made


async def feed(stage: Any, messages: list[Message], batch_sizes: list[int]) -> None:
    """Hand `messages` to a stage's batch path, partition by partition, in batches of the given sizes (cycled),
    and wait until their outputs are at the sink."""
    by_partition: dict[int, list[Message]] = defaultdict(list)
    for m in messages:
        by_partition[m.partition].append(m)
    i = 0
    for _, ms in sorted(by_partition.items()):
        start = 0
        while start < len(ms):
            size = batch_sizes[i % len(batch_sizes)]
            i += 1
            batch = ms[start : start + size]
            await stage.consume_batch(batch[0].tp, batch)
            start += size
    await stage.settle()  # with the core process: until the replies of every batch fed are handled
