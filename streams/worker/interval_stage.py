"""The interval stage: call events in; intervals, interval alerts, dead letters, AGENT windows and other panes out."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from streams.domain.events import EventType
from streams.domain.partition import PartitionCore
from streams.outputs import route
from streams.serialization import WriterSchemas, confluent_schema_id
from streams.worker.gauges import CoreGauges, core_gauges
from streams.worker.intake_batch import Tally, apply_records, build_intakes, core_counts
from streams.worker.kafka_sink import BatchOutputs
from streams.worker.stage import PartitionRuntime, Stage

if TYPE_CHECKING:
    from streams.worker.app import AcwWorker


class IntervalStage(Stage[PartitionCore]):
    """Call events in; intervals, alerts, dead letters, AGENT windows and the other scopes' panes out."""

    name = "acw-intervals"

    def __init__(self, worker: AcwWorker) -> None:
        s = worker.settings
        super().__init__(worker, (*(topic for topic, _ in s.inputs()), s.rekey_topic))
        self._consumed = {t: self.metrics.events_consumed.labels(t.name) for t in EventType}
        # With a Schema Registry, Confluent-framed CallEvents are read with their writer's schema, looked up here.
        self.writers = WriterSchemas() if worker.registry is not None else None
        self.intakes = build_intakes(s, self.writers)

    def new_core(self, meta: dict[str, Any] | None, entries: dict[str, Any]) -> PartitionCore:
        return PartitionCore.restore(self.worker.rules, self.worker.aggregation, meta, entries)

    async def handle_batch(self, rt: PartitionRuntime[PartitionCore], messages: list[Any]) -> None:
        rt.last_event_wall = rt.last_advance_wall = time.monotonic()
        if self.writers is not None:
            await self._learn_writers(messages)
        out = self.worker.sink.outputs(rt.partition)
        self._apply(rt, messages, out)
        await self.worker.sink.submit(out)

    async def _learn_writers(self, messages: list[Any]) -> None:
        """Fetch from the registry the writer schemas of a batch's Confluent-framed records not seen before."""
        registry, writers = self.worker.registry, self.writers
        assert registry is not None and writers is not None
        for message in messages:
            if self.intakes[message.topic].format == "avro":
                schema_id = confluent_schema_id(message.value)
                if schema_id is not None and schema_id not in writers:
                    await registry.learn(schema_id, writers)

    def _apply(self, rt: PartitionRuntime[PartitionCore], messages: list[Any], out: BatchOutputs) -> None:
        """Decode, translate and apply a batch's records in order; metrics are counted once per batch."""
        new = [message for message in messages if self.is_new(rt, message)]
        if new:
            topic = new[0].topic
            tally = Tally()
            apply_records(
                rt.core,
                self.intakes[topic],
                topic == self.settings.rekey_topic,
                [message.key for message in new],
                [message.value for message in new],
                new,
                out,
                tally,
                self.metrics.observe_translation,
                int(time.time() * 1000),
            )
            self.count_tally(tally)
        self._count(rt)

    def count_tally(self, tally: Tally) -> None:
        """Add what a batch's records were to the metrics."""
        for event_type, n in tally.consumed.items():
            self._consumed[event_type].inc(n)
        if tally.invalid:
            self.metrics.events_consumed.labels("invalid").inc(tally.invalid)
        if tally.rekeyed_away:
            self.metrics.rekeyed.inc(tally.rekeyed_away)

    async def _restore(self, partition: int) -> PartitionRuntime[PartitionCore]:
        rt = await super()._restore(partition)
        rt.counted = core_counts(rt.core)  # restored counts were added to the metrics of the process that made them
        return rt

    def _count(self, rt: PartitionRuntime[PartitionCore]) -> None:
        """Add what the core counted since the last call to the metrics, and set the partition's stream time."""
        self.add_counts(rt, core_counts(rt.core), rt.core.processor.watermark_ms)

    def add_counts(self, rt: PartitionRuntime[Any], counts: dict[str, int], wm: int | None) -> None:
        """Add a core's counts, as they grew since the partition's last ones, to the metrics; set its stream time."""
        before = rt.counted
        metrics = self.metrics
        for name, counter in (
            ("accepted", metrics.applied),
            ("duplicates", metrics.duplicates),
            ("restated", metrics.restated),
            ("unknown_event_type", metrics.unknown_event_types),
            ("late", metrics.late),
            ("acw_disagreements", metrics.acw_disagreements),
        ):
            if counts[name] > before.get(name, 0):
                counter.inc(counts[name] - before.get(name, 0))
        rt.counted = counts
        if wm is not None:
            metrics.watermark.labels(str(rt.partition)).set(wm / 1000)

    def has_updates(self) -> bool:
        """Whether an owned partition has agents whose live state may have changed since it was last sent."""
        return any(rt.core.has_view_changes() for rt in self.runtimes.values() if self._owns(rt.partition))

    async def send_updates(self) -> None:
        """Open panes' updates for the merge stage, and the agents whose live state changed."""
        for rt in list(self.runtimes.values()):
            if self._owns(rt.partition):
                out = self.worker.sink.outputs(rt.partition)
                for wk, stats in rt.core.take_updates():
                    out.pane(wk, stats)
                for key, record in rt.core.take_window_updates():
                    out.aggregate(key, record)
                wm = rt.core.processor.watermark_ms
                if wm is not None:
                    for agent_id, view in rt.core.take_views():
                        if view is None:
                            out.agent_state(agent_id, {"as_of": wm}, live=False)
                        else:
                            out.agent_state(agent_id, view.to_record(wm), live=True)
                await self.worker.sink.submit(out)

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
            rt = await self.runtime(partition)
            if rt is None:
                continue
            wm = self.watermark(rt)
            idle = now - rt.last_event_wall >= self.settings.idle_advance_after_seconds
            if wm is None or not idle or rt.apply_lock.locked():
                continue
            step_ms = round((now - rt.last_advance_wall) * 1000)
            rt.last_advance_wall = now
            self.busy += 1
            try:
                async with rt.apply_lock:
                    self.since_checkpoint += 1
                    await self.advance(rt, wm + step_ms)
            finally:
                self.busy -= 1

    def watermark(self, rt: PartitionRuntime[Any]) -> int | None:
        """The partition's stream time (None before its first event)."""
        return rt.core.processor.watermark_ms  # type: ignore[no-any-return]

    async def advance(self, rt: PartitionRuntime[PartitionCore], to_ms: int) -> None:
        """Move an idle partition's stream time forward and send what became final."""
        out = self.worker.sink.outputs(rt.partition)
        route(rt.core.advance(to_ms), out)
        self._count(rt)
        await self.worker.sink.submit(out)

    async def refresh_gauges(self) -> None:
        """Read what the gauges show from the cores, where they are not at hand (in the core process)."""

    def gauge_readings(self) -> list[CoreGauges]:
        """What the gauges show, per owned partition's core."""
        agents = self.metrics.agent_in_acw is not None
        return [core_gauges(rt.core, agents) for rt in self.owned_runtimes()]
