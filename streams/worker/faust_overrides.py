"""Every place the worker changes Faust's own behaviour, pinned to the one Faust version it was written for.

Faust stays the application: group membership, partition assignment, rebalance callbacks, changelog
tables and their recovery. Two things are overridden:

- delivery: Faust makes a message of each fetched record and hands it to its conductor, a topic queue, a
  stream iterator and an `Event`, with a `wait_first` per record; on our topics a partition's fetched
  records go to the stage as they were fetched, in one call (`BatchConsumer._drain_messages`);
- acknowledgements: records waiting for a checkpoint are held as one `Acknowledgements` (a range of
  offsets) per delivered batch; `acknowledge` does for the whole batch what `Consumer.ack` does for one
  message, booking runs of offsets instead of one int each, and `BatchConsumer._new_offset` works out
  Faust's commit offset from those runs (repeated offsets joined, so commits keep up after a seek).

`tests/unit/worker/test_faust_overrides.py` fails when an upgrade changes the code these replace.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import faust
from faust.transport.drivers.aiokafka import Consumer
from faust.types import TP
from faust.types.tuples import ack_lock
from mode.utils.futures import notify

log = logging.getLogger("acw.worker")

# The Faust release whose code this module replaces; see the test named above.
FAUST_VERSION = "0.15.3"

# A handler gets aiokafka's `ConsumerRecord`s as fetched (timestamps in ms), not Faust messages made of them,
# and the partition's end offset as last fetched (None: not known yet).
BatchHandler = Callable[[TP, list[Any], int | None], Awaitable[None]]


class BatchConsumer(Consumer):
    """Faust's aiokafka consumer, delivering a partition's fetched records in one call where a handler is set.

    A handler gets the fetched `ConsumerRecord`s themselves: no Faust message is made per record. Topics
    without a handler (none in the worker today) keep Faust's per-record delivery. Kept from
    Faust's loop: the read-offset check that drops records already delivered and the tracking of
    skipped offsets for the commit (both per record); the commit trigger, flow control and the
    generation check that stops delivering a fetch made before a rebalance (per batch).
    """

    async def _drain_messages(self, fetcher: Any) -> None:  # replaces faust.transport.consumer.Consumer's
        handlers: Mapping[str, BatchHandler] = getattr(self.app, "batch_handlers", {})
        read_offset = self._read_offset
        acks_enabled_for = self.app.topics.acks_enabled_for
        try:
            while not (self._stopped.is_set() or fetcher._stopped.is_set()):
                records, active = await self._wait_next_records(1.0)
                await asyncio.sleep(0)
                if records is None or self.should_stop:
                    continue
                if not self.flow_active:
                    await self._seek_back()
                    continue
                generation = self.app.consumer_generation_id
                for tp, batch in records.items():
                    if not self.flow_active or self.app.consumer_generation_id != generation:
                        break  # a rebalance began: the new assignment seeks where delivery resumes
                    if not batch or not (active is None or tp in active or tp in self._buffered_partitions):
                        continue
                    last = read_offset[tp]
                    if last is None or batch[0].offset >= last:
                        messages = batch
                    else:
                        messages = [r for r in batch if r.offset >= last]
                        if not messages:
                            continue
                    if acks_enabled_for(tp.topic):  # offsets a topic skips (transaction markers, compaction)
                        previous = last
                        for message in messages:
                            if previous and message.offset - previous > 1:
                                await self._add_gap(tp, previous + 1, message.offset)
                            previous = message.offset
                    if self._commit_every is not None and self._n_acked >= self._commit_every:
                        self._n_acked = 0
                        await self.commit()
                    end_offset = self.highwater(tp)
                    self.app.monitor.track_tp_end_offset(tp, end_offset)
                    handler = handlers.get(tp.topic)
                    if handler is not None:
                        await handler(tp, messages, end_offset)
                    else:
                        for record in messages:
                            message = self._to_message(tp, record)
                            await self.wait_first(self.callback(message), self.suspend_flow.wait())
                    read_offset[tp] = messages[-1].offset
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                return
            raise
        except Exception as exc:
            log.exception("delivering fetched records failed: %r", exc)
            raise

    def _new_offset(self, tp: TP) -> int | None:  # replaces faust.transport.consumer.Consumer's
        """The offset to commit for `tp`: past the first run of acknowledged offsets, as Faust works it out.

        Faust's books hold one int per acknowledged offset; `acknowledge` holds runs of them. The same steps
        as Faust's: offsets its gap tracking saw skipped below the highest acknowledged one join the books,
        nothing is committed while the books start more than one past the committed offset, else the first
        run leaves the books and the offset after it is committed. Repeated offsets, which split Faust's run
        (robinhood/faust#625), are joined here.
        """
        acked = self._acked[tp]
        if not acked:
            return None
        runs = [_as_run(entry) for entry in acked]
        max_offset = max(run[-1] for run in runs)
        gaps = self._gap[tp]
        if gaps:
            candidates = sorted(gaps.overlap(0, max_offset), key=lambda gap: gap.begin)
            if candidates:
                runs += [range(gap.begin, gap.end) for gap in candidates]
                gaps.chop(0, max(candidates[-1].end - 1, max_offset + 1))
        merged = _merged(runs)
        committed = self._committed_offset[tp]
        if committed and merged[0].start - committed > 1:
            acked[:] = merged
            return None
        acked[:] = merged[1:]
        index = self._acked_index.get(tp)
        if index:  # offsets Faust's own `ack` booked, on a topic without a batch handler
            index.difference_update([offset for offset in index if offset < merged[0].stop])
        return merged[0].stop

    async def _seek_back(self) -> None:
        """What Faust's `getmany` does when a fetch returns while flow is stopped: seek to the committed offsets."""
        try:
            await self.perform_seek()
        except Exception as exc:
            log.warning("seeking back to the committed offsets failed: %s", exc)


class Acknowledgements:
    """The offsets of one delivered batch of one partition, acknowledged together once a checkpoint covers them.

    A stage acknowledges records only once the checkpoint covering them is written, seconds after they
    were applied; holding one object per record (a Faust message, or the fields `Consumer.ack` reads)
    cost a Python object and a call per record. A batch of consecutive offsets is held as a `range`.
    """

    __slots__ = ("offsets", "tp")

    def __init__(self, tp: TP, offsets: range | list[int]) -> None:
        self.tp = tp
        self.offsets = offsets

    @classmethod
    def of(cls, tp: TP, messages: list[Any]) -> Acknowledgements:
        """The offsets of a batch's messages (given in offset order): a range unless the batch skips offsets."""
        first, last = messages[0].offset, messages[-1].offset
        if last - first + 1 == len(messages):
            return cls(tp, range(first, last + 1))
        return cls(tp, [m.offset for m in messages])


def acknowledge(consumer: Any, acks: Acknowledgements) -> int:
    """Mark a batch's offsets acknowledged in Faust's consumer, as `Consumer.ack` does one message's.

    Faust 0.15.3's `Consumer.ack`, per offset: only for topics with acks enabled, only at or past the
    committed offset, once per offset, added to the offsets its commit reads, counted for `commit_every`,
    waking whoever waits for acknowledgements. Here the offsets go into those books as runs (`range`s),
    which `BatchConsumer._new_offset` reads: one int object, list slot and set slot per offset made a
    checkpoint of 400,000 events hold about 45 MB until the next commit. Offsets a batch skipped are not
    added: Faust's gap tracking adds those. Returns how many offsets were new.
    """
    tp = acks.tp
    with ack_lock:
        if not consumer.app.topics.acks_enabled_for(tp.topic):
            return 0
        committed = consumer._committed_offset[tp]
        books: list[range | int] = consumer._acked[tp]
        new = 0
        for run in _runs(acks.offsets):
            if committed is not None and run.start < committed:
                run = range(committed, max(run.stop, committed))
                if not run:
                    continue
            for part in _unbooked(run, books):
                last = books[-1] if books else None
                if isinstance(last, range) and last.stop == part.start:
                    books[-1] = range(last.start, part.stop)
                else:
                    books.append(part)
                new += len(part)
        consumer._n_acked += new
        notify(consumer._waiting_for_ack)
        return new


def _runs(offsets: range | list[int]) -> list[range]:
    """Ascending offsets as runs of consecutive offsets."""
    if isinstance(offsets, range):
        return [offsets] if offsets else []
    runs: list[range] = []
    for offset in offsets:
        if runs and runs[-1].stop == offset:
            runs[-1] = range(runs[-1].start, offset + 1)
        else:
            runs.append(range(offset, offset + 1))
    return runs


def _as_run(entry: range | int) -> range:
    """An entry of Faust's acknowledged offsets as a run: ours are runs, Faust's own `ack` appends ints."""
    return entry if isinstance(entry, range) else range(entry, entry + 1)


def _unbooked(run: range, books: list[range | int]) -> list[range]:
    """The parts of `run` not yet in the books (a redelivered offset is acknowledged once)."""
    parts = [run]
    for entry in books:
        booked = _as_run(entry)
        parts = [piece for part in parts for piece in _minus(part, booked)]
    return parts


def _minus(part: range, booked: range) -> list[range]:
    """What of `part` lies outside `booked`."""
    if booked.stop <= part.start or part.stop <= booked.start:
        return [part]
    return [piece for piece in (range(part.start, booked.start), range(booked.stop, part.stop)) if piece]


def _merged(runs: list[range]) -> list[range]:
    """Runs sorted and joined where they overlap or touch."""
    merged: list[range] = []
    for run in sorted(runs, key=lambda r: r.start):
        if merged and run.start <= merged[-1].stop:
            if run.stop > merged[-1].stop:
                merged[-1] = range(merged[-1].start, run.stop)
        else:
            merged.append(run)
    return merged


class BatchApp(faust.App):
    """A Faust app whose consumer is the `BatchConsumer`, with `batch_handlers` keyed by topic name."""

    batch_handlers: dict[str, BatchHandler]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.batch_handlers = {}
        super().__init__(*args, **kwargs)

    def _new_transport(self) -> Any:
        transport = super()._new_transport()
        transport.Consumer = BatchConsumer
        return transport
