"""The Faust overrides still match the Faust they were written for, and the ack repair does what it says."""

from __future__ import annotations

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
    dedupe_acks,
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


def _books(consumer: Any) -> tuple[Any, ...]:
    return (dict(consumer._acked), dict(consumer._acked_index), consumer._n_acked)


@pytest.mark.parametrize(
    ("batches", "committed", "expected"),
    [
        ([[5, 6, 7]], None, [5, 6, 7]),
        ([[5, 6], [6, 7]], None, [5, 6, 7]),  # a redelivered offset is acknowledged once
        ([[3, 4, 5, 6]], 5, [5, 6]),  # offsets before the committed one are not
        ([[5, 7, 8]], None, [5, 7, 8]),  # a batch that skips an offset acknowledges only its records
        ([[9], [5, 6]], None, [9, 5, 6]),  # kept in acknowledgement order; Faust sorts at commit time
    ],
)
def test_a_batch_is_acknowledged_in_the_books_faust_commits_from(
    batches: list[list[int]], committed: int | None, expected: list[int]
) -> None:
    consumer, tp = _consumer(), TP("t", 0)
    consumer._committed_offset[tp] = committed
    for offsets in batches:
        acknowledge(consumer, Acknowledgements.of(tp, [_Message(tp, o) for o in offsets]))
    assert consumer._acked[tp] == expected
    assert consumer._acked_index[tp] == set(expected)
    assert consumer._n_acked == len(expected)


def test_a_topic_without_acks_is_left_alone() -> None:
    consumer, tp = _consumer(), TP("other", 0)
    assert acknowledge(consumer, Acknowledgements(tp, range(3))) == 0
    assert consumer._acked[tp] == [] and consumer._n_acked == 0


def test_a_batch_leaves_the_books_as_faust_acking_each_message_would() -> None:
    rng = random.Random(logged_seed("acknowledgement orders"))
    for _ in range(200):
        ours, theirs, tp = _consumer(), _consumer(), TP("t", rng.randrange(2))
        committed = rng.choice([None, rng.randrange(20)])
        ours._committed_offset[tp] = theirs._committed_offset[tp] = committed
        for _ in range(rng.randrange(1, 5)):
            first = rng.randrange(30)
            offsets = sorted({first, *(first + rng.randrange(8) for _ in range(rng.randrange(6)))})
            acknowledge(ours, Acknowledgements.of(tp, [_Message(tp, o) for o in offsets]))
            for offset in offsets:
                theirs.ack(_Message(tp, offset))
        assert _books(ours) == _books(theirs), (committed, tp)


class _Acked:
    """The one attribute of Faust's consumer that `dedupe_acks` repairs."""

    def __init__(self, acked: dict[str, list[int]]) -> None:
        self._acked = acked


def test_repeated_acknowledgements_are_dropped_and_the_rest_kept_in_order() -> None:
    consumer = _Acked({"t-0": [5, 6, 6, 7, 5], "t-1": [3, 4]})
    dedupe_acks(consumer)
    assert consumer._acked == {"t-0": [5, 6, 7], "t-1": [3, 4]}
