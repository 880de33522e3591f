"""A stage: one Faust agent's partitions, each with its core, its ownership, catch-up and checkpoints."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import orjson
from faust.types import StreamT

from streams.domain.core import Checkpointable
from streams.worker.faust_overrides import Acknowledgements, acknowledge
from streams.worker.fingerprint import Change, Fingerprint
from streams.worker.kafka_sink import OutputsLost
from streams.worker.state_entries import changed_entries

if TYPE_CHECKING:
    from streams.worker.app import AcwWorker

log = logging.getLogger("acw.worker")

# A partition's checkpoint is written as one record batch of at most this many (uncompressed) bytes.
STATE_BATCH_BYTES = 32 * 1024 * 1024
# A checkpoint waits for the batches it sent to be written before building more past this many bytes.
STATE_IN_FLIGHT_BYTES = 8 * 1024 * 1024
# Records caught up outside Faust are applied in batches of at most this many.
CATCH_UP_BATCH = 5000
# A partition is behind its input when a batch leaves more than this many records after it (a few polls' worth).
BEHIND_RECORDS = 10000

C = TypeVar("C", bound=Checkpointable)


@dataclass
class PartitionRuntime(Generic[C]):
    """One partition's core and what has not been checkpointed yet."""

    partition: int
    core: C  # AcwPipeline or WindowMerger
    offsets: dict[str, int] = field(default_factory=dict)
    unacked: list[Acknowledgements] = field(default_factory=list)
    # Source topics checked for where delivery starts, for partitions with no stored offset yet.
    synced: set[str] = field(default_factory=set)
    # Held while a record or an idle advance is applied and its outputs sent: catch-up, delivery and
    # the timer never interleave, and a partition's outputs go out in the order they were produced.
    apply_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    # The core's counts already added to the metrics (empty: none yet, the restored counts are not new).
    counted: dict[str, int] = field(default_factory=dict)
    # When the partition's last batch, which left more than BEHIND_RECORDS records unread after it, came (None:
    # the last batch did not). A partition whose records stop coming (paused, or its end is markers) counts as
    # behind for one catch-up interval at most.
    behind_at: float | None = None
    last_event_wall: float = field(default_factory=time.monotonic)
    last_advance_wall: float = field(default_factory=time.monotonic)
    # The entries the last written checkpoint left in the changelog, to tell a later restore whether it is whole.
    fingerprint: Fingerprint = field(default_factory=Fingerprint)


@dataclass(frozen=True)
class _Snapshot:
    """One partition's state as of a checkpoint, and the events it covers.

    `entries` (each one's JSON, None deletes) empties as they are written into the record batch; `names` keeps
    what they were, to count them as changed again if the write fails.
    """

    runtime: PartitionRuntime[Any]
    entries: dict[str, bytes | None]
    names: list[str]
    meta: dict[str, Any]
    unacked: list[Acknowledgements]


class Stage(Generic[C]):
    """One agent's partitions: their cores, ownership, checkpoints and catch-up; subclasses handle records."""

    name = ""

    def __init__(self, worker: AcwWorker, topics: tuple[str, ...]) -> None:
        self.worker = worker
        self.settings = worker.settings
        self.metrics = worker.metrics
        self.topics = topics
        self.runtimes: dict[int, PartitionRuntime[C]] = {}
        self.owned: set[int] | None = None  # None until the first assignment
        self.busy = 0  # coroutines between taking a record and having sent all its outputs
        self.checkpointing: asyncio.Future[None] | None = None
        self.since_checkpoint = 0
        self.last_checkpoint = time.monotonic()
        self.generation = 0  # assignments so far: a restore that awaited across one is not kept
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

    async def consume_batch(self, tp: Any, messages: list[Any], end_offset: int | None = None) -> None:
        """Apply one partition's fetched records in order, then checkpoint if one is due (never inside a batch).

        `end_offset` is the partition's end as last fetched: it tells whether the partition is behind.
        """
        partition = tp.partition
        if partition not in self.runtimes and self.owned is not None and partition not in self.owned:
            return  # fetched before a rebalance moved the partition away: its new owner processes it
        rt = await self.runtime(partition)
        if rt is None:
            return  # moved away while its state was read: its new owner processes the records
        self.busy += 1
        try:
            async with rt.apply_lock:
                first = messages[0]
                done = rt.offsets.get(tp.topic)
                skipped = tp.topic not in rt.synced if done is None else first.offset > done + 1
                if skipped:
                    await self._continue_state(rt, tp, first.offset)
                await self.handle_batch(rt, messages)
        finally:
            self.busy -= 1
        rt.unacked.append(Acknowledgements.of(tp, messages))
        behind = end_offset is not None and end_offset - messages[-1].offset - 1 > BEHIND_RECORDS
        rt.behind_at = time.monotonic() if behind else None
        self.since_checkpoint += len(messages)
        if self.since_checkpoint >= self.settings.checkpoint_events or self.checkpoint_due():
            await self.checkpoint_now()

    async def checkpoint_now(self) -> None:
        """Send the update records accumulated since the last checkpoint, then snapshot (never inside a batch)."""
        if self.checkpointing is not None or self.busy:
            return
        self.busy += 1
        try:
            await self.send_updates()
        finally:
            self.busy -= 1
        self.start_checkpoint()

    async def handle_batch(self, rt: PartitionRuntime[C], messages: list[Any]) -> None:
        """Apply one partition's records in order and hand what they produced to the sink."""
        raise NotImplementedError

    async def send_updates(self) -> None:
        """Send the update records that accumulated since the last checkpoint."""

    def new_core(self, meta: dict[str, Any] | None, entries: dict[str, Any]) -> C:
        """A core restored from its checkpoint."""
        raise NotImplementedError

    def is_new(self, rt: PartitionRuntime[C], message: Any) -> bool:
        """Record the offset; False when the restored checkpoint already holds this record."""
        if message.offset <= rt.offsets.get(message.topic, -1):
            self.metrics.redelivered.inc()
            return False
        rt.offsets[message.topic] = message.offset
        return True

    async def _continue_state(self, rt: PartitionRuntime[C], tp: Any, offset: int) -> None:
        """Make delivery continue the partition's state, catching up on records Faust skipped.

        Faust's streams drop (and acknowledge) records they consider stale, around rebalances and at
        start-up, so delivery can jump past records this worker never applied, and Faust can commit
        their offsets. The offsets stored with the state are the truth: when a delivered record is past
        them, the records in between are read with a plain consumer and applied first.
        """
        expected = await self._expected(rt, tp)
        if offset > expected:
            await self._catch_up(rt, tp, expected, offset)
        rt.synced.add(tp.topic)

    async def reconcile(self) -> None:
        """Apply what Faust committed but this worker never applied, for partitions no record reaches.

        A partition whose skipped records reach its end gets no more deliveries, so the first-delivery
        check above never runs for it; comparing the group's committed offsets finds it.
        """
        app = self.worker.app
        if app.rebalancing or not app.flow_control.is_active():
            return  # the table may still be recovering; try at the next tick
        tps = [tp for tp in app.assignor.assigned_actives() if tp.topic in self.topics]
        committed = await self.worker.clients.committed_offsets(tps)
        for tp in tps:
            resume = committed.get(tp)
            if resume is None or not self._owns(tp.partition):
                continue
            rt = await self.runtime(tp.partition)
            if rt is None or resume <= rt.offsets.get(tp.topic, -1) + 1:
                continue
            self.busy += 1
            try:
                async with rt.apply_lock:
                    expected = await self._expected(rt, tp)
                    if self._current(rt) and resume > expected:
                        await self._catch_up(rt, tp, expected, resume)
            finally:
                self.busy -= 1

    async def _expected(self, rt: PartitionRuntime[C], tp: Any) -> int:
        """The next offset the partition's state needs: after its stored offset, else the log start."""
        done = rt.offsets.get(tp.topic)
        return done + 1 if done is not None else await self.worker.clients.earliest_offset(tp)

    async def _catch_up(self, rt: PartitionRuntime[C], tp: Any, start: int, stop: int) -> None:
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
        batch: list[Any] = []
        async for record in self.worker.clients.read_range(tp, start, stop):
            batch.append(record)
            if len(batch) >= CATCH_UP_BATCH:
                await self.handle_batch(rt, batch)
                batch = []
        if batch:
            await self.handle_batch(rt, batch)

    # --- durable state ---------------------------------------------------------------------

    def checkpoint_due(self) -> bool:
        """Whether unacknowledged work, or unsent updates, are older than the checkpoint interval.

        While a partition of the worker is behind its input (a topic read from far back), the longer catch-up
        interval applies to every stage: a checkpoint rewrites every entry that changed since the last, and
        reading from far back changes nearly all of them between two checkpoints (the merge stage's too, fed
        by the interval stage's catch-up), so checkpointing by time then costs more than the work it saves at
        a restart. ACW_CHECKPOINT_EVENTS still bounds the events a restart repeats.
        """
        if not (self.since_checkpoint > 0 or self.has_updates()):
            return False
        interval = self.settings.checkpoint_interval_seconds
        if any(stage.catching_up() for stage in self.worker.stages):
            interval = max(interval, self.settings.catch_up_checkpoint_interval_seconds)
        return time.monotonic() - self.last_checkpoint >= interval

    def catching_up(self) -> bool:
        """Whether a partition this worker owns was behind its input at its last batch, within a catch-up interval."""
        since = time.monotonic() - self.settings.catch_up_checkpoint_interval_seconds
        return any(
            rt.behind_at is not None and rt.behind_at > since and self._owns(rt.partition)
            for rt in self.runtimes.values()
        )

    def has_updates(self) -> bool:
        """Whether update records wait for the next checkpoint (records applied while the last one was taken)."""
        return False

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
                entries = changed_entries(rt.core)
                snapshot.append(_Snapshot(rt, entries, list(entries), meta, rt.unacked))
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
        owner restores; if the partition comes back to this worker with its core kept, its changes
        count as unwritten again, or the next checkpoint would store offsets past entries never written.
        """
        written: list[_Snapshot] = []
        skipped: set[int] = set()  # ids of snapshots already counted as unwritten
        try:
            await self.worker.sink.flush()
            producer = await self.worker.clients.state_producer()
            topic = self.table.changelog_topic.get_topic_name()
            sent: list[Any] = []
            in_flight = 0
            changes: list[Change] = []
            for snap in snapshot:
                if not self._current(snap.runtime):
                    _unwritten(snap)  # its next owner restores from the last written state
                    skipped.add(id(snap))
                    continue
                if in_flight > STATE_IN_FLIGHT_BYTES:  # bound the batches held at once (catch-up dirties every entry)
                    await asyncio.gather(*sent)
                    in_flight = 0
                futures, size, change = await self._write_batch(producer, topic, snap)
                sent += futures
                in_flight += size
                changes.append(change)
                written.append(snap)
            await asyncio.gather(*sent)
            consumer = self.worker.app.consumer
            for snap, change in zip(written, changes, strict=True):
                snap.runtime.fingerprint.commit(change)  # written, whether or not the partition is still ours
                if self._current(snap.runtime):
                    for acks in snap.unacked:
                        acknowledge(consumer, acks)
            self.metrics.checkpoints.labels(self.name).inc()
            self.metrics.checkpoint_entries.labels(self.name).inc(sum(len(snap.names) for snap in written))
        except OutputsLost as exc:
            # The core already moved past outputs that are gone: no later state may be written. Stopping
            # makes the next start restore the last checkpoint and produce them again.
            log.critical("%s: %s; stopping so that a restart produces them again", self.name, exc)
            for snap in snapshot:
                _unwritten(snap)
            self.worker.fail(exc)
        except Exception:
            log.exception("%s checkpoint failed; its records stay unacked and will be redelivered", self.name)
            for snap in snapshot:  # try again with everything at the next checkpoint
                if id(snap) not in skipped:
                    _unwritten(snap)
        finally:
            self.checkpointing = None

    async def _write_batch(self, producer: Any, topic: str, snap: _Snapshot) -> tuple[list[Any], int, Change]:
        """One partition's checkpoint as one record batch (more only past STATE_BATCH_BYTES, with a warning).

        Keys are the JSON strings the table's key codec reads; None values delete. The meta comes last,
        so even a checkpoint split over batches never stores offsets ahead of its entries; it carries the
        fingerprint of every live entry after this checkpoint, for the next restore to check itself against.
        Returns the delivery futures, the batches' size in bytes and the change to the fingerprint.
        """
        p = snap.runtime.partition
        change = snap.runtime.fingerprint.change()
        batches = [producer.create_batch()]
        entries = snap.entries
        for entry in snap.names:  # an entry's JSON lives only until it is in the batch
            value = entries.pop(entry)
            change.write(entry, value)
            self._append(producer, batches, p, orjson.dumps(f"{p}|{entry}"), value)
        meta = orjson.dumps({**snap.meta, **change.meta()})
        self._append(producer, batches, p, orjson.dumps(f"{p}|m"), meta)
        size = sum(batch.size() for batch in batches)
        futures = [await producer.send_batch(batch, topic, partition=p) for batch in batches]
        return futures, size, change

    def _append(self, producer: Any, batches: list[Any], p: int, key: bytes, value: bytes | None) -> None:
        """Add one record to the last batch, or to a new one when it is full."""
        if batches[-1].append(key=key, value=value, timestamp=None) is None:
            log.warning("%s: checkpoint of partition %d spans several batches", self.name, p)
            batches.append(producer.create_batch())
            if batches[-1].append(key=key, value=value, timestamp=None) is None:
                raise ValueError(f"state entry {key!r} is larger than a record batch")

    def _current(self, rt: PartitionRuntime[C]) -> bool:
        """Whether this core still owns its partition (not revoked, not replaced)."""
        return self._owns(rt.partition) and self.runtimes.get(rt.partition) is rt

    async def runtime(self, partition: int) -> PartitionRuntime[C] | None:
        """The partition's runtime, restored from its checkpoint on first use.

        A restore that had to wait (reading the changelog) while the assignment changed is done again, or
        dropped (None) when the partition is no longer this worker's: its new owner restores it.
        """
        while True:
            rt = self.runtimes.get(partition)
            if rt is not None:
                return rt
            generation = self.generation
            rt = await self._restore(partition)
            if partition in self.runtimes:
                self.discarded(rt)
                continue  # restored meanwhile by another coroutine: that one is kept
            if generation == self.generation:
                self.runtimes[partition] = rt
                return rt
            self.discarded(rt)
            if not self._owns(partition):
                return None

    def discarded(self, rt: PartitionRuntime[C]) -> None:
        """A restored runtime that is not kept (the assignment changed while it was restored)."""

    async def _restore(self, partition: int) -> PartitionRuntime[C]:
        """Rebuild a partition's core from the local store, or from the changelog when the store is not whole."""
        entries, meta = self._stored(partition)
        fingerprint = Fingerprint.of(entries)
        source = "local store"
        if meta is not None and not fingerprint.matches(meta):
            log.warning(
                "%s: the local store of partition %d disagrees with its checkpoint (%d entries, %d expected): "
                "reading the changelog instead",
                self.name,
                partition,
                len(fingerprint.hashes),
                meta.get("n", -1),
            )
            self.metrics.restores_from_changelog.labels(self.name).inc()
            entries, meta = await self._read_changelog(partition)
            fingerprint, source = Fingerprint.of(entries), "changelog"
            if meta is not None and not fingerprint.matches(meta):
                # Only a checkpoint split over several batches whose last did not land leaves this.
                log.warning("%s: partition %d's changelog holds entries newer than its meta", self.name, partition)
        core = self.new_core(meta["core"] if meta else None, entries)
        offsets = dict(meta["offsets"]) if meta else {}
        log.info(
            "%s: restored partition=%d from=%s entries=%d offsets=%s",
            self.name,
            partition,
            source,
            len(entries),
            offsets,
        )
        return PartitionRuntime(partition, core, offsets, fingerprint=fingerprint)

    def _stored(self, partition: int) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """A partition's live entries and meta as the local store (recovered by Faust) holds them."""
        prefix = f"{partition}|"
        entries = {k[len(prefix) :]: v for k, v in self.table.items() if k.startswith(prefix) and v is not None}
        return entries, entries.pop("m", None)

    async def _read_changelog(self, partition: int) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """A partition's live entries and meta read from its changelog topic, from the log start to its end."""
        prefix = f"{partition}|"
        entries: dict[str, Any] = {}
        topic = self.table.changelog_topic.get_topic_name()
        async for key, value in self.worker.clients.read_log(topic, partition):
            name = orjson.loads(key)
            if isinstance(name, str) and name.startswith(prefix):
                entries[name[len(prefix) :]] = None if value is None else orjson.loads(value)
        entries = {k: v for k, v in entries.items() if v is not None}
        return entries, entries.pop("m", None)

    def owned_runtimes(self) -> list[PartitionRuntime[C]]:
        """The runtimes of partitions this worker owns now."""
        return [rt for rt in self.runtimes.values() if self._owns(rt.partition)]

    def _owns(self, partition: int) -> bool:
        return self.owned is None or partition in self.owned

    def on_assigned(self, assigned: set[Any]) -> None:
        """Keep the cores of retained partitions (their memory is newer than any store); drop the rest."""
        self.owned = {tp.partition for tp in assigned if tp.topic in self.topics}
        self.generation += 1
        for partition, rt in list(self.runtimes.items()):
            if partition not in self.owned:
                del self.runtimes[partition]
            else:
                rt.synced.clear()  # Faust re-seeks retained partitions: check where their delivery resumes
        log.info("%s: assigned partitions %s", self.name, sorted(self.owned))

    async def close(self) -> None:
        """Release what the stage holds besides its Kafka clients (on a clean stop)."""

    async def settle(self) -> None:
        """Wait until every batch taken so far has handed its outputs to the sink (they are, in one process)."""

    def on_revoked(self, revoked: set[Any]) -> None:
        """Stop checkpointing revoked partitions; keep their cores in case they are assigned back."""
        if self.owned is not None:
            self.owned -= {tp.partition for tp in revoked if tp.topic in self.topics}


def _unwritten(snap: _Snapshot) -> None:
    """Count a snapshot's changes and records as not yet checkpointed, for the runtime's next checkpoint."""
    snap.runtime.core.mark_dirty(snap.names)
    snap.runtime.unacked[:0] = snap.unacked
