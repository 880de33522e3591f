"""Every place the worker changes Faust's own behaviour, pinned to the one Faust version it was written for.

Faust stays the application: group membership, partition assignment, rebalance callbacks, changelog
tables and their recovery. Two things are overridden:

- delivery: Faust hands each fetched record to its conductor, a topic queue, a stream iterator and an
  `Event`, with a `wait_first` per record; on our topics a partition's fetched records go to the
  stage in one call instead (`BatchConsumer._drain_messages`);
- acknowledgements: repeated offsets in Faust's list of acknowledged offsets are dropped
  (`dedupe_acks`), so its commits keep up after a seek; records waiting for a checkpoint are held as
  `Acknowledgement`s, the fields `Consumer.ack` reads, instead of as Faust messages.

`tests/unit/worker/test_faust_overrides.py` fails when an upgrade changes the code these replace.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import faust
from faust.transport.drivers.aiokafka import Consumer
from faust.types import TP, Message

log = logging.getLogger("acw.worker")

# The Faust release whose code this module replaces; see the test named above.
FAUST_VERSION = "0.15.3"

BatchHandler = Callable[[TP, list[Message]], Awaitable[None]]


class BatchConsumer(Consumer):
    """Faust's aiokafka consumer, delivering a partition's fetched records in one call where a handler is set.

    Topics without a handler (none in the worker today) keep Faust's per-record delivery. Kept from
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
                    messages = [self._to_message(tp, r) for r in batch if last is None or r.offset >= last]
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
                    self.app.monitor.track_tp_end_offset(tp, self.highwater(tp))
                    handler = handlers.get(tp.topic)
                    if handler is not None:
                        await handler(tp, messages)
                    else:
                        for message in messages:
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


class Acknowledgement:
    """What Faust's `Consumer.ack` reads of a message: held until a checkpoint instead of the message itself.

    A stage acknowledges a record only once the checkpoint covering it is written, seconds after the
    record was applied; a Faust message would keep its fetched key and value alive that long (tens of
    MB at a high rate).
    """

    __slots__ = ("__weakref__", "acked", "offset", "topic", "tp")  # Faust discards it from a WeakSet

    def __init__(self, tp: TP, offset: int) -> None:
        self.tp = tp
        self.topic = tp.topic
        self.offset = offset
        self.acked = False


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
