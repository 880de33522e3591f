"""The interval stage: call events in; intervals, interval alerts, dead letters and pane aggregates out."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import orjson

from streams.domain.aggregates import WindowKey, WindowStats
from streams.domain.events import CallEvent, EventType, InvalidEvent
from streams.domain.pipeline import AcwPipeline, Output
from streams.domain.processor import Disposition
from streams.serialization import WriterSchemas, codec, confluent_schema_id, encode_call_event
from streams.sources.callevent import RekeyedSource
from streams.sources.formats import NATIVE_FORMATS, build_source
from streams.sources.intake import Intake
from streams.worker.stage import PartitionRuntime, Stage

if TYPE_CHECKING:
    from streams.worker.app import AcwWorker

# The key of the records that tell the merge stage how far a source partition's stream time has come.
PROGRESS_KEY = b"~progress"


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
        self._encode_agent_state = worker.encoders[s.agent_state_topic]
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

    def has_updates(self) -> bool:
        """Whether an owned partition has agents whose live state may have changed since it was last sent."""
        return any(rt.core.has_view_changes() for rt in self.runtimes.values() if self._owns(rt.partition))

    async def send_updates(self) -> None:
        """Open panes' updates for the merge stage, and the agents whose live state changed."""
        topic = self.settings.agent_state_topic
        for rt in list(self.runtimes.values()):
            if self._owns(rt.partition):
                for wk, stats in rt.core.take_updates():
                    await self._send_pane(rt.partition, wk, stats)
                wm = rt.core.processor.watermark_ms
                for agent_id, view in rt.core.take_views() if wm is not None else ():
                    record = {"as_of": wm} if view is None else view.to_record(wm)
                    value = None if view is None else self._encode_agent_state(record)
                    await self.worker.send(topic, agent_id.encode(), value, record)

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
