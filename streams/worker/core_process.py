"""The interval stage's cores in a process of their own: decoding, the ACW rules and checkpoint entries.

With `ACW_WORKER_PROCESSES=2` the worker starts this module as a child process (`streams/worker/core_client.py`)
and hands it, over a socket, each input batch's raw records. Decoding and the core are most of the worker's
CPU time, so they get a CPU core of their own while the worker fetches, encodes, sends and checkpoints.
Every request gets exactly one reply, in order. A batch's reply holds its outputs as the router's calls in
plain values (the worker encodes them), its dead letters by index into the batch, and what the metrics need.

Messages are pickles (`streams/worker/core_wire.py`); the first is the worker's settings. End of file (the
worker stopped, or died) ends this process. This module imports no Faust or Kafka client.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import time
import traceback
from collections import Counter
from collections.abc import Iterable
from operator import attrgetter
from typing import Any

from streams import gc_tuning
from streams.domain.aggregates import WindowKey, WindowStats
from streams.domain.events import InvalidEvent
from streams.domain.intervals import AcwInterval
from streams.domain.partition import PartitionCore
from streams.outputs import route
from streams.serialization import WriterSchemas
from streams.settings import Settings
from streams.worker.allocator import trim, tune
from streams.worker.core_wire import post, receive
from streams.worker.gauges import CoreGauges, core_gauges
from streams.worker.intake_batch import Tally, apply_records, build_intakes, core_counts
from streams.worker.state_entries import changed_entries

# What a recorded call is, in its first item; the worker replays them onto its sink in order.
INTERVAL, ALERT, REJECTED, PANE, PROGRESS, AGGREGATE, DEAD_LETTER, CALL_EVENT = range(8)

# An interval as the tuple of its constructor's arguments (mypyc's classes do not pickle).
interval_args = attrgetter(*AcwInterval.__dataclass_fields__)


class CoreFailure:
    """A request the core process could not serve: the worker stops with this traceback."""

    def __init__(self, text: str) -> None:
        self.text = text


class RecordedOutputs:
    """The router's calls for one request as plain tuples, sources as indexes into the batch."""

    __slots__ = ("calls",)

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def interval(self, interval: AcwInterval) -> None:
        self.calls.append((INTERVAL, interval_args(interval)))

    def alert(self, alert: dict[str, Any]) -> None:
        self.calls.append((ALERT, alert))

    def rejected(self, source: int | None, interval: AcwInterval, reason: str) -> None:
        self.calls.append((REJECTED, source, interval_args(interval), reason))

    def pane(self, pane: WindowKey, stats: WindowStats) -> None:
        self.calls.append((PANE, pane, stats))

    def progress(self, closed_through_ms: int) -> None:
        self.calls.append((PROGRESS, closed_through_ms))

    def aggregate(self, key: str, record: dict[str, Any]) -> None:
        self.calls.append((AGGREGATE, key, record))

    def dead_letter(self, source: int | None, reason: str, detail: str) -> None:
        self.calls.append((DEAD_LETTER, source, reason, detail))

    def call_event(self, key: bytes, value: bytes) -> None:
        self.calls.append((CALL_EVENT, key, value))


def core_state(core: PartitionCore) -> tuple[dict[str, int], int | None, bool]:
    """What the worker keeps of a core after each request: its counts, stream time, and whether views changed."""
    return core_counts(core), core.processor.watermark_ms, core.has_view_changes()


class CoreHost:
    """The cores of the worker's interval stage, by id, and the requests they serve."""

    def __init__(self, settings: Settings) -> None:
        self.rules = settings.rules()
        self.aggregation = settings.aggregation()
        self.writers = WriterSchemas() if settings.schema_registry_url else None
        self.intakes = build_intakes(settings, self.writers)
        self.rekey_topic = settings.rekey_topic
        self.cores: dict[int, PartitionCore] = {}

    def serve(self, request: tuple[Any, ...]) -> Any:
        """One request's reply."""
        return getattr(self, "_" + request[0])(*request[1:])

    def _ping(self) -> None:
        """Nothing: its reply tells that every earlier request's reply was handled."""

    def _restore(self, core_id: int, meta: dict[str, Any] | None, entries: dict[str, Any]) -> Any:
        core = self.cores[core_id] = PartitionCore.restore(self.rules, self.aggregation, meta, entries)
        return core_state(core)

    def _drop(self, core_ids: list[int]) -> None:
        for core_id in core_ids:
            self.cores.pop(core_id, None)

    def _writers(self, learned: list[tuple[int, str | tuple[str, str]]]) -> None:
        """Writer schemas the worker learnt from the registry: their text, or (reason, detail) of a refusal."""
        assert self.writers is not None
        for schema_id, writer in learned:
            if isinstance(writer, str):
                self.writers.add(schema_id, writer)
            else:
                self.writers.reject(schema_id, InvalidEvent(*writer))

    def _batch(self, core_id: int, topic: str, keys: list[bytes | None], values: list[bytes]) -> Any:
        core = self.cores.get(core_id)
        if core is None:
            return None  # dropped (its partition was revoked) while the batch was on its way
        out = RecordedOutputs()
        tally = Tally()
        translations: Counter[tuple[str, str, bool, tuple[str, ...]]] = Counter()

        def translated(fmt: str, kind: str, ignored: bool, notes: Iterable[str]) -> None:
            translations[fmt, kind, ignored, tuple(notes)] += 1

        now_ms = int(time.time() * 1000)
        intake = self.intakes[topic]
        apply_records(
            core, intake, topic == self.rekey_topic, keys, values, range(len(values)), out, tally, translated, now_ms
        )
        consumed = {event_type.name: n for event_type, n in tally.consumed.items()}
        return out.calls, core_state(core), consumed, tally.invalid, tally.rekeyed_away, dict(translations)

    def _advance(self, core_id: int, to_ms: int) -> Any:
        core = self.cores.get(core_id)
        if core is None:
            return None
        out = RecordedOutputs()
        route(core.advance(to_ms), out)
        return out.calls, core_state(core)

    def _updates(self, core_ids: list[int]) -> Any:
        """Open panes, local window updates and changed agents' live state of each core (None: dropped)."""
        replies = []
        for core_id in core_ids:
            core = self.cores.get(core_id)
            if core is None:
                replies.append(None)
                continue
            panes = core.take_updates()
            windows = core.take_window_updates()
            wm = core.processor.watermark_ms
            views: list[tuple[str, dict[str, Any] | None]] = []
            if wm is not None:
                for agent_id, view in core.take_views():
                    views.append((agent_id, None if view is None else view.to_record(wm)))
            replies.append((panes, windows, views, wm, core_state(core)))
        return replies

    def _snapshot(self, requests: list[tuple[int, bool]]) -> Any:
        """Each core's meta and changed entries (as the JSON bytes the changelog stores); None: unchanged, or dropped.

        A core is in the checkpoint when it changed or when the worker has records to acknowledge for it.
        """
        replies: list[tuple[dict[str, Any], dict[str, bytes | None]] | None] = []
        for core_id, acknowledged in requests:
            core = self.cores.get(core_id)
            if core is None or not (acknowledged or core.has_dirty()):
                replies.append(None)
                continue
            replies.append((core.meta(), changed_entries(core)))
        return replies

    def _mark_dirty(self, core_id: int, names: list[str]) -> None:
        core = self.cores.get(core_id)
        if core is not None:
            core.mark_dirty(names)

    def _gauges(self, core_ids: list[int], agents: bool) -> list[CoreGauges | None]:
        """What the worker's gauges read from each core."""
        cores = [self.cores.get(core_id) for core_id in core_ids]
        return [None if core is None else core_gauges(core, agents) for core in cores]


def serve(sock: socket.socket) -> None:
    """Serve the worker's requests, one reply each in order, until end of file."""
    try:
        more, fields = receive(sock)
        if not more:
            return
        settings = Settings(**fields)
        if settings.malloc_tuning:
            tune(os.environ)
        host = CoreHost(settings)
        gc_tuning.tune(settings.gc_threshold)
        while True:
            more, request = receive(sock)
            if not more:
                return
            try:
                reply = host.serve(request)
            except Exception:
                reply = CoreFailure(traceback.format_exc())
            post(sock, reply)
            if request[0] == "snapshot":
                del reply
                trim()  # a snapshot's entries were freed: give their memory back, not keep it for the next one
    except (BrokenPipeError, ConnectionResetError):
        return


def main() -> None:
    """Entry point: `python -m streams.worker.core_process FD`, FD a connected socket inherited from the worker."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the worker, whose end of the socket then closes
    serve(socket.socket(fileno=int(sys.argv[1])))


if __name__ == "__main__":
    main()
