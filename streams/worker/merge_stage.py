"""The merge stage: panes of every source partition in; window aggregates and window alerts out."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from streams.domain.aggregates import WindowKey, WindowStats
from streams.domain.merge import MergeOutput, WindowMerger
from streams.worker.stage import PartitionRuntime, Stage

if TYPE_CHECKING:
    from streams.worker.app import AcwWorker


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
