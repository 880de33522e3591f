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
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from faust.types import StreamT

from streams import logs
from streams.connection import BrokerWatch, client_options, faust_credentials, ssl_context
from streams.domain.aggregates import WindowKey, WindowStats
from streams.domain.events import CallEvent, EventType, InvalidEvent
from streams.domain.merge import MergeOutput, WindowMerger
from streams.domain.pipeline import AcwPipeline, AggregationConfig, Output
from streams.domain.processor import Disposition, RulesConfig
from streams.metrics import Metrics
from streams.schema_registry import SchemaRegistry
from streams.serialization import FramedCodec, WriterSchemas, codec, confluent_schema_id, encode_call_event
from streams.settings import Settings
from streams.sources.callevent import RekeyedSource
from streams.sources.formats import NATIVE_FORMATS, build_source
from streams.sources.intake import Intake
from streams.topics import EVENT_TIME, output_headers, topic_specs
from streams.topics import outputs as output_specs
from streams.worker.faust_overrides import BatchApp, dedupe_acks

log = logging.getLogger("acw.worker")

PROGRESS_KEY = b"~progress"
# How often committed offsets are compared with the offsets stored with the state.
RECONCILE_EVERY_SECONDS = 5.0
# How often the broker is probed for the outage log lines and acw_broker_up.
BROKER_CHECK_SECONDS = 3.0
# A partition's checkpoint is written as one record batch of at most this many (uncompressed) bytes.
STATE_BATCH_BYTES = 32 * 1024 * 1024


@dataclass
class PartitionRuntime:
    """One partition's core and what has not been checkpointed yet."""

    partition: int
    core: Any  # AcwPipeline or WindowMerger
    offsets: dict[str, int] = field(default_factory=dict)
    unacked: list[Any] = field(default_factory=list)  # Faust's ConsumerMessages
    # Source topics checked for where delivery starts, for partitions with no stored offset yet.
    synced: set[str] = field(default_factory=set)
    # Held while a record or an idle advance is applied and its outputs sent: catch-up, delivery and
    # the timer never interleave, and a partition's outputs go out in the order they were produced.
    apply_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    # The core's count of platform-reported ACW disagreements already added to the metric.
    disagreements: int = 0
    last_event_wall: float = field(default_factory=time.monotonic)
    last_advance_wall: float = field(default_factory=time.monotonic)


@dataclass(frozen=True)
class _Snapshot:
    """One partition's state as of a checkpoint, and the events it covers."""

    runtime: PartitionRuntime
    entries: dict[str, Any]
    meta: dict[str, Any]
    unacked: list[Any]


@dataclass(frozen=True)
class _CaughtUpMessage:
    """The parts of a Kafka message `_handle` reads, for records read outside Faust."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


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
            extra_topic_configs={
                "max.message.bytes": str(STATE_BATCH_BYTES),
                "min.insync.replicas": str(self.settings.topic_min_insync_replicas),
            },
        )
        app.agent(self.topic, name=self.name)(self.idle)
        for topic in topics:
            app.batch_handlers[topic] = self.consume_batch

    # --- the agent -------------------------------------------------------------------------

    async def idle(self, stream: StreamT) -> None:
        """The agent that makes Faust subscribe to the stage's topics; their records arrive in `consume_batch`."""
        async for event in stream.noack().events():
            log.error("%s: record of %s delivered past the batch path, left unacked", self.name, event.message.tp)

    async def consume_batch(self, tp: Any, messages: list[Any]) -> None:
        """Apply one partition's fetched records in order, then checkpoint if one is due (never inside a batch)."""
        partition = tp.partition
        if partition not in self.runtimes and self.owned is not None and partition not in self.owned:
            return  # fetched before a rebalance moved the partition away: its new owner processes it
        rt = self.runtime(partition)
        self.busy += 1
        try:
            async with rt.apply_lock:
                first = messages[0]
                done = rt.offsets.get(tp.topic)
                skipped = tp.topic not in rt.synced if done is None else first.offset > done + 1
                if skipped:
                    await self._continue_state(rt, first)
                await self.handle_batch(rt, messages)
        finally:
            self.busy -= 1
        rt.unacked.extend(messages)
        self.since_checkpoint += len(messages)
        due = self.since_checkpoint >= self.settings.checkpoint_events or self.checkpoint_due()
        if due and self.checkpointing is None and not self.busy:
            self.busy += 1
            try:
                await self.send_updates()
            finally:
                self.busy -= 1
            self.start_checkpoint()

    async def handle_batch(self, rt: PartitionRuntime, messages: list[Any]) -> None:
        """Apply one partition's records in order and send what they produced."""
        for message in messages:
            await self.handle(rt, message)

    async def handle(self, rt: PartitionRuntime, message: Any) -> None:
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
        """Make delivery continue the partition's state, catching up on records Faust skipped.

        Faust's streams drop (and acknowledge) records they consider stale, around rebalances and at
        start-up, so delivery can jump past records this worker never applied, and Faust can commit
        their offsets. The offsets stored with the state are the truth: when a delivered record is past
        them, the records in between are read with a plain consumer and applied first.
        """
        topic = message.topic
        expected = await self._expected(rt, message.tp)
        if message.offset > expected:
            await self._catch_up(rt, message.tp, expected, message.offset)
        rt.synced.add(topic)

    async def reconcile(self) -> None:
        """Apply what Faust committed but this worker never applied, for partitions no record reaches.

        A partition whose skipped records reach its end gets no more deliveries, so the first-delivery
        check above never runs for it; comparing the group's committed offsets finds it.
        """
        app = self.worker.app
        if app.rebalancing or not app.flow_control.is_active():
            return  # the table may still be recovering; try at the next tick
        tps = [tp for tp in app.assignor.assigned_actives() if tp.topic in self.topics]
        committed = await self.worker.committed_offsets(tps)
        for tp in tps:
            resume = committed.get(tp)
            if resume is None or not self._owns(tp.partition):
                continue
            rt = self.runtime(tp.partition)
            if resume <= rt.offsets.get(tp.topic, -1) + 1:
                continue
            self.busy += 1
            try:
                async with rt.apply_lock:
                    expected = await self._expected(rt, tp)
                    if self._current(rt) and resume > expected:
                        await self._catch_up(rt, tp, expected, resume)
            finally:
                self.busy -= 1

    async def _expected(self, rt: PartitionRuntime, tp: Any) -> int:
        """The next offset the partition's state needs: after its stored offset, else the log start."""
        done = rt.offsets.get(tp.topic)
        return done + 1 if done is not None else await self.worker.earliest_offset(tp)

    async def _catch_up(self, rt: PartitionRuntime, tp: Any, start: int, stop: int) -> None:
        """Apply records [start, stop) of one partition, read outside Faust's consumer."""
        log.warning(
            "%s: partition %s:%d continues at offset %d, past its state: catching up from %d",
            self.name,
            tp.topic,
            tp.partition,
            stop,
            start,
        )
        self.metrics.rewinds.inc()
        async for record in self.worker.read_range(tp, start, stop):
            message = _CaughtUpMessage(tp.topic, tp.partition, record.offset, record.key, record.value)
            await self.handle(rt, message)

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
            ack = self.worker.app.consumer.ack
            for snap in written:
                if self._current(snap.runtime):
                    for message in snap.unacked:
                        ack(message)
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

    def owned_runtimes(self) -> list[PartitionRuntime]:
        """The runtimes of partitions this worker owns now."""
        return [rt for rt in self.runtimes.values() if self._owns(rt.partition)]

    def _owns(self, partition: int) -> bool:
        return self.owned is None or partition in self.owned

    def on_assigned(self, assigned: set[Any]) -> None:
        """Keep the cores of retained partitions (their memory is newer than any store); drop the rest."""
        self.owned = {tp.partition for tp in assigned if tp.topic in self.topics}
        for partition, rt in list(self.runtimes.items()):
            if partition not in self.owned:
                del self.runtimes[partition]
            else:
                rt.synced.clear()  # Faust re-seeks retained partitions: check where their delivery resumes
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
        inputs = s.inputs()
        super().__init__(worker, (*(topic for topic, _ in inputs), s.rekey_topic))
        self._consumed = {t: self.metrics.events_consumed.labels(t.name) for t in EventType}
        self._applied = self.metrics.applied
        max_future_ms = round(s.max_future_seconds * 1000)
        directory = s.directory()
        # With a Schema Registry, Confluent-framed CallEvents are read with their writer's schema, looked up here.
        self.writers = WriterSchemas() if worker.registry is not None else None
        self.intakes = {
            topic: Intake(build_source(fmt, s, self.writers), directory, max_future_ms) for topic, fmt in inputs
        }
        # Re-keyed records are events already translated (and given their directory team) at their first topic.
        self.intakes[s.rekey_topic] = Intake(RekeyedSource(), None, max_future_ms)
        self._encode_interval = worker.encoders[s.intervals_topic]
        self._plain_interval = codec("acw_interval").encode  # for the bytes field of a dead letter

    def new_core(self, meta: dict[str, Any] | None, entries: dict[str, Any]) -> AcwPipeline:
        return AcwPipeline.restore(self.worker.rules, self.worker.aggregation, meta, entries)

    async def handle(self, rt: PartitionRuntime, message: Any) -> None:
        rt.last_event_wall = rt.last_advance_wall = time.monotonic()
        if not self.is_new(rt, message):
            return
        intake = self.intakes[message.topic]
        try:
            if self.writers is not None and intake.format == "avro":
                schema_id = confluent_schema_id(message.value)
                if schema_id is not None and schema_id not in self.writers:
                    await self.worker.registry.learn(schema_id, self.writers)  # type: ignore[union-attr]
            translation = intake.read(message.value, int(time.time() * 1000))
        except InvalidEvent as exc:
            self.metrics.events_consumed.labels("invalid").inc()
            await self.worker.dead_letter(message, exc.reason, exc.detail)
            return
        if intake.source.format not in NATIVE_FORMATS:
            self.metrics.observe_translation(intake.format, translation.kind, translation.ignored, translation.notes)
        rekeyed = message.topic == self.settings.rekey_topic  # keyed by us: already in its agent's partition
        for call in translation.events:
            self._consumed[call.event_type].inc()
            key = intake.routing_key(call)
            if rekeyed or message.key == key:
                await self._apply(rt, message, call)
            else:
                self.metrics.rekeyed.inc()
                await self.worker.send(self.settings.rekey_topic, key, encode_call_event(call))

    async def _apply(self, rt: PartitionRuntime, message: Any, call: CallEvent) -> None:
        """Offer one translated event to the partition's core and send what it produced."""
        processor = rt.core.processor
        step, out = rt.core.offer(call)
        if step.disposition is Disposition.ACCEPTED:
            self._applied.inc()
        elif step.disposition is Disposition.DUPLICATE:
            self.metrics.duplicates.inc()
        elif step.disposition is Disposition.RESTATED:
            self.metrics.restated.inc()
        elif step.disposition is Disposition.IGNORED:
            self.metrics.unknown_event_types.inc()
        elif step.disposition is Disposition.LATE:
            self.metrics.late.inc()
            await self.worker.dead_letter(
                message,
                "late",
                f"event at {call.occurred_at_ms} is behind stream time "
                f"{processor.watermark_ms} by more than the allowed lateness",
            )
        if out:
            await self.emit(rt, out, message)

    async def emit(self, rt: PartitionRuntime, out: Output, message: Any = None) -> None:
        """Send one step's outputs in order: intervals, alerts, rejects, final panes, then progress."""
        worker = self.worker
        s = self.settings
        now = time.time()
        for interval in out.intervals:
            record = interval.to_record()
            await worker.send(s.intervals_topic, interval.agent_id.encode(), self._encode_interval(record), record)
            self.metrics.observe_interval(interval)
            self.metrics.processing_lag.observe(max(0.0, now - interval.ended_at_ms / 1000))
        await worker.send_alerts(out.alerts)
        for interval, reason in out.rejected:
            value = self._plain_interval(interval.to_record())
            await worker.dead_letter(message, reason, "the interval's window was already final", value=value)
        for wk, stats in out.final_panes:
            await self._send_pane(rt.partition, wk, stats)
        if out.progress is not None:
            value = orjson.dumps({"src": rt.partition, "ct": out.progress})
            for partition in range(s.partitions):
                await worker.app.producer.send(s.panes_topic, PROGRESS_KEY, value, partition, None, None)
            self.metrics.outputs.labels("panes").inc(s.partitions)
        wm = rt.core.processor.watermark_ms
        if wm is not None:
            self.metrics.watermark.labels(str(rt.partition)).set(wm / 1000)
        disagreements = rt.core.processor.counts["acw_disagreements"]
        if disagreements > rt.disagreements:  # counted by the core as intervals close, here or by the timer
            self.metrics.acw_disagreements.inc(disagreements - rt.disagreements)
            rt.disagreements = disagreements

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
        app = self.worker.app
        if app.rebalancing or not app.flow_control.is_active():
            return  # tables may still be recovering
        inputs = {topic for topic, _ in self.settings.inputs()}
        assigned = {tp.partition for tp in app.assignor.assigned_actives() if tp.topic in inputs}
        now = time.monotonic()
        for partition in sorted(assigned):
            if not self._owns(partition):
                continue
            rt = self.runtime(partition)
            wm = rt.core.processor.watermark_ms
            idle = now - rt.last_event_wall >= self.settings.idle_advance_after_seconds
            if wm is None or not idle or rt.apply_lock.locked():
                continue
            step_ms = round((now - rt.last_advance_wall) * 1000)
            rt.last_advance_wall = now
            self.busy += 1
            try:
                async with rt.apply_lock:
                    out = rt.core.advance(wm + step_ms)
                    self.since_checkpoint += 1
                    await self.emit(rt, out)
            finally:
                self.busy -= 1


class MergeStage(Stage):
    """Panes of every source partition in; window aggregates and window alerts out."""

    name = "acw-merge"

    def __init__(self, worker: AcwWorker) -> None:
        super().__init__(worker, (worker.settings.panes_topic,))
        self._encode_aggregate = worker.encoders[worker.settings.aggregates_topic]

    def new_core(self, meta: dict[str, Any] | None, entries: dict[str, Any]) -> WindowMerger:
        return WindowMerger.restore(self.worker.aggregation, self.settings.partitions, meta, entries)

    async def handle(self, rt: PartitionRuntime, message: Any) -> None:
        if not self.is_new(rt, message):
            return
        try:
            record = orjson.loads(message.value)
            if "ct" in record:
                out = rt.core.offer_progress(record["src"], record["ct"])
            else:
                rt.core.offer_pane(record["src"], WindowKey.from_list(record["k"]), WindowStats.from_dict(record["s"]))
                return
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            await self.worker.dead_letter(message, "bad_pane", f"cannot read a pane record: {exc}")
            return
        await self._send(out)

    async def _send(self, out: MergeOutput) -> None:
        for key, record in out.aggregates:
            await self.worker.send(self.settings.aggregates_topic, key.encode(), self._encode_aggregate(record), record)
            self.metrics.aggregates.labels("true" if record["final"] else "false").inc()
        await self.worker.send_alerts(out.alerts)

    async def send_updates(self) -> None:
        for rt in list(self.runtimes.values()):
            if self._owns(rt.partition):
                await self._send(MergeOutput(aggregates=rt.core.take_updates()))


class AcwWorker:
    """Builds the Faust app and its two stages; owns the outputs both send through."""

    def __init__(
        self,
        settings: Settings,
        metrics: Metrics,
        codecs: Mapping[str, FramedCodec] | None = None,
        registry: SchemaRegistry | None = None,
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.registry = registry
        # Output topic -> value encoder: Confluent-framed with the registry's ids, else plain Avro.
        published = list(output_specs(settings).values())
        self.encoders: dict[str, Callable[[dict[str, Any]], bytes]] = {
            spec.name: codecs[spec.name].encode if codecs else codec(spec.schema).encode  # type: ignore[arg-type]
            for spec in published
        }
        self._headers = {spec.name: output_headers(spec) for spec in published}
        self._event_time = {spec.name: EVENT_TIME[spec.role] for spec in published if spec.role in EVENT_TIME}
        self.rules: RulesConfig = settings.rules()
        self.aggregation: AggregationConfig = settings.aggregation()
        self._ssl = ssl_context(settings)
        self.app = BatchApp(
            settings.app_id,
            broker=[f"kafka://{s.strip()}" for s in settings.bootstrap_servers.split(",")],
            broker_credentials=faust_credentials(settings, self._ssl),
            store=settings.store,
            datadir=settings.data_dir,
            topic_partitions=settings.partitions,
            topic_replication_factor=settings.topic_replication_factor,
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
            # Per partition; Kafka still returns a larger first batch whole, so checkpoints always restore.
            consumer_max_fetch_size=settings.consumer_fetch_bytes,
            key_serializer="raw",
            value_serializer="raw",
        )
        metrics.attach_faust(self.app)
        written = [spec for spec in topic_specs(settings) if spec.role != "input"]
        self._sent = {spec.name: metrics.outputs.labels(spec.role) for spec in written}
        self.intervals = IntervalStage(self)
        self.merge = MergeStage(self)
        self.stages: tuple[Stage, ...] = (self.intervals, self.merge)
        self._encode_alert = self.encoders[settings.alerts_topic]
        self._encode_dead = self.encoders[settings.dead_letter_topic]
        self.app.timer(1.0)(self._tick)
        self.broker = BrokerWatch(settings, self._ssl)
        self.app.timer(BROKER_CHECK_SECONDS)(self._watch_broker)
        self.app.on_partitions_revoked.connect(self._on_revoked)
        self.app.on_partitions_assigned.connect(self._on_assigned)
        self.app.on_before_shutdown.connect(self._close_clients)
        self.app.task(self._quiet_library_logs)
        self._state_producer: Any = None
        self._offsets_consumer: Any = None
        self._offsets_lock = asyncio.Lock()
        self._reader: Any = None
        self._reader_lock = asyncio.Lock()
        self._reconciling: asyncio.Future[None] | None = None
        self._last_reconcile = 0.0

    async def state_producer(self) -> Any:
        """The producer of checkpoint batches, started on first use."""
        if self._state_producer is None:
            from aiokafka import AIOKafkaProducer

            producer = AIOKafkaProducer(
                **client_options(self.settings, self._ssl),
                acks="all",
                compression_type="gzip",
                max_batch_size=STATE_BATCH_BYTES,
                max_request_size=STATE_BATCH_BYTES + 1024 * 1024,
            )
            await producer.start()
            self._state_producer = producer
        return self._state_producer

    async def _plain_consumer(self, group: bool) -> Any:
        """A started aiokafka consumer outside Faust's group membership (with its group id for offsets)."""
        from aiokafka import AIOKafkaConsumer

        consumer = AIOKafkaConsumer(
            **client_options(self.settings, self._ssl),
            group_id=self.settings.app_id if group else None,
            enable_auto_commit=False,
            max_partition_fetch_bytes=STATE_BATCH_BYTES,
        )
        await consumer.start()
        return consumer

    async def committed_offsets(self, tps: list[Any]) -> dict[Any, int]:
        """The group's committed offset of each partition that has one, asked without joining the group."""
        from aiokafka import TopicPartition

        async with self._offsets_lock:
            if self._offsets_consumer is None:
                self._offsets_consumer = await self._plain_consumer(group=True)
            out = {}
            for tp in tps:
                offset = await self._offsets_consumer.committed(TopicPartition(tp.topic, tp.partition))
                if offset is not None and offset >= 0:
                    out[tp] = int(offset)
            return out

    async def earliest_offset(self, tp: Any) -> int:
        """The partition's log start (Faust's own consumer would answer its committed offset)."""
        from aiokafka import TopicPartition

        ktp = TopicPartition(tp.topic, tp.partition)
        async with self._offsets_lock:
            if self._offsets_consumer is None:
                self._offsets_consumer = await self._plain_consumer(group=True)
            return int((await self._offsets_consumer.beginning_offsets([ktp]))[ktp])

    async def read_range(self, tp: Any, start: int, stop: int) -> AsyncIterator[Any]:
        """Records [start, stop) of one partition, read with a plain consumer, one reader at a time."""
        from aiokafka import TopicPartition

        ktp = TopicPartition(tp.topic, tp.partition)
        async with self._reader_lock:
            if self._reader is None:
                self._reader = await self._plain_consumer(group=False)
            reader = self._reader
            reader.assign([ktp])
            reader.seek(ktp, start)
            while await reader.position(ktp) < stop:
                batch = await reader.getmany(ktp, timeout_ms=1000, max_records=5000)
                records = batch.get(ktp, [])
                for record in records:
                    if record.offset >= stop:
                        return
                    yield record
                if not records and await reader.position(ktp) >= (await reader.end_offsets([ktp]))[ktp]:
                    return  # the log ends before `stop` (a compacted or trimmed range)

    async def _quiet_library_logs(self) -> None:
        """Faust, mode and aiokafka log per message at DEBUG/INFO; keep them at WARNING unless asked for more."""
        level = logging.getLevelName(self.settings.log_level.upper())
        for name in ("faust", "mode", "aiokafka", "kafka"):
            logging.getLogger(name).setLevel(max(level, logging.WARNING) if level > logging.DEBUG else level)
        logging.getLogger().setLevel(level)
        logs.adopt_handlers()

    async def send(self, topic: str, key: bytes | None, value: bytes, record: Mapping[str, Any] | None = None) -> None:
        """Hand a record to the producer; delivery is awaited by the next checkpoint's flush.

        An output record (`record` given) is stamped with its event time and carries the schema headers.
        """
        timestamp = headers = None
        if record is not None:
            headers = self._headers[topic]
            # Faust takes seconds and truncates to ms: the half millisecond makes it land on the event time.
            timestamp = (self._event_time[topic](record) + 0.5) / 1000
        await self.app.producer.send(topic, key, value, None, timestamp, headers)
        self._sent[topic].inc()

    async def send_alerts(self, alerts: list[dict[str, Any]]) -> None:
        """Alert transitions, keyed by alert_id so an episode's records stay in order."""
        for alert in alerts:
            await self.send(self.settings.alerts_topic, alert["alert_id"].encode(), self._encode_alert(alert), alert)
            self.metrics.alerts.labels(alert["rule"], alert["severity"], alert["state"]).inc()

    async def dead_letter(self, message: Any, reason: str, detail: str, value: bytes | None = None) -> None:
        """Send a rejected record with its reason and where it came from, under the source record's key and headers."""
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
        topic = self.settings.dead_letter_topic
        source_headers = list(getattr(message, "headers", None) or ())
        headers = [*(h for h in source_headers if not h[0].startswith("acw-")), *self._headers[topic]]
        timestamp = getattr(message, "timestamp", None)
        await self.app.producer.send(topic, record["key"], self._encode_dead(record), None, timestamp, headers)
        self._sent[topic].inc()

    async def _close_clients(self, sender: Any, **kwargs: Any) -> None:
        """On a clean stop: let a running checkpoint finish (briefly), then close our own Kafka clients."""
        running = [s.checkpointing for s in self.stages if s.checkpointing is not None]
        if running:
            await asyncio.wait(running, timeout=10)
        for client in (self._state_producer, self._offsets_consumer, self._reader):
            if client is not None:
                try:
                    await asyncio.wait_for(client.stop(), timeout=10)
                except Exception as exc:  # stopping anyway; a client that cannot close is not worth a crash
                    log.warning("closing a Kafka client failed: %s", exc)
        self._state_producer = self._offsets_consumer = self._reader = None

    async def _on_revoked(self, sender: Any, revoked: set[Any], **kwargs: Any) -> None:
        for stage in self.stages:
            stage.on_revoked(revoked)

    async def _on_assigned(self, sender: Any, assigned: set[Any], **kwargs: Any) -> None:
        for stage in self.stages:
            stage.on_assigned(assigned)

    async def _reconcile(self) -> None:
        try:
            for stage in self.stages:
                await stage.reconcile()
        except Exception:
            log.exception("reconciling committed offsets failed; trying again later")
        finally:
            self._reconciling = None

    async def _watch_broker(self) -> None:
        """Probe the broker so an outage shows in the logs and in acw_broker_up while Faust retries."""
        was_up = self.broker.down_since is None
        up = await self.broker.check()
        if was_up and not up:
            self.metrics.broker_outages.inc()
        self.metrics.broker_up.set(1 if up else 0)

    async def _tick(self) -> None:
        """Every second: checkpoint what is due even without new records, and advance idle partitions."""
        try:
            for stage in self.stages:
                if stage.checkpoint_due():
                    stage.start_checkpoint()
            now = time.monotonic()
            if self._reconciling is None and now - self._last_reconcile >= RECONCILE_EVERY_SECONDS:
                self._last_reconcile = now
                self._reconciling = asyncio.ensure_future(self._reconcile())
            if self.settings.idle_advance_after_seconds > 0:
                await self.intervals.advance_idle()
            dedupe_acks(self.app.consumer)
            self._update_gauges()
        except Exception:  # a timer that raises would crash the worker; log and try next tick
            log.exception("timer tick failed")

    def _update_gauges(self) -> None:
        """Gauges read from the owned partitions' cores: who is in ACW, what fires, how far behind we are."""
        m = self.metrics
        app = self.app
        m.recovering.set(1 if app.rebalancing or not app.flow_control.is_active() else 0)
        views = [rt.core.live() for rt in self.intervals.owned_runtimes()]
        m.open_intervals.set(sum(v.open_intervals for v in views))
        m.agents_in_acw.set(sum(v.agents_in_acw for v in views))
        m.oldest_open.set(max((v.oldest_open_ms or 0 for v in views), default=0) / 1000)
        firing: dict[str, int] = {}
        for counts in [v.firing for v in views] + [rt.core.firing() for rt in self.merge.owned_runtimes()]:
            for rule, n in counts.items():
                firing[rule] = firing.get(rule, 0) + n
        for rule in self.aggregation.rules:
            m.alerts_firing.labels(rule.name, rule.severity).set(firing.get(rule.name, 0))
        if m.agent_in_acw is not None:
            m.agent_in_acw.clear()
            for rt in self.intervals.owned_runtimes():
                wm = rt.core.processor.watermark_ms or 0
                for agent, _, disc in rt.core.open:
                    m.agent_in_acw.labels(agent).set(max(0, wm - disc) / 1000)
        for stage in self.stages:
            for rt in stage.owned_runtimes():
                for topic in stage.topics:
                    try:
                        end = app.consumer.highwater(_tp(topic, rt.partition))
                    except Exception:  # not assigned to the fetching consumer (yet)
                        continue
                    if end is not None:
                        lag = max(0, end - rt.offsets.get(topic, -1) - 1)
                        m.consumer_lag.labels(topic, str(rt.partition)).set(lag)


def _tp(topic: str, partition: int) -> Any:
    from faust.types import TP

    return TP(topic, partition)


def run_worker(settings: Settings, metrics: Metrics) -> None:
    """Start the Faust worker in this process until it is stopped."""
    from faust import Worker

    from streams.connection import check_connection
    from streams.topic_admin import create_topics

    asyncio.run(check_connection(settings))
    created = asyncio.run(create_topics(settings))
    if created:
        log.warning("created missing topics: %s", ", ".join(created))
    codecs, registry = None, None
    if settings.schema_registry_url:
        registry = SchemaRegistry(settings)
        codecs = asyncio.run(registry.register_all(output_specs(settings).values()))
        log.info("registered output schemas: %s", ", ".join(f"{t}={c.schema_id}" for t, c in codecs.items()))
    worker = AcwWorker(settings, metrics, codecs, registry)
    if settings.store == "rocksdb://":
        from pathlib import Path

        from streams.stores import discard_unreadable_stores

        metrics.stores_discarded.inc(len(discard_unreadable_stores(Path(worker.app.conf.tabledir))))
    faust_worker = Worker(
        worker.app, loglevel=settings.log_level, quiet=True, logging_config=logs.dict_config(settings.log_level)
    )
    faust_worker.spinner = None  # it writes terminal control codes into log files
    faust_worker.execute_from_commandline()
