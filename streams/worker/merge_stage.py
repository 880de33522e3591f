"""The merge stage: panes of every source partition in; window aggregates and window alerts out."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from streams.domain.aggregates import WindowKey, WindowStats
from streams.domain.merge import MergeOutput, WindowMerger
from streams.outputs import route_merged
from streams.worker.kafka_sink import BatchOutputs
from streams.worker.stage import PartitionRuntime, Stage

if TYPE_CHECKING:
    from streams.worker.app import AcwWorker


class MergeStage(Stage[WindowMerger]):
    """Panes of every source partition in; window aggregates and window alerts out."""

    name = "acw-merge"

    def __init__(self, worker: AcwWorker) -> None:
        super().__init__(worker, (worker.settings.panes_topic,))

    def new_core(self, meta: dict[str, Any] | None, entries: dict[str, Any]) -> WindowMerger:
        return WindowMerger.restore(self.worker.aggregation, self.settings.partitions, meta, entries)

    async def handle_batch(self, rt: PartitionRuntime[WindowMerger], messages: list[Any]) -> None:
        out = self.worker.sink.outputs(rt.partition)
        self._apply(rt, messages, out)
        await self.worker.sink.submit(out)

    def _apply(self, rt: PartitionRuntime[WindowMerger], messages: list[Any], out: BatchOutputs) -> None:
        """Merge a batch's pane and progress records in order; a record that cannot be read is a dead letter."""
        merger = rt.core
        for message in messages:
            if not self.is_new(rt, message):
                continue
            try:
                record = orjson.loads(message.value)
                if "ct" in record:
                    merged = merger.offer_progress(record["src"], record["ct"])
                else:
                    pane, stats = WindowKey.from_list(record["k"]), WindowStats.from_dict(record["s"])
                    merger.offer_pane(record["src"], pane, stats)
                    continue
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                out.dead_letter(message, "bad_pane", f"cannot read a pane record: {exc}")
                continue
            route_merged(merged, out)

    async def send_updates(self) -> None:
        for rt in list(self.runtimes.values()):
            if self._owns(rt.partition):
                out = self.worker.sink.outputs(rt.partition)
                route_merged(MergeOutput(aggregates=rt.core.take_updates()), out)
                await self.worker.sink.submit(out)
