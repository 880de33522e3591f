"""`acw worker`: the Faust shell around the core. It decodes, calls the core, checkpoints, sends.

Two stages run in one app. The interval stage consumes call events (and their re-keyed copies) and
runs one `AcwPipeline` per input partition: intervals, interval alerts and pane aggregates. The merge
stage consumes the panes and runs one `WindowMerger` per partition of the panes topic: window
aggregates and window alerts. Each stage checkpoints its cores to its own changelog-backed table.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import faust
import orjson
from faust.types import EventT, StreamT

from streams.domain.aggregates import WindowKey, WindowStats
from streams.domain.events import EventType, InvalidEvent
from streams.domain.merge import MergeOutput, WindowMerger
from streams.domain.pipeline import AcwPipeline, AggregationConfig, Output
from streams.domain.processor import Disposition, RulesConfig
from streams.metrics import Metrics
from streams.serialization import codec, decode_call_event
from streams.settings import Settings

log = logging.getLogger("acw.worker")

PROGRESS_KEY = b"~progress"
# A partition's checkpoint is written as one record batch of at most this many (uncompressed) bytes.
STATE_BATCH_BYTES = 32 * 1024 * 1024


@dataclass
class PartitionRuntime:
    """One partition's core and what has not been checkpointed yet."""

    partition: int
    core: Any  # AcwPipeline or WindowMerger
    offsets: dict[str, int] = field(default_factory=dict)
    unacked: list[EventT] = field(default_factory=list)
    # Source topics whose delivery is known to continue the restored state.
    synced: set[str] = field(default_factory=set)
    last_event_wall: float = field(default_factory=time.monotonic)
    last_advance_wall: float = field(default_factory=time.monotonic)
    # Outputs of one partition are sent in the order they were produced, even from the timer.
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


@dataclass(frozen=True)
class _Snapshot:
    """One partition's state as of a checkpoint, and the events it covers."""

    runtime: PartitionRuntime
    entries: dict[str, Any]
    meta: dict[str, Any]
    unacked: list[EventT]


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


class Stage:
    """One agent's partitions: their cores, ownership, checkpoints and catch-up; subclasses handle records."""

    name = ""

    def __init__(self, worker: AcwWorker, topics: tuple[str, ...]) -> None:
        self.worker = worker
        self.settings = worker.settings
        self.metrics = worker.metrics
        self.topics = topics
        self.runtimes: dict[int, PartitionRuntime] = {}
        self.owned: set[int] | None = None  # None until the first assignment
        self.stream: StreamT | None = None
        self.busy = 0  # coroutines between taking a record and having sent all its outputs
        self.checkpointing: asyncio.Future[None] | None = None
        self.since_checkpoint = 0
        self.last_checkpoint = time.monotonic()
        app = worker.app
        raw = {"key_type": bytes, "value_type": bytes, "key_serializer": "raw", "value_serializer": "raw"}
        self.topic = app.topic(*topics, **raw)  # type: ignore[arg-type]
        # Written by `_persist` only, straight to the changelog; the local store is read when a partition
        # is (re)assigned, after Faust recovered it from the changelog. This also lets the timer checkpoint.
        self.table = app.Table(
            f"{self.name}-state",
            default=None,
            partitions=self.settings.partitions,
            extra_topic_configs={"max.message.bytes": str(STATE_BATCH_BYTES)},
        )
        app.agent(self.topic, name=self.name)(self.consume)

    # --- the agent -------------------------------------------------------------------------

    async def consume(self, stream: StreamT) -> None:
        manual = stream.noack()
        self.stream = manual
        async for event in manual.events():
            partition = event.message.partition
            if partition not in self.runtimes and self.owned is not None and partition not in self.owned:
                continue  # fetched before a rebalance moved the partition away: its new owner processes it
            rt = self.runtime(partition)
            self.busy += 1
            try:
                if event.message.topic not in rt.synced:
                    await self._continue_state(rt, event.message)
                await self.handle(rt, event)
            finally:
                self.busy -= 1
            rt.unacked.append(event)
            self.since_checkpoint += 1
            due = self.since_checkpoint >= self.settings.checkpoint_events or self.checkpoint_due()
            if due and self.checkpointing is None and not self.busy:
                self.busy += 1
                try:
                    await self.send_updates()
                finally:
                    self.busy -= 1
                self.start_checkpoint()

    async def handle(self, rt: PartitionRuntime, event: Any) -> None:
        """Apply one record and send what it produced."""
        raise NotImplementedError

    async def send_updates(self) -> None:
        """Send the update records that accumulated since the last checkpoint."""

    def new_core(self, meta: dict[str, Any] | None, entries: dict[str, Any]) -> Any:
        """A core restored from its checkpoint."""
        raise NotImplementedError

    def is_new(self, rt: PartitionRuntime, message: Any) -> bool:
        """Record the offset; False when the restored checkpoint already holds this record."""
        if message.offset <= rt.offsets.get(message.topic, -1):
            self.metrics.redelivered.inc()
            return False
        rt.offsets[message.topic] = message.offset
        return True

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

    async def _plain_consumer(self) -> Any:
        """A started aiokafka consumer outside Faust's group, for catch-up reads."""
        from aiokafka import AIOKafkaConsumer

        consumer = AIOKafkaConsumer(bootstrap_servers=self.settings.bootstrap_servers, enable_auto_commit=False)
        await consumer.start()
        return consumer

    async def _catch_up(self, rt: PartitionRuntime, tp: Any, start: int, stop: int) -> None:
        """Apply records [start, stop) of one partition, read outside Faust's consumer."""
        from aiokafka import TopicPartition

        consumer = await self._plain_consumer()
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
                    message = _CaughtUpMessage(tp.topic, tp.partition, record.offset, record.key, record.value)
                    await self.handle(rt, _CaughtUp(message))
                    position = record.offset + 1
        finally:
            await consumer.stop()

    async def _earliest(self, tp: Any) -> int:
        """The partition's log start, asked with a plain consumer (Faust's can answer its committed offset)."""
        from aiokafka import TopicPartition

        consumer = await self._plain_consumer()
        try:
            ktp = TopicPartition(tp.topic, tp.partition)
            return int((await consumer.beginning_offsets([ktp]))[ktp])
        finally:
            await consumer.stop()

    # --- durable state ---------------------------------------------------------------------

    def checkpoint_due(self) -> bool:
        """Whether unacknowledged work is older than the checkpoint interval."""
        return (
            self.since_checkpoint > 0
            and time.monotonic() - self.last_checkpoint >= self.settings.checkpoint_interval_seconds
        )

    def start_checkpoint(self) -> None:
        """Snapshot now, if no record is half handled and no checkpoint is running; persist in the background."""
        if self.checkpointing is not None or self.busy:
            return
        self.checkpointing = asyncio.ensure_future(self._persist(self._snapshot()))

    def _snapshot(self) -> list[_Snapshot]:
        """Every owned partition's changes, stream state and offsets, taken synchronously between records.

        Every output of the records in it has been handed to the producer, so the flush in `_persist`
        delivers them before the state that implies them is written.
        """
        snapshot = []
        for rt in self.runtimes.values():
            if self._owns(rt.partition) and (rt.unacked or rt.core.has_dirty()):
                meta = {"core": rt.core.meta(), "offsets": dict(rt.offsets)}
                snapshot.append(_Snapshot(rt, rt.core.take_dirty(), meta, rt.unacked))
                rt.unacked = []
        self.since_checkpoint = 0
        self.last_checkpoint = time.monotonic()
        return snapshot

    async def _persist(self, snapshot: list[_Snapshot]) -> None:
        """Outputs first, then state, then source offsets: a crash at any point only repeats outputs.

        Each partition's entries and its meta (stream state and source offsets) go to the changelog as
        one record batch, which Kafka appends whole or not at all: a crash mid-write cannot leave
        entries newer than the offsets stored beside them. A partition revoked since the snapshot is
        neither written nor acknowledged, so its committed offset never passes the state its next
        owner restores.
        """
        written: list[_Snapshot] = []
        try:
            await self.worker.app.producer.flush()
            producer = await self.worker.state_producer()
            topic = self.table.changelog_topic.get_topic_name()
            sent = []
            for snap in snapshot:
                if not self._current(snap.runtime):
                    continue  # revoked or replaced: its next owner restores from the last written state
                sent += await self._write_batch(producer, topic, snap)
                written.append(snap)
            await asyncio.gather(*sent)
            assert self.stream is not None
            for snap in written:
                if self._current(snap.runtime):
                    for event in snap.unacked:
                        await self.stream.ack(event)
            self.metrics.checkpoints.labels(self.name).inc()
        except Exception:
            log.exception("%s checkpoint failed; its records stay unacked and will be redelivered", self.name)
            for snap in snapshot:  # try again with everything at the next checkpoint
                snap.runtime.core.mark_dirty(snap.entries)
                snap.runtime.unacked[:0] = snap.unacked
        finally:
            self.checkpointing = None

    async def _write_batch(self, producer: Any, topic: str, snap: _Snapshot) -> list[Any]:
        """One partition's checkpoint as one record batch (more only past STATE_BATCH_BYTES, with a warning).

        Keys are the JSON strings the table's key codec reads; None values delete. The meta comes last,
        so even a checkpoint split over batches never stores offsets ahead of its entries.
        """
        p = snap.runtime.partition
        records = [(f"{p}|{entry}", value) for entry, value in snap.entries.items()]
        records.append((f"{p}|m", snap.meta))
        futures = []
        batch = producer.create_batch()
        for key, value in records:
            k, v = orjson.dumps(key), None if value is None else orjson.dumps(value)
            if batch.append(key=k, value=v, timestamp=None) is None:
                log.warning("%s: checkpoint of partition %d spans several batches", self.name, p)
                futures.append(await producer.send_batch(batch, topic, partition=p))
                batch = producer.create_batch()
                if batch.append(key=k, value=v, timestamp=None) is None:
                    raise ValueError(f"state entry {key} is larger than a record batch")
        futures.append(await producer.send_batch(batch, topic, partition=p))
        return futures

    def _current(self, rt: PartitionRuntime) -> bool:
        """Whether this core still owns its partition (not revoked, not replaced)."""
        return self._owns(rt.partition) and self.runtimes.get(rt.partition) is rt

    def runtime(self, partition: int) -> PartitionRuntime:
        """The partition's runtime, restored from the table on first use."""
        rt = self.runtimes.get(partition)
        if rt is None:
            rt = self.runtimes[partition] = self._restore(partition)
        return rt

    def _restore(self, partition: int) -> PartitionRuntime:
        prefix = f"{partition}|"
        entries = {k[len(prefix) :]: v for k, v in self.table.items() if k.startswith(prefix) and v is not None}
        meta = entries.pop("m", None)
        core = self.new_core(meta["core"] if meta else None, entries)
        offsets = dict(meta["offsets"]) if meta else {}
        log.info("%s: restored partition=%d entries=%d offsets=%s", self.name, partition, len(entries), offsets)
        return PartitionRuntime(partition, core, offsets)

    def _owns(self, partition: int) -> bool:
        return self.owned is None or partition in self.owned

    def on_assigned(self, assigned: set[Any]) -> None:
        """Keep the cores of retained partitions (their memory is newer than any store); drop the rest."""
        self.owned = {tp.partition for tp in assigned if tp.topic in self.topics}
        for partition, rt in list(self.runtimes.items()):
            if partition not in self.owned:
                del self.runtimes[partition]
            else:
                rt.synced.clear()  # Faust re-seeks retained partitions too: check where delivery resumes
        log.info("%s: assigned partitions %s", self.name, sorted(self.owned))

    def on_revoked(self, revoked: set[Any]) -> None:
        """Stop checkpointing revoked partitions; keep their cores in case they are assigned back."""
        if self.owned is not None:
            self.owned -= {tp.partition for tp in revoked if tp.topic in self.topics}


class IntervalStage(Stage):
    """Call events in; intervals, interval alerts, dead letters and pane aggregates out."""

    name = "acw-intervals"

    def __init__(self, worker: AcwWorker) -> None:
        s = worker.settings
        super().__init__(worker, (s.input_topic, s.rekey_topic))
        self._consumed = {t: self.metrics.events_consumed.labels(t.name) for t in EventType}
        self._encode_interval = codec("acw_interval").encode

    def new_core(self, meta: dict[str, Any] | None, entries: dict[str, Any]) -> AcwPipeline:
        return AcwPipeline.restore(self.worker.rules, self.worker.aggregation, meta, entries)

    async def handle(self, rt: PartitionRuntime, event: Any) -> None:
        message = event.message
        rt.last_event_wall = rt.last_advance_wall = time.monotonic()
        if not self.is_new(rt, message):
            return
        try:
            call = decode_call_event(event.value, self.settings.input_format)
        except InvalidEvent as exc:
            self.metrics.events_consumed.labels("invalid").inc()
            await self.worker.dead_letter(message, exc.reason, exc.detail)
            return
        self._consumed[call.event_type].inc()
        if message.key != call.agent_id.encode():
            self.metrics.rekeyed.inc()
            await self.worker.send(self.settings.rekey_topic, call.agent_id.encode(), event.value)
            return
        step, out = rt.core.offer(call)
        if step.disposition is Disposition.DUPLICATE:
            self.metrics.duplicates.inc()
        elif step.disposition is Disposition.LATE:
            self.metrics.late.inc()
            await self.worker.dead_letter(
                message,
                "late",
                f"event at {call.occurred_at_ms} is behind stream time "
                f"{rt.core.processor.watermark_ms} by more than the allowed lateness",
            )
        if out:
            async with rt.lock:
                await self.emit(rt, out, message)

    async def emit(self, rt: PartitionRuntime, out: Output, message: Any = None) -> None:
        """Send one step's outputs in order: intervals, alerts, rejects, final panes, then progress."""
        worker = self.worker
        s = self.settings
        now = time.time()
        for interval in out.intervals:
            await worker.send(
                s.intervals_topic, interval.agent_id.encode(), self._encode_interval(interval.to_record())
            )
            self.metrics.intervals.labels(interval.end_reason.value).inc()
            self.metrics.interval_duration.labels(interval.channel.value).observe(interval.acw_seconds)
            self.metrics.processing_lag.observe(max(0.0, now - interval.ended_at_ms / 1000))
        await worker.send_alerts(out.alerts)
        for interval, reason in out.rejected:
            value = self._encode_interval(interval.to_record())
            await worker.dead_letter(message, reason, "the interval's window was already final", value=value)
        for wk, stats in out.final_panes:
            await self._send_pane(rt.partition, wk, stats)
        if out.progress is not None:
            value = orjson.dumps({"src": rt.partition, "ct": out.progress})
            for partition in range(s.partitions):
                await worker.app.producer.send(s.panes_topic, PROGRESS_KEY, value, partition, None, None)
        wm = rt.core.processor.watermark_ms
        if wm is not None:
            self.metrics.watermark.labels(str(rt.partition)).set(wm / 1000)

    async def _send_pane(self, partition: int, wk: WindowKey, stats: WindowStats) -> None:
        value = orjson.dumps({"src": partition, "k": wk.to_list(), "s": stats.to_dict()})
        await self.worker.send(self.settings.panes_topic, wk.group().encode(), value)

    async def send_updates(self) -> None:
        for rt in list(self.runtimes.values()):
            if self._owns(rt.partition):
                for wk, stats in rt.core.take_updates():
                    await self._send_pane(rt.partition, wk, stats)

    async def advance_idle(self) -> None:
        """Wall-clock only moves idle partitions forward, so a stuck agent still times out live."""
        assigned = {
            tp.partition for tp in self.worker.app.assignor.assigned_actives() if tp.topic == self.settings.input_topic
        }
        for partition in assigned - self.runtimes.keys():
            self.runtime(partition)
        now = time.monotonic()
        for rt in list(self.runtimes.values()):
            wm = rt.core.processor.watermark_ms
            if wm is None or now - rt.last_event_wall < self.settings.idle_advance_after_seconds:
                continue
            step_ms = round((now - rt.last_advance_wall) * 1000)
            rt.last_advance_wall = now
            self.busy += 1
            try:
                out = rt.core.advance(wm + step_ms)
                self.since_checkpoint += 1
                async with rt.lock:
                    await self.emit(rt, out)
            finally:
                self.busy -= 1


class MergeStage(Stage):
    """Panes of every source partition in; window aggregates and window alerts out."""

    name = "acw-merge"

    def __init__(self, worker: AcwWorker) -> None:
        super().__init__(worker, (worker.settings.panes_topic,))
        self._encode_aggregate = codec("acw_aggregate").encode

    def new_core(self, meta: dict[str, Any] | None, entries: dict[str, Any]) -> WindowMerger:
        return WindowMerger.restore(self.worker.aggregation, self.settings.partitions, meta, entries)

    async def handle(self, rt: PartitionRuntime, event: Any) -> None:
        if not self.is_new(rt, event.message):
            return
        try:
            record = orjson.loads(event.value)
            if "ct" in record:
                out = rt.core.offer_progress(record["src"], record["ct"])
            else:
                rt.core.offer_pane(record["src"], WindowKey.from_list(record["k"]), WindowStats.from_dict(record["s"]))
                return
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            await self.worker.dead_letter(event.message, "bad_pane", f"cannot read a pane record: {exc}")
            return
        await self._send(out)

    async def _send(self, out: MergeOutput) -> None:
        for key, record in out.aggregates:
            await self.worker.send(self.settings.aggregates_topic, key.encode(), self._encode_aggregate(record))
            self.metrics.aggregates.labels("true" if record["final"] else "false").inc()
        await self.worker.send_alerts(out.alerts)

    async def send_updates(self) -> None:
        for rt in list(self.runtimes.values()):
            if self._owns(rt.partition):
                await self._send(MergeOutput(aggregates=rt.core.take_updates()))


class AcwWorker:
    """Builds the Faust app and its two stages; owns the outputs both send through."""

    def __init__(self, settings: Settings, metrics: Metrics) -> None:
        self.settings = settings
        self.metrics = metrics
        self.rules: RulesConfig = settings.rules()
        self.aggregation: AggregationConfig = settings.aggregation()
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
            producer_max_request_size=4_000_000,
            broker_commit_interval=1.0,
            table_cleanup_interval=3600.0,
            stream_wait_empty=False,
            stream_buffer_maxsize=65536,
            broker_max_poll_records=5000,
            consumer_max_fetch_size=STATE_BATCH_BYTES,
            key_serializer="raw",
            value_serializer="raw",
        )
        self.intervals = IntervalStage(self)
        self.merge = MergeStage(self)
        self.stages: tuple[Stage, ...] = (self.intervals, self.merge)
        self._encode_alert = codec("acw_alert").encode
        self._encode_dead = codec("dead_letter").encode
        self.app.timer(1.0)(self._tick)
        self.app.on_partitions_revoked.connect(self._on_revoked)
        self.app.on_partitions_assigned.connect(self._on_assigned)
        self.app.task(self._quiet_library_logs)
        self._state_producer: Any = None

    async def state_producer(self) -> Any:
        """The producer of checkpoint batches, started on first use."""
        if self._state_producer is None:
            from aiokafka import AIOKafkaProducer

            producer = AIOKafkaProducer(
                bootstrap_servers=self.settings.bootstrap_servers,
                acks="all",
                compression_type="gzip",
                max_batch_size=STATE_BATCH_BYTES,
                max_request_size=STATE_BATCH_BYTES + 1024 * 1024,
            )
            await producer.start()
            self._state_producer = producer
        return self._state_producer

    async def _quiet_library_logs(self) -> None:
        """Faust, mode and aiokafka log per message at DEBUG/INFO; keep them at WARNING unless asked for more."""
        level = logging.getLevelName(self.settings.log_level.upper())
        for name in ("faust", "mode", "aiokafka", "kafka"):
            logging.getLogger(name).setLevel(max(level, logging.WARNING) if level > logging.DEBUG else level)
        logging.getLogger().setLevel(level)

    async def send(self, topic: str, key: bytes, value: bytes) -> None:
        """Hand a record to the producer; delivery is awaited by the next checkpoint's flush."""
        await self.app.producer.send(topic, key, value, None, None, None)

    async def send_alerts(self, alerts: list[dict[str, Any]]) -> None:
        """Alert transitions, keyed by alert_id so an episode's records stay in order."""
        for alert in alerts:
            await self.send(self.settings.alerts_topic, alert["alert_id"].encode(), self._encode_alert(alert))
            self.metrics.alerts.labels(alert["rule"], alert["severity"], alert["state"]).inc()

    async def dead_letter(self, message: Any, reason: str, detail: str, value: bytes | None = None) -> None:
        """Send a rejected record with its reason and where it came from."""
        self.metrics.dead_letters.labels(reason).inc()
        record = {
            "reason": reason,
            "detail": detail,
            "source_topic": message.topic if message is not None else self.settings.intervals_topic,
            "source_partition": message.partition if message is not None else -1,
            "source_offset": message.offset if message is not None else -1,
            "key": message.key if message is not None else None,
            "value": value if value is not None else message.value if message is not None else None,
        }
        key = f"{record['source_topic']}:{record['source_partition']}:{record['source_offset']}".encode()
        await self.send(self.settings.dead_letter_topic, key, self._encode_dead(record))

    async def _on_revoked(self, sender: Any, revoked: set[Any], **kwargs: Any) -> None:
        for stage in self.stages:
            stage.on_revoked(revoked)

    async def _on_assigned(self, sender: Any, assigned: set[Any], **kwargs: Any) -> None:
        for stage in self.stages:
            stage.on_assigned(assigned)

    async def _tick(self) -> None:
        """Every second: checkpoint what is due even without new records, and advance idle partitions."""
        try:
            for stage in self.stages:
                if stage.checkpoint_due():
                    stage.start_checkpoint()
            if self.settings.idle_advance_after_seconds > 0:
                await self.intervals.advance_idle()
            self.metrics.open_intervals.set(sum(len(rt.core.open) for rt in self.intervals.runtimes.values()))
        except Exception:  # a timer that raises would crash the worker; log and try next tick
            log.exception("timer tick failed")


def run_worker(settings: Settings, metrics: Metrics) -> None:
    """Start the Faust worker in this process until it is stopped."""
    from faust import Worker

    from streams.kafka_io import create_topics

    created = asyncio.run(create_topics(settings))
    if created:
        log.warning("created missing topics: %s", ", ".join(created))
    worker = AcwWorker(settings, metrics)
    Worker(worker.app, loglevel=settings.log_level, quiet=True).execute_from_commandline()
