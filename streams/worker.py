"""`acw worker`: the Faust shell around the core. It decodes, calls the Processor, checkpoints, sends."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import faust
import orjson
from faust.types import EventT, StreamT

from streams.domain.events import EventType, InvalidEvent
from streams.domain.intervals import AcwInterval
from streams.domain.processor import Disposition, Processor, RulesConfig
from streams.metrics import Metrics
from streams.serialization import codec, decode_call_event
from streams.settings import Settings

log = logging.getLogger("acw.worker")

STATE_TABLE = "acw-state"


@dataclass
class PartitionRuntime:
    """One input partition's processor and what has not been checkpointed yet."""

    partition: int
    processor: Processor
    offsets: dict[str, int] = field(default_factory=dict)
    unacked: list[EventT] = field(default_factory=list)
    # Source topics whose delivery is known to continue the restored state.
    synced: set[str] = field(default_factory=set)
    last_event_wall: float = field(default_factory=time.monotonic)
    last_advance_wall: float = field(default_factory=time.monotonic)


@dataclass(frozen=True)
class _CaughtUpMessage:
    """The parts of a Kafka message `_handle` reads, for records read outside Faust."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


@dataclass(frozen=True)
class _CaughtUp:
    """An event-like wrapper of a caught-up record; it is never acknowledged through Faust."""

    message: _CaughtUpMessage

    @property
    def value(self) -> bytes | None:
        return self.message.value


@dataclass(frozen=True)
class _Snapshot:
    """One partition's state as of a checkpoint, and the events it covers."""

    runtime: PartitionRuntime
    dirty: dict[str, dict[str, Any]]
    meta: dict[str, Any]
    unacked: list[EventT]


def agent_key(partition: int, agent_id: str) -> str:
    """Table key of one agent's state."""
    return f"a|{partition}|{agent_id}"


def meta_key(partition: int) -> str:
    """Table key of one partition's stream-level state and checkpointed offsets."""
    return f"m|{partition}"


class AcwWorker:
    """Builds the Faust app, its topics, the state table and the agent; holds the partition runtimes."""

    def __init__(self, settings: Settings, metrics: Metrics) -> None:
        self.settings = settings
        self.metrics = metrics
        self.rules: RulesConfig = settings.rules()
        self.runtimes: dict[int, PartitionRuntime] = {}
        self._stream: StreamT | None = None
        self._since_checkpoint = 0
        self._last_checkpoint = time.monotonic()
        self._checkpointing: asyncio.Future[None] | None = None
        # Coroutines between taking an event (or an idle advance) and having sent all its outputs; a
        # snapshot is only consistent with the outputs already handed to the producer when this is 0.
        self._busy = 0
        self._consumed = {t: metrics.events_consumed.labels(t.name) for t in EventType}
        # Input partitions this worker may checkpoint; None until the first assignment.
        self._owned: set[int] | None = None
        self.app = faust.App(
            settings.app_id,
            broker=[f"kafka://{s.strip()}" for s in settings.bootstrap_servers.split(",")],
            store=settings.store,
            datadir=settings.data_dir,
            topic_partitions=settings.partitions,
            topic_replication_factor=1,
            web_enabled=False,
            consumer_auto_offset_reset="earliest",
            producer_acks=-1,
            producer_linger_ms=10,
            producer_max_batch_size=262144,
            broker_commit_interval=1.0,
            table_cleanup_interval=3600.0,
            stream_wait_empty=False,
            stream_buffer_maxsize=65536,
            broker_max_poll_records=5000,
            key_serializer="raw",
            value_serializer="raw",
        )
        raw = {"key_type": bytes, "value_type": bytes, "key_serializer": "raw", "value_serializer": "raw"}
        self.input = self.app.topic(settings.input_topic, settings.rekey_topic, **raw)  # type: ignore[arg-type]
        self.table = self.app.Table(STATE_TABLE, default=None, partitions=settings.partitions)
        self.app.agent(self.input, name="acw-intervals")(self._consume)
        self.app.timer(1.0)(self._tick)
        self.app.on_partitions_revoked.connect(self._on_revoked)
        self.app.on_partitions_assigned.connect(self._on_assigned)
        self.app.task(self._quiet_library_logs)

    async def _quiet_library_logs(self) -> None:
        """Faust, mode and aiokafka log per message at DEBUG/INFO; keep them at WARNING unless asked for more."""
        level = logging.getLevelName(self.settings.log_level.upper())
        for name in ("faust", "mode", "aiokafka", "kafka"):
            logging.getLogger(name).setLevel(max(level, logging.WARNING) if level > logging.DEBUG else level)
        logging.getLogger().setLevel(level)

    # --- the agent ---------------------------------------------------------------------------

    async def _consume(self, stream: StreamT) -> None:
        manual = stream.noack()
        self._stream = manual
        async for event in manual.events():
            partition = event.message.partition
            if partition not in self.runtimes and self._owned is not None and partition not in self._owned:
                continue  # fetched before a rebalance moved the partition away: its new owner processes it
            rt = self._runtime(partition)
            self._busy += 1
            try:
                if event.message.topic not in rt.synced:
                    await self._continue_state(rt, event.message)
                await self._handle(rt, event)
            finally:
                self._busy -= 1
            rt.unacked.append(event)
            self._since_checkpoint += 1
            if self._since_checkpoint >= self.settings.checkpoint_events or self._checkpoint_due():
                self._start_checkpoint()

    async def _continue_state(self, rt: PartitionRuntime, message: Any) -> None:
        """Make a partition's first delivery continue its restored state, catching up on skipped records.

        Faust can commit offsets this worker never acknowledged (around rebalances it counts dropped
        buffers and offset gaps as done). The offsets stored with the state are the truth: when delivery
        starts past them, the records in between are read with a plain consumer and applied first.
        """
        topic = message.topic
        done = rt.offsets.get(topic)
        expected = done + 1 if done is not None else await self._earliest(message.tp)
        if message.offset > expected:
            log.warning(
                "partition %s:%d resumed at offset %d, past its restored state: catching up from %d",
                topic,
                rt.partition,
                message.offset,
                expected,
            )
            self.metrics.rewinds.inc()
            await self._catch_up(rt, message.tp, expected, message.offset)
        rt.synced.add(topic)

    async def _catch_up(self, rt: PartitionRuntime, tp: Any, start: int, stop: int) -> None:
        """Apply records [start, stop) of one partition, read outside Faust's consumer."""
        from aiokafka import AIOKafkaConsumer, TopicPartition

        consumer = AIOKafkaConsumer(bootstrap_servers=self.settings.bootstrap_servers, enable_auto_commit=False)
        await consumer.start()
        try:
            ktp = TopicPartition(tp.topic, tp.partition)
            consumer.assign([ktp])
            consumer.seek(ktp, start)
            position = start
            while position < stop:
                batch = await consumer.getmany(ktp, timeout_ms=1000, max_records=5000)
                for record in batch.get(ktp, []):
                    if record.offset >= stop:
                        break
                    await self._handle(
                        rt, _CaughtUp(_CaughtUpMessage(tp.topic, tp.partition, record.offset, record.key, record.value))
                    )
                    position = record.offset + 1
        finally:
            await consumer.stop()

    async def _earliest(self, tp: Any) -> int:
        return int((await self.app.consumer.earliest_offsets(tp))[tp])

    async def _handle(self, rt: PartitionRuntime, event: EventT) -> None:
        message = event.message
        rt.last_event_wall = rt.last_advance_wall = time.monotonic()
        if message.offset <= rt.offsets.get(message.topic, -1):
            self.metrics.redelivered.inc()
            return
        rt.offsets[message.topic] = message.offset
        try:
            call = decode_call_event(event.value, self.settings.input_format)
        except InvalidEvent as exc:
            self.metrics.events_consumed.labels("invalid").inc()
            await self._dead_letter(message, exc.reason, exc.detail)
            return
        self._consumed[call.event_type].inc()
        if message.key != call.agent_id.encode():
            self.metrics.rekeyed.inc()
            await self._send(self.settings.rekey_topic, call.agent_id.encode(), event.value)
            return
        step = rt.processor.offer(call)
        if step.disposition is Disposition.DUPLICATE:
            self.metrics.duplicates.inc()
        elif step.disposition is Disposition.LATE:
            self.metrics.late.inc()
            await self._dead_letter(
                message,
                "late",
                f"event at {call.occurred_at_ms} is behind stream time "
                f"{rt.processor.watermark_ms} by more than the allowed lateness",
            )
        await self._emit(rt, step.intervals)

    async def _emit(self, rt: PartitionRuntime, intervals: list[AcwInterval]) -> None:
        encode = codec("acw_interval").encode
        now = time.time()
        for interval in intervals:
            await self._send(self.settings.intervals_topic, interval.agent_id.encode(), encode(interval.to_record()))
            self.metrics.intervals.labels(interval.end_reason.value).inc()
            self.metrics.interval_duration.labels(interval.channel.value).observe(interval.acw_seconds)
            self.metrics.processing_lag.observe(max(0.0, now - interval.ended_at_ms / 1000))
        if rt.processor.watermark_ms is not None:
            self.metrics.watermark.labels(str(rt.partition)).set(rt.processor.watermark_ms / 1000)

    async def _dead_letter(self, message: Any, reason: str, detail: str) -> None:
        self.metrics.dead_letters.labels(reason).inc()
        record = {
            "reason": reason,
            "detail": detail,
            "source_topic": message.topic,
            "source_partition": message.partition,
            "source_offset": message.offset,
            "key": message.key,
            "value": message.value,
        }
        key = f"{message.topic}:{message.partition}:{message.offset}".encode()
        await self._send(self.settings.dead_letter_topic, key, codec("dead_letter").encode(record))

    async def _send(self, topic: str, key: bytes, value: bytes) -> None:
        """Hand a record to the producer; delivery is awaited by the next checkpoint's flush."""
        await self.app.producer.send(topic, key, value, None, None, None)

    # --- durable state -------------------------------------------------------------------------

    def _checkpoint_due(self) -> bool:
        return (
            self._since_checkpoint > 0
            and time.monotonic() - self._last_checkpoint >= self.settings.checkpoint_interval_seconds
        )

    def _start_checkpoint(self) -> None:
        """Snapshot now, if no event is half-handled and no checkpoint is running; persist in the background."""
        if self._checkpointing is not None or self._busy:
            return
        self._checkpointing = asyncio.ensure_future(self._persist(self._snapshot()))

    def _snapshot(self) -> list[_Snapshot]:
        """Every owned partition's changes, stream state and offsets, taken synchronously between events.

        Every output of the events in it has been handed to the producer, so the flush in `_persist`
        delivers them before the state that implies them is written.
        """
        snapshot = []
        for rt in self.runtimes.values():
            if self._owns(rt.partition) and (rt.unacked or rt.processor.has_dirty()):
                meta = {"proc": rt.processor.meta(), "offsets": dict(rt.offsets)}
                snapshot.append(_Snapshot(rt, rt.processor.take_dirty(), meta, rt.unacked))
                rt.unacked = []
        self._since_checkpoint = 0
        self._last_checkpoint = time.monotonic()
        return snapshot

    async def _persist(self, snapshot: list[_Snapshot]) -> None:
        """Outputs first, then state, then source offsets: a crash at any point only repeats outputs.

        A partition revoked since the snapshot is neither written nor acknowledged, so its committed
        offset never passes the state its next owner restores.
        """
        written: list[_Snapshot] = []
        try:
            await self.app.producer.flush()
            changelog = self.table.changelog_topic
            for snap in snapshot:
                rt = snap.runtime
                if not self._current(rt):
                    continue  # revoked or replaced: its next owner restores from the last written state
                for agent_id, data in snap.dirty.items():
                    await self._store(changelog, rt.partition, agent_key(rt.partition, agent_id), data)
                await self._store(changelog, rt.partition, meta_key(rt.partition), snap.meta)
                written.append(snap)
            await self.app.producer.flush()
            for snap in written:
                if self._current(snap.runtime):
                    for event in snap.unacked:
                        await self._stream.ack(event)
            self.metrics.checkpoints.inc()
            self.metrics.open_intervals.set(sum(len(r.processor.open_intervals()) for r in self.runtimes.values()))
        except Exception:
            log.exception("checkpoint failed; its events stay unacked and will be redelivered")
            for snap in snapshot:  # try again with everything at the next checkpoint
                snap.runtime.processor.mark_dirty(snap.dirty)
                snap.runtime.unacked[:0] = snap.unacked
        finally:
            self._checkpointing = None

    def _current(self, rt: PartitionRuntime) -> bool:
        """Whether this processor still owns its partition (not revoked, not replaced)."""
        return self._owns(rt.partition) and self.runtimes.get(rt.partition) is rt

    async def _store(self, changelog: Any, partition: int, key: str, value: dict[str, Any]) -> None:
        """Write one state entry to the changelog only.

        The local store is read only when a partition is (re)assigned, after Faust has recovered it from
        this changelog; so it need not be written here, which also lets the timer checkpoint (the RocksDB
        store can only be written inside stream iteration). orjson text is what the table's json codec
        reads back, at a fraction of its cost.
        """
        await changelog.send(
            key=key, value=orjson.dumps(value), partition=partition, key_serializer="json", value_serializer="raw"
        )

    def _runtime(self, partition: int) -> PartitionRuntime:
        rt = self.runtimes.get(partition)
        if rt is None:
            rt = self.runtimes[partition] = self._restore(partition)
        return rt

    def _restore(self, partition: int) -> PartitionRuntime:
        prefix = f"a|{partition}|"
        agents = {k[len(prefix) :]: v for k, v in self.table.items() if k.startswith(prefix) and v is not None}
        meta = self.table.get(meta_key(partition))
        processor = Processor.restore(self.rules, meta["proc"] if meta else None, agents)
        offsets = dict(meta["offsets"]) if meta else {}
        log.info("restored partition=%d agents=%d offsets=%s", partition, len(agents), offsets)
        return PartitionRuntime(partition, processor, offsets)

    def _owns(self, partition: int) -> bool:
        return self._owned is None or partition in self._owned

    def _input_partitions(self, tps: set[Any]) -> set[int]:
        return {tp.partition for tp in tps if tp.topic in (self.settings.input_topic, self.settings.rekey_topic)}

    async def _on_revoked(self, sender: Any, revoked: set[Any], **kwargs: Any) -> None:
        """Stop checkpointing revoked partitions; keep their processors in case they are assigned back."""
        if self._owned is not None:
            self._owned -= self._input_partitions(revoked)

    async def _on_assigned(self, sender: Any, assigned: set[Any], **kwargs: Any) -> None:
        """Keep the processors of retained partitions (their memory is newer than any store); drop the rest."""
        self._owned = self._input_partitions(assigned)
        for partition, rt in list(self.runtimes.items()):
            if partition not in self._owned:
                del self.runtimes[partition]
            else:
                rt.synced.clear()  # Faust re-seeks retained partitions too: check where delivery resumes
        log.info("assigned input partitions %s", sorted(self._owned))

    # --- wall-clock only moves idle partitions forward -----------------------------------------

    async def _tick(self) -> None:
        """Every second: checkpoint what is due even without new events, and advance idle partitions."""
        try:
            if self._checkpoint_due():
                self._start_checkpoint()
            if self.settings.idle_advance_after_seconds > 0:
                await self._advance_idle_partitions()
        except Exception:  # a timer that raises would crash the worker; log and try next tick
            log.exception("timer tick failed")

    async def _advance_idle_partitions(self) -> None:
        """Wall-clock only moves idle partitions forward, so a stuck agent still times out live."""
        assigned = {
            tp.partition for tp in self.app.assignor.assigned_actives() if tp.topic == self.settings.input_topic
        }
        for partition in assigned - self.runtimes.keys():
            self._runtime(partition)
        now = time.monotonic()
        for rt in list(self.runtimes.values()):
            wm = rt.processor.watermark_ms
            if wm is None or now - rt.last_event_wall < self.settings.idle_advance_after_seconds:
                continue
            step_ms = round((now - rt.last_advance_wall) * 1000)
            rt.last_advance_wall = now
            self._busy += 1
            try:
                intervals = rt.processor.advance(wm + step_ms)
                self._since_checkpoint += len(intervals)
                await self._emit(rt, intervals)
            finally:
                self._busy -= 1


def run_worker(settings: Settings, metrics: Metrics) -> None:
    """Start the Faust worker in this process until it is stopped."""
    from faust import Worker

    from streams.kafka_io import create_topics

    created = asyncio.run(create_topics(settings))
    if created:
        log.warning("created missing topics: %s", ", ".join(created))
    worker = AcwWorker(settings, metrics)
    Worker(worker.app, loglevel=settings.log_level, quiet=True).execute_from_commandline()
