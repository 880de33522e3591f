"""The worker's output sink: a batch's outputs as Kafka records, sent as record batches in order per partition.

A stage fills a `BatchOutputs` synchronously while it applies a batch of records (it is the router's
sink), then hands it to `KafkaSink.submit`. Records are appended to one open record batch per topic
partition; a pump per partition submits that batch to the producer whenever the previous one was taken,
so batches grow with load and a partition's records keep their order. `flush` waits until every record
submitted so far is acknowledged by the broker, and raises `OutputsLost` when any was not: the state
that implies those outputs must then never be written.
"""

from __future__ import annotations

import asyncio
import logging
import struct
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import orjson

from streams.domain.aggregates import WindowKey, WindowStats
from streams.domain.intervals import AcwInterval
from streams.metrics import Metrics
from streams.settings import Settings

log = logging.getLogger("acw.worker")

Headers = list[tuple[str, bytes]]
# topic, partition (None: by key), key, value, timestamp in ms (None: the broker's clock), headers
Record = tuple[str, int | None, bytes | None, bytes | None, int | None, Headers | None]

# The key of the records that tell the merge stage how far a source partition's stream time has come.
PROGRESS_KEY = b"~progress"
# Full record batches that may wait per partition before `submit` waits for the producer to take some.
MAX_QUEUED_BATCHES = 16
# Keys whose partition is remembered, per topic, before the memo starts again.
PARTITION_MEMO_SIZE = 200_000


class OutputsLost(Exception):
    """Output records the broker did not take: the state that implies them must not be checkpointed."""


class BatchOutputs:
    """One batch's outputs as Kafka records, in the order the router handed them over (an `OutputSink`)."""

    def __init__(self, sink: KafkaSink, partition: int) -> None:
        self.records: list[Record] = []
        self.partition = partition  # the source partition; keyless records go to the same partition number
        self._sink = sink
        self._aggregates: Counter[bool] = Counter()

    def interval(self, interval: AcwInterval) -> None:
        sink = self._sink
        record = interval.to_record()
        topic = sink.settings.intervals_topic
        value = sink.encoders[topic](record)
        timestamp = sink.event_time[topic](record)
        self.records.append((topic, None, interval.agent_id.encode(), value, timestamp, sink.headers[topic]))
        sink.metrics.observe_interval(interval)
        sink.metrics.processing_lag.observe(max(0.0, time.time() - interval.ended_at_ms / 1000))

    def alert(self, alert: dict[str, Any]) -> None:
        sink = self._sink
        topic = sink.settings.alerts_topic
        timestamp = sink.event_time[topic](alert)
        self.records.append(
            (topic, None, alert["alert_id"].encode(), sink.encoders[topic](alert), timestamp, sink.headers[topic])
        )
        sink.metrics.alerts.labels(alert["rule"], alert["severity"], alert["state"]).inc()

    def rejected(self, source: Any, interval: AcwInterval, reason: str) -> None:
        value = self._sink.plain_interval(interval.to_record())
        self._dead_letter(source, reason, "the interval's window was already final", value)

    def pane(self, pane: WindowKey, stats: WindowStats) -> None:
        value = orjson.dumps({"src": self.partition, "k": pane.to_list(), "s": stats.to_dict()})
        self.records.append((self._sink.settings.panes_topic, None, pane.group().encode(), value, None, None))

    def progress(self, closed_through_ms: int) -> None:
        value = orjson.dumps({"src": self.partition, "ct": closed_through_ms})
        topic = self._sink.settings.panes_topic
        self.records.extend((topic, p, PROGRESS_KEY, value, None, None) for p in range(self._sink.settings.partitions))

    def aggregate(self, key: str, record: dict[str, Any]) -> None:
        sink = self._sink
        topic = sink.settings.aggregates_topic
        value = sink.encoders[topic](record)
        timestamp = sink.event_time[topic](record)
        self.records.append((topic, None, key.encode(), value, timestamp, sink.headers[topic]))
        self._aggregates[bool(record["final"])] += 1

    def dead_letter(self, source: Any, reason: str, detail: str) -> None:
        self._dead_letter(source, reason, detail, None)

    def call_event(self, key: bytes, value: bytes) -> None:
        """A translated event re-keyed to its agent's partition of the re-key topic."""
        self.records.append((self._sink.settings.rekey_topic, None, key, value, None, None))

    def agent_state(self, agent_id: str, record: dict[str, Any], live: bool) -> None:
        """An agent's live state, or (live False) the tombstone that removes it from the compacted topic."""
        sink = self._sink
        topic = sink.settings.agent_state_topic
        value = sink.encoders[topic](record) if live else None
        timestamp = sink.event_time[topic](record)
        self.records.append((topic, None, agent_id.encode(), value, timestamp, sink.headers[topic]))

    def _dead_letter(self, source: Any, reason: str, detail: str, value: bytes | None) -> None:
        """A rejected record with its reason and origin, under the source record's key, headers and timestamp."""
        sink = self._sink
        sink.metrics.dead_letters.labels(reason).inc()
        topic = sink.settings.dead_letter_topic
        key = source.key if source is not None else None
        record = {
            "reason": reason,
            "detail": detail,
            "source_topic": source.topic if source is not None else sink.settings.intervals_topic,
            "source_partition": source.partition if source is not None else -1,
            "source_offset": source.offset if source is not None else -1,
            "key": key,
            "value": value if value is not None else source.value if source is not None else None,
        }
        kept = [h for h in (getattr(source, "headers", None) or ()) if not h[0].startswith("acw-")]
        ms = getattr(source, "timestamp", None)  # aiokafka's records carry it in ms, -1 when the record has none
        ms = ms if ms is not None and ms >= 0 else None
        partition = None if key is not None else self.partition
        self.records.append((topic, partition, key, sink.encoders[topic](record), ms, [*kept, *sink.headers[topic]]))

    def count(self) -> None:
        """Add this batch's aggregate records to the metrics, once per batch."""
        for final, n in self._aggregates.items():
            self._sink.metrics.aggregates.labels("true" if final else "false").inc(n)


class _Lane:
    """One topic partition's open record batch, the full batches queued behind it, and its pump."""

    def __init__(self, producer: Any) -> None:
        self.producer = producer
        self.open = producer.create_batch()
        self.open_records = 0
        self.full: deque[Any] = deque()
        self.wake = asyncio.Event()
        self.taken = asyncio.Event()  # set whenever the pump took batches, for `submit`'s back-pressure
        self.idle = asyncio.Event()
        self.idle.set()
        self.task: asyncio.Task[None] | None = None

    def append(self, key: bytes | None, value: bytes | None, timestamp: int | None, headers: Headers | None) -> None:
        if self.open.append(key=key, value=value, timestamp=timestamp, headers=headers or []) is None:
            if not self.open_records:
                raise ValueError(f"an output record of {len(value or b'')} bytes is larger than a record batch")
            self.full.append(self.open)
            self.open = self.producer.create_batch()
            self.open_records = 0
            self.append(key, value, timestamp, headers)
            return
        self.open_records += 1
        self.idle.clear()
        self.wake.set()


class KafkaSink:
    """Encodes outputs for their topics and sends them as record batches; owns the output producer."""

    def __init__(
        self,
        settings: Settings,
        metrics: Metrics,
        encoders: Mapping[str, Callable[[dict[str, Any]], bytes]],
        headers: Mapping[str, Headers],
        event_time: Mapping[str, Callable[[Mapping[str, Any]], int]],
        plain_interval: Callable[[dict[str, Any]], bytes],
        producer: Callable[[], Awaitable[Any]],
        sent: Mapping[str, Any],
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.encoders = encoders
        self.headers = headers
        self.event_time = event_time
        self.plain_interval = plain_interval  # an interval in plain Avro, for the bytes field of a dead letter
        self._producer = producer
        self._sent = sent  # output topic -> its records-sent counter
        self._lanes: dict[tuple[str, int], _Lane] = {}
        self._partitions: dict[str, int] = {}
        self._memo: dict[str, dict[bytes, int]] = {}
        self._deliveries: list[asyncio.Future[Any]] = []
        self.failure: BaseException | None = None

    def outputs(self, partition: int) -> BatchOutputs:
        """An empty batch of outputs for records of one source partition."""
        return BatchOutputs(self, partition)

    async def submit(self, out: BatchOutputs) -> None:
        """Append a batch's records to their partitions' record batches; they are sent in the background."""
        out.count()
        if not out.records:
            return
        if self.failure is not None:
            return  # the worker stops at the next checkpoint, which then fails: a restart repeats these
        producer = await self._producer()
        sent: Counter[str] = Counter()
        lanes = self._lanes
        counts = self._partitions
        for topic, partition, key, value, timestamp, headers in out.records:
            if partition is None:
                count = counts.get(topic)
                if count is None:
                    count = counts[topic] = len(await producer.partitions_for(topic))
                partition = self._partition_of(topic, key, out.partition, count)
            lane = lanes.get((topic, partition))
            if lane is None:
                lane = lanes[topic, partition] = _Lane(producer)
                lane.task = asyncio.ensure_future(self._pump(lane, topic, partition))
            lane.append(key, value, timestamp, headers)
            sent[topic] += 1
        for topic, n in sent.items():
            self._sent[topic].inc(n)
        for lane in lanes.values():
            while len(lane.full) > MAX_QUEUED_BATCHES:
                lane.taken.clear()
                await lane.taken.wait()

    def _partition_of(self, topic: str, key: bytes | None, source_partition: int, count: int) -> int:
        """The partition of `count` the default partitioner gives `key` (keyless: the source partition's number)."""
        if key is None:
            return source_partition % count
        memo = self._memo.get(topic)
        if memo is None:
            memo = self._memo[topic] = {}
        partition = memo.get(key)
        if partition is None:
            if len(memo) >= PARTITION_MEMO_SIZE:
                memo.clear()
            partition = memo[key] = (murmur2(key) & 0x7FFFFFFF) % count
        return partition

    async def _pump(self, lane: _Lane, topic: str, partition: int) -> None:
        """Hand the lane's batches to the producer in order, each as soon as the producer took the one before."""
        while True:
            await lane.wake.wait()
            lane.wake.clear()
            while lane.full or lane.open_records:
                if lane.full:
                    batch = lane.full.popleft()
                else:
                    batch, lane.open, lane.open_records = lane.open, lane.producer.create_batch(), 0
                try:
                    delivery = await lane.producer.send_batch(batch, topic, partition=partition)
                except Exception as exc:  # the producer refused it: these records are lost
                    log.error("output batch for %s:%d refused by the producer: %r", topic, partition, exc)
                    self.failure = exc
                    lane.full.clear()
                    continue
                delivery.add_done_callback(self._delivered)
                self._deliveries.append(delivery)
                lane.taken.set()
            lane.idle.set()
            lane.taken.set()

    def _delivered(self, delivery: asyncio.Future[Any]) -> None:
        if not delivery.cancelled() and delivery.exception() is not None and self.failure is None:
            self.failure = delivery.exception()
            log.error("an output batch was not delivered: %r", self.failure)

    async def flush(self) -> None:
        """Wait until every record submitted so far is acknowledged; raise `OutputsLost` if any was not."""
        for lane in list(self._lanes.values()):
            await lane.idle.wait()
        deliveries, self._deliveries = self._deliveries, []
        if deliveries:
            await asyncio.wait(deliveries)
        if self.failure is not None:
            raise OutputsLost(f"output records were not delivered: {self.failure!r}")

    async def close(self) -> None:
        """Stop the pumps (on a clean stop, after the last flush)."""
        for lane in self._lanes.values():
            if lane.task is not None:
                lane.task.cancel()
        self._lanes.clear()


_M = 0x5BD1E995
_MASK = 0xFFFFFFFF


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 of a key, as its default partitioner computes it (aiokafka's, unpacking words at once).

    The same value as `aiokafka.partitioner.murmur2` (a test compares them), in about half the time: the
    sink places every output record itself, so this runs once per record.
    """
    length = len(data)
    h = (0x9747B28C ^ length) & _MASK
    words = length >> 2
    if words:
        for k in struct.unpack_from(f"<{words}I", data):
            k = (k * _M) & _MASK
            k ^= k >> 24
            h = ((h * _M) & _MASK) ^ ((k * _M) & _MASK)
    tail = length & 3
    if tail:
        base = length & ~3
        if tail >= 3:
            h ^= data[base + 2] << 16
        if tail >= 2:
            h ^= data[base + 1] << 8
        h ^= data[base]
        h = (h * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    h ^= h >> 15
    return h
