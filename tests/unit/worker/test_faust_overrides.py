"""The Faust overrides still match the Faust they were written for, and the ack repair does what it says."""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Callable
from typing import Any

import faust
import pytest
from faust.app.base import App
from faust.transport.consumer import Consumer
from faust.types import TP

from streams.worker.faust_overrides import FAUST_VERSION, Acknowledgement, BatchApp, BatchConsumer, dedupe_acks

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
    # Not replaced: the fields it reads are what `Acknowledgement` carries.
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


def test_faust_acknowledges_an_acknowledgement_once_as_it_would_the_message() -> None:
    app = BatchApp("acw-override-test", broker="kafka://127.0.0.1:9", web_enabled=False)
    app.topics._acking_topics.add("t")  # as subscribing the stage's topic with acks does
    tp = TP("t", 0)
    first = Acknowledgement(tp, 5)
    assert app.consumer.ack(first) is True and first.acked
    assert app.consumer.ack(first) is False  # a repeat is ignored
    assert app.consumer.ack(Acknowledgement(tp, 6)) is True
    assert app.consumer._acked[tp] == [5, 6]


class _Acked:
    """The one attribute of Faust's consumer that `dedupe_acks` repairs."""

    def __init__(self, acked: dict[str, list[int]]) -> None:
        self._acked = acked


def test_repeated_acknowledgements_are_dropped_and_the_rest_kept_in_order() -> None:
    consumer = _Acked({"t-0": [5, 6, 6, 7, 5], "t-1": [3, 4]})
    dedupe_acks(consumer)
    assert consumer._acked == {"t-0": [5, 6, 7], "t-1": [3, 4]}
