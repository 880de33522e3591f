"""The interval stage with its cores in the core process (`ACW_WORKER_PROCESSES=2`).

The worker's process keeps everything but decoding and the core: Faust and group membership, the offsets
and acknowledgements, restore from the store or the changelog, the sink and its encoding, checkpoint
writes, metrics. A batch is written to the core process and `consume_batch` returns; its reply comes back
after every earlier request's and is replayed onto the sink then. Order does the rest:
- a checkpoint's snapshot is a request too, so its reply covers exactly the batches sent before it, whose
  outputs were handed to the sink before the snapshot's reply is read; `_persist` then writes outputs, state
  and offsets in that order, as with one process;
- restores, idle advances, open-pane updates, gauges and drops of revoked partitions' cores are requests in
  the same queue.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from functools import partial
from typing import TYPE_CHECKING, Any

from streams.domain.events import EventType, InvalidEvent
from streams.domain.intervals import AcwInterval
from streams.serialization import WriterSchemas
from streams.worker import core_process as cp
from streams.worker.core_client import CoreClient
from streams.worker.gauges import CoreGauges
from streams.worker.intake_batch import Tally
from streams.worker.interval_stage import IntervalStage
from streams.worker.kafka_sink import BatchOutputs
from streams.worker.stage import PartitionRuntime, Stage, _Snapshot

if TYPE_CHECKING:
    from streams.worker.app import AcwWorker


class CoreHandle:
    """The worker's side of one core in the core process: its id and what its last reply said."""

    def __init__(self, client: CoreClient, core_id: int, restore: tuple[Any, Any] | None) -> None:
        self.client = client
        self.core_id = core_id
        self.restore = restore  # (meta, entries) until sent
        self.watermark_ms: int | None = None
        self.view_changes = False
        self.gauges: CoreGauges | None = None

    def mark_dirty(self, names: list[str]) -> None:
        """Count entries as changed again (their checkpoint was not written)."""
        self.client.send(("mark_dirty", self.core_id, names), None)


class LearnedWriters(WriterSchemas):
    """Writer schemas learnt from the registry, remembered until they are sent to the core process."""

    def __init__(self) -> None:
        super().__init__()
        self.learned: list[tuple[int, str | tuple[str, str]]] = []  # schema text, or why it is refused

    def add(self, schema_id: int, writer_text: str) -> None:
        super().add(schema_id, writer_text)
        self.learned.append((schema_id, writer_text))

    def reject(self, schema_id: int, error: InvalidEvent) -> None:
        super().reject(schema_id, error)
        self.learned.append((schema_id, (error.reason, error.detail)))  # InvalidEvent does not pickle


class RemoteIntervalStage(IntervalStage):
    """The interval stage, its cores in the core process; every core call is a request there."""

    def __init__(self, worker: AcwWorker) -> None:
        super().__init__(worker)
        self.client = CoreClient(worker.settings, self._core_died)
        self._ids = itertools.count()
        self._gauges_asked = False  # a gauges request waits for its reply
        if self.writers is not None:
            self.writers = LearnedWriters()

    def _core_died(self, exc: BaseException) -> None:
        self.worker.fail(exc)

    async def checkpoint_now(self) -> None:
        if self.client.failure is None:  # else the cores' state is gone: nothing past the last checkpoint is kept
            await super().checkpoint_now()

    async def close(self) -> None:
        """Stop the core process."""
        await self.client.close()

    async def settle(self) -> None:
        if self.client.started and self.client.failure is None:
            await self.client.ask(("ping",))

    # --- restore and ownership ---------------------------------------------------------------

    def new_core(self, meta: dict[str, Any] | None, entries: dict[str, Any]) -> Any:
        return CoreHandle(self.client, next(self._ids), (meta, entries))

    async def _restore(self, partition: int) -> PartitionRuntime[Any]:
        rt = await Stage._restore(self, partition)  # type: ignore[arg-type]
        handle: CoreHandle = rt.core
        assert handle.restore is not None
        meta, entries = handle.restore
        handle.restore = None
        counts, handle.watermark_ms, handle.view_changes = await self.client.ask(
            ("restore", handle.core_id, meta, entries)
        )
        rt.counted = counts  # restored counts were added to the metrics of the process that made them
        return rt

    def discarded(self, rt: PartitionRuntime[Any]) -> None:
        self.client.send(("drop", [rt.core.core_id]), None)

    def on_assigned(self, assigned: set[Any]) -> None:
        before = dict(self.runtimes)
        super().on_assigned(assigned)
        dropped = [rt.core.core_id for p, rt in before.items() if p not in self.runtimes]
        if dropped and self.client.started:
            self.client.send(("drop", dropped), None)

    # --- batches -----------------------------------------------------------------------------

    async def handle_batch(self, rt: PartitionRuntime[Any], messages: list[Any]) -> None:
        rt.last_event_wall = rt.last_advance_wall = time.monotonic()
        if self.writers is not None:
            await self._learn_writers(messages)
            writers: LearnedWriters = self.writers  # type: ignore[assignment]
            if writers.learned:
                learned, writers.learned = writers.learned, []
                self.client.send(("writers", learned), None)
        new = [message for message in messages if self.is_new(rt, message)]
        if not new:
            return
        request = ("batch", rt.core.core_id, new[0].topic, [m.key for m in new], [m.value for m in new])
        await self.client.request(request, partial(self._batch_done, rt, new))

    async def _batch_done(self, rt: PartitionRuntime[Any], sources: list[Any], reply: Any) -> None:
        """A batch's reply: its outputs to the sink, its counts to the metrics."""
        if reply is None:
            return  # its core was dropped: the partition's next owner applies these records
        calls, state, consumed, invalid, rekeyed_away, translations = reply
        out = self.worker.sink.outputs(rt.partition)
        replay(calls, out, sources)
        tally = Tally()
        tally.consumed.update({EventType[name]: n for name, n in consumed.items()})
        tally.invalid, tally.rekeyed_away = invalid, rekeyed_away
        self.count_tally(tally)
        metrics = self.metrics
        for (fmt, kind, ignored, notes), n in translations.items():
            metrics.observe_translation(fmt, kind, ignored, notes, n)
        self._state(rt, state)
        await self.worker.sink.submit(out)

    def _state(self, rt: PartitionRuntime[Any], state: Any) -> None:
        """Keep a core's reported state: counts into the metrics, stream time, whether views changed."""
        counts, rt.core.watermark_ms, rt.core.view_changes = state
        self.add_counts(rt, counts, rt.core.watermark_ms)

    def watermark(self, rt: PartitionRuntime[Any]) -> int | None:
        return rt.core.watermark_ms  # type: ignore[no-any-return]

    async def advance(self, rt: PartitionRuntime[Any], to_ms: int) -> None:
        await self.client.request(("advance", rt.core.core_id, to_ms), partial(self._advanced, rt))

    async def _advanced(self, rt: PartitionRuntime[Any], reply: Any) -> None:
        if reply is None:
            return
        calls, state = reply
        out = self.worker.sink.outputs(rt.partition)
        replay(calls, out, ())
        self._state(rt, state)
        await self.worker.sink.submit(out)

    # --- updates, gauges ---------------------------------------------------------------------

    def has_updates(self) -> bool:
        return any(rt.core.view_changes for rt in self.owned_runtimes())

    async def send_updates(self) -> None:
        runtimes = self.owned_runtimes()
        if runtimes:
            request = ("updates", [rt.core.core_id for rt in runtimes])
            await self.client.request(request, partial(self._updated, runtimes))

    async def _updated(self, runtimes: list[PartitionRuntime[Any]], replies: list[Any]) -> None:
        for rt, reply in zip(runtimes, replies, strict=True):
            if reply is None:
                continue
            panes, windows, views, wm, state = reply
            out = self.worker.sink.outputs(rt.partition)
            for wk, stats in panes:
                out.pane(wk, stats)
            for key, record in windows:
                out.aggregate(key, record)
            for agent_id, record in views:
                if record is None:
                    out.agent_state(agent_id, {"as_of": wm}, live=False)
                else:
                    out.agent_state(agent_id, record, live=True)
            self._state(rt, state)
            await self.worker.sink.submit(out)

    async def refresh_gauges(self) -> None:
        """Ask for the gauges behind the batches sent so far; they are read at a later tick, nothing waits."""
        runtimes = self.owned_runtimes()
        if not runtimes or self._gauges_asked or not self.client.started or self.client.failure is not None:
            return
        self._gauges_asked = True
        agents = self.metrics.agent_in_acw is not None
        request = ("gauges", [rt.core.core_id for rt in runtimes], agents)
        await self.client.request(request, partial(self._gauges_read, runtimes))

    def _gauges_read(self, runtimes: list[PartitionRuntime[Any]], replies: list[CoreGauges | None]) -> None:
        self._gauges_asked = False
        for rt, reply in zip(runtimes, replies, strict=True):
            rt.core.gauges = reply

    def gauge_readings(self) -> list[CoreGauges]:
        return [rt.core.gauges for rt in self.owned_runtimes() if rt.core.gauges is not None]

    # --- checkpoints -------------------------------------------------------------------------

    def start_checkpoint(self) -> None:
        """Request a snapshot behind the batches sent so far; persist it when it comes, in the background."""
        if self.checkpointing is not None or self.busy:
            return
        taken = []
        for rt in self.owned_runtimes():
            taken.append((rt, rt.unacked, dict(rt.offsets)))
            rt.unacked = []
        self.since_checkpoint = 0
        self.last_checkpoint = time.monotonic()
        self.checkpointing = asyncio.ensure_future(self._checkpoint(taken))

    async def _checkpoint(self, taken: list[tuple[PartitionRuntime[Any], list[Any], dict[str, int]]]) -> None:
        try:
            request = [(rt.core.core_id, bool(unacked)) for rt, unacked, _ in taken]
            replies = await self.client.ask(("snapshot", request))
        except BaseException:
            for rt, unacked, _ in taken:
                rt.unacked[:0] = unacked
            self.checkpointing = None
            raise
        snapshot = []
        for (rt, unacked, offsets), reply in zip(taken, replies, strict=True):
            if reply is None:
                rt.unacked[:0] = unacked  # nothing to acknowledge, or a dropped core (not current any more)
                continue
            meta, entries = reply
            snapshot.append(_Snapshot(rt, entries, list(entries), {"core": meta, "offsets": offsets}, unacked))
        await self._persist(snapshot)


def replay(calls: list[tuple[Any, ...]], out: BatchOutputs, sources: Any) -> None:
    """Make the router's calls the core process recorded on `out`; sources by index into the batch."""
    for call in calls:
        op = call[0]
        if op == cp.INTERVAL:
            out.interval(AcwInterval(*call[1]))
        elif op == cp.PANE:
            out.pane(call[1], call[2])
        elif op == cp.PROGRESS:
            out.progress(call[1])
        elif op == cp.AGGREGATE:
            out.aggregate(call[1], call[2])
        elif op == cp.ALERT:
            out.alert(call[1])
        elif op == cp.CALL_EVENT:
            out.call_event(call[1], call[2])
        elif op == cp.DEAD_LETTER:
            out.dead_letter(None if call[1] is None else sources[call[1]], call[2], call[3])
        elif op == cp.REJECTED:
            out.rejected(None if call[1] is None else sources[call[1]], AcwInterval(*call[2]), call[3])
        else:
            raise ValueError(f"unknown output call {op!r} from the core process")
