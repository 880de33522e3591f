"""Every place the worker changes Faust's own behaviour, pinned to the one Faust version it was written for.

Faust stays the application: group membership, partition assignment, rebalance callbacks, changelog
tables and their recovery. Two things are overridden:

- delivery: Faust makes a message of each fetched record and hands it to its conductor, a topic queue, a
  stream iterator and an `Event`, with a `wait_first` per record; on our topics a partition's fetched
  records go to the stage as they were fetched, in one call (`BatchConsumer._drain_messages`);
- acknowledgements: repeated offsets in Faust's list of acknowledged offsets are dropped
  (`dedupe_acks`), so its commits keep up after a seek; records waiting for a checkpoint are held as
  one `Acknowledgements` (a range of offsets) per delivered batch, and `acknowledge` does for the whole
  batch what `Consumer.ack` does for one message.

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
    committed offset, once per offset (its index), appended to the offsets its commit reads, counted
    for `commit_every`, waking whoever waits for acknowledgements. Offsets a batch skipped are not
    added: Faust's gap tracking adds those, and a repeat would split the run a commit covers.
    Returns how many offsets were new.
    """
    tp = acks.tp
    with ack_lock:
        if not consumer.app.topics.acks_enabled_for(tp.topic):
            return 0
        offsets = acks.offsets
        committed = consumer._committed_offset[tp]
        if committed is not None and offsets and offsets[0] < committed:
            offsets = [o for o in offsets if o >= committed]
        if offsets:
            index = consumer._acked_index[tp]
            if not index.isdisjoint(offsets):
                offsets = [o for o in offsets if o not in index]
            if offsets:
                index.update(offsets)
                consumer._acked[tp].extend(offsets)
                consumer._n_acked += len(offsets)
        notify(consumer._waiting_for_ack)
        return len(offsets)


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


def dedupe_acks(consumer: Any) -> None:
    """Drop repeated offsets from Faust's list of acknowledged offsets, so its commits keep up.

    Faust fills offset gaps it saw around a seek into that list without checking for offsets
    already there (faust 0.15.3 `Consumer._new_offset`; robinhood/faust#625). A repeat splits the
    run of consecutive offsets that a commit covers, and after a restart the group's committed
    offsets then crawl forward one offset per commit interval: a lag monitor shows false lag for
    minutes, and a crash meanwhile replays more than it needs to.
    """
    acked = getattr(consumer, "_acked", None)
    if not acked:
        return
    for tp, offsets in acked.items():
        if len(offsets) != len(set(offsets)):
            log.info("dropped %d repeated acknowledgements of %s", len(offsets) - len(set(offsets)), tp)
            offsets[:] = sorted(set(offsets))
