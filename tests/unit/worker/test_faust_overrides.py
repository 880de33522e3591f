"""The Faust overrides still match the Faust they were written for, and the ack repair does what it says."""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import random
from collections.abc import Callable
from typing import Any

import faust
import pytest
from faust.app.base import App
from faust.transport.consumer import Consumer
from faust.types import TP

from streams.worker.faust_overrides import (
    FAUST_VERSION,
    Acknowledgements,
    BatchApp,
    BatchConsumer,
    acknowledge,
)
from tests.support.seeds import logged_seed

# The code `streams/worker/faust_overrides.py` replaces or copies the checks of, as of FAUST_VERSION.
# When an upgrade changes one of these, re-read it against the override, then update its digest here.
REPLACED: dict[str, tuple[Callable[..., Any], str]] = {
    "Consumer._drain_messages": (
        Consumer._drain_messages,
        "44a2500309e83c630493f6828af50166ec8d96a0b3e4fb2bab735f704ae93417",
    ),
    "Consumer.getmany": (Consumer.getmany, "4b168d84882a70d6e3e2f9804430a63b92f8fd117d3187cbb4aeb54305bda34e"),
    # Replaced by `BatchConsumer._new_offset`, which reads the runs `acknowledge` books.
    "Consumer._new_offset": (Consumer._new_offset, "1d2c7ea89a7ad4f1a216c1d51936e569162cd66bd56f889e13fd29c910b58eb0"),
    "App._new_transport": (App._new_transport, "42db531312dd776fc3937154a32f19eeb9ad7d4ebc2722a92d081a2d271baea1"),
    # Done for a whole batch by `acknowledge`.
    "Consumer.ack": (Consumer.ack, "5fcf41cf45153475de3790dc56fec1b83335956dc8b3bf7ff6bbb2b57627f03f"),
}


def test_faust_is_the_version_the_overrides_were_written_for() -> None:
    assert faust.__version__ == FAUST_VERSION


@pytest.mark.parametrize("name", sorted(REPLACED))
def test_the_overridden_faust_code_is_unchanged(name: str) -> None:
    function, digest = REPLACED[name]
    source = inspect.getsource(function)
    assert hashlib.sha256(source.encode()).hexdigest() == digest, f"Faust changed {name}: re-check the override"


def test_the_app_builds_its_consumer_from_the_batch_consumer() -> None:
    app = BatchApp("acw-override-test", broker="kafka://127.0.0.1:9", web_enabled=False)
    assert app.batch_handlers == {}
    assert app.transport.Consumer is BatchConsumer
    assert type(app.consumer) is BatchConsumer


class _Message:
    """What Faust's `Consumer.ack` reads of a message (weak-referenceable: Faust discards it from a WeakSet)."""

    __slots__ = ("__weakref__", "acked", "offset", "topic", "tp")

    def __init__(self, tp: TP, offset: int) -> None:
        self.tp, self.topic, self.offset, self.acked = tp, tp.topic, offset, False


def _consumer() -> Any:
    app = BatchApp("acw-override-test", broker="kafka://127.0.0.1:9", web_enabled=False)
    app.topics._acking_topics.add("t")  # as subscribing the stage's topic with acks does
    return app.consumer


def _booked(consumer: Any, tp: TP) -> list[int]:
    """The offsets in Faust's books for `tp`, in booking order (runs expanded)."""
    return [offset for entry in consumer._acked[tp] for offset in (entry if isinstance(entry, range) else [entry])]


@pytest.mark.parametrize(
    ("batches", "committed", "expected"),
    [
        ([[5, 6, 7]], None, [5, 6, 7]),
        ([[5, 6], [6, 7]], None, [5, 6, 7]),  # a redelivered offset is acknowledged once
        ([[3, 4, 5, 6]], 5, [5, 6]),  # offsets before the committed one are not
        ([[5, 7, 8]], None, [5, 7, 8]),  # a batch that skips an offset acknowledges only its records
        ([[9], [5, 6]], None, [9, 5, 6]),  # kept in acknowledgement order; sorted at commit time
        ([[4, 5, 6], [2, 3, 4, 5, 6, 7, 8]], None, [4, 5, 6, 2, 3, 7, 8]),  # only the new parts of a wider batch
    ],
)
def test_a_batch_is_acknowledged_in_the_books_faust_commits_from(
    batches: list[list[int]], committed: int | None, expected: list[int]
) -> None:
    consumer, tp = _consumer(), TP("t", 0)
    consumer._committed_offset[tp] = committed
    for offsets in batches:
        acknowledge(consumer, Acknowledgements.of(tp, [_Message(tp, o) for o in offsets]))
    assert _booked(consumer, tp) == expected
    assert consumer._n_acked == len(expected)
    assert len(consumer._acked[tp]) <= len(batches) + 1  # runs, not one entry per offset


def test_a_topic_without_acks_is_left_alone() -> None:
    consumer, tp = _consumer(), TP("t-no-acks", 0)
    assert acknowledge(consumer, Acknowledgements(tp, range(3))) == 0
    assert consumer._acked[tp] == [] and consumer._n_acked == 0


def test_commits_come_out_as_faust_acking_each_message_would() -> None:
    """Batches (redelivered in part, none skipping an offset) commit where Faust's own books would."""
    asyncio.run(_compare_commits(random.Random(logged_seed("acknowledgement orders")), skips=0.0, model=False))


def test_commits_with_skipped_offsets_come_out_as_faust_with_repeats_joined() -> None:
    """With skipped offsets, commits equal Faust's steps with its books as a set (its repeats joined)."""
    asyncio.run(_compare_commits(random.Random(logged_seed("acknowledgement gaps")), skips=0.1, model=True))


def test_a_skipped_offset_does_not_split_the_commit() -> None:
    """Faust books a gap up to and including the next delivered offset, a repeat that split its run (#625)."""

    async def commits(new_offset: Callable[[Any, TP], int | None]) -> int | None:
        consumer, tp = _consumer(), TP("t", 0)
        await consumer._add_gap(tp, 8, 9)  # offset 8 skipped, as `_drain_messages` books it before 9
        acknowledge(consumer, Acknowledgements.of(tp, [_Message(tp, o) for o in (5, 6, 7, 9, 10, 11)]))
        return new_offset(consumer, tp)

    assert asyncio.run(commits(BatchConsumer._new_offset)) == 12
    assert asyncio.run(commits(lambda c, tp: Consumer._new_offset(c, tp) if _expand(c, tp) else None)) == 10


def _expand(consumer: Any, tp: TP) -> bool:
    """Turn the runs in the books into Faust's one int per offset, for Faust's own `_new_offset` to read."""
    consumer._acked[tp] = _booked(consumer, tp)
    return True


def _model_new_offset(consumer: Any, tp: TP, books: set[int]) -> int | None:
    """Faust 0.15.3's `_new_offset` step by step, its list of acknowledged offsets a set."""
    if not books:
        return None
    max_offset = max(books)
    gaps = consumer._gap[tp]
    if gaps:
        candidates = sorted(gaps.overlap(0, max_offset), key=lambda x: x.begin)
        if candidates:
            added = [o for gap in candidates for o in range(gap.begin, gap.end)]
            books.update(added)
            gaps.chop(0, max(added[-1], max_offset + 1))
    committed = consumer._committed_offset[tp]
    if committed and min(books) - committed > 1:
        return None
    end = min(books)
    while end in books:
        books.discard(end)
        end += 1
    return end


async def _compare_commits(rng: random.Random, skips: float, model: bool) -> None:
    for _ in range(300):
        ours, theirs, tp = _consumer(), _consumer(), TP("t", rng.randrange(2))
        committed = rng.choice([None, 0, rng.randrange(20)])
        ours._committed_offset[tp] = theirs._committed_offset[tp] = committed
        log_end = rng.randrange(5, 60)
        skipped = {o for o in range(log_end) if rng.random() < skips}  # markers or compacted: never delivered
        records = [o for o in range(log_end) if o not in skipped]
        # Delivery may start past the committed offset (records Faust skipped): nothing commits over that hole.
        position, delivered, modelled, commits = rng.randrange(4), None, set(), []
        while position < len(records):
            start = max(0, position - rng.randrange(3))  # a catch-up after a seek repeats a few records
            batch = records[start : position + rng.randrange(1, 9)]
            position = max(position, records.index(batch[-1]) + 1)
            previous = delivered  # as `_drain_messages` books the offsets a delivery skipped
            for offset in batch:
                if delivered is None or offset > delivered:
                    if previous and offset - previous > 1:
                        await ours._add_gap(tp, previous + 1, offset)
                        await theirs._add_gap(tp, previous + 1, offset)
                    previous = delivered = offset
            acknowledge(ours, Acknowledgements.of(tp, [_Message(tp, o) for o in batch]))
            for offset in batch:
                theirs.ack(_Message(tp, offset))
            now = theirs._committed_offset[tp]
            modelled.update(o for o in batch if now is None or o >= now)
            assert ours._n_acked == theirs._n_acked
            if rng.random() < 0.4:
                mine = ours._new_offset(tp)
                expected = _model_new_offset(theirs, tp, modelled) if model else Consumer._new_offset(theirs, tp)
                assert mine == expected, (committed, batch, commits)
                commits.append(mine)
                if mine is not None and ours._should_commit(tp, mine):
                    ours._committed_offset[tp] = theirs._committed_offset[tp] = mine
