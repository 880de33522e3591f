"""Replay's window stage: final panes merged into window records, written with the alerts, here or in a second process.

The pipeline (decoding, the processor, panes) and the window merger each take about half of a replay with
windows. With `processes=2` the merger runs in a forked child: the parent sends it, in order and in pickled
batches, every pane, progress, alert and local window record the pipeline routes, and the child writes
`aggregates.jsonl` and `alerts.jsonl` exactly as one process would. Both files get the same bytes either way,
because the child sees the same calls in the same order; only the two processes' work overlaps.
"""

from __future__ import annotations

import io
import multiprocessing
import pickle
import sys
from collections import Counter
from contextlib import suppress
from multiprocessing.connection import Connection
from pathlib import Path
from queue import Queue
from threading import Thread
from typing import IO, Any

import orjson

from streams.domain.aggregates import WindowKey, WindowStats
from streams.domain.merge import WindowMerger
from streams.domain.pipeline import AggregationConfig
from streams.outputs import route_merged

_NL = orjson.OPT_APPEND_NEWLINE
_BATCH = 2048  # messages per pickled batch sent to the child
_QUEUED = 64  # batches the child holds before the parent waits

AGGREGATES_FILE = "aggregates.jsonl"
ALERTS_FILE = "alerts.jsonl"


class WindowCounts:
    """What a window stage wrote: final window records, and alerts by `rule.state`."""

    def __init__(self) -> None:
        self.aggregates = 0
        self.alerts: Counter[str] = Counter()


class WindowFiles:
    """The window stage in this process: one `WindowMerger`, writing window records and alerts as they come."""

    def __init__(self, aggregation: AggregationConfig, aggregates_out: IO[bytes], alerts_out: IO[bytes]) -> None:
        self._merger = WindowMerger(aggregation, sources=1, track_changes=False)
        self._aggregates, self._alerts = aggregates_out, alerts_out
        self.counts = WindowCounts()

    def pane(self, pane: WindowKey, stats: WindowStats) -> None:
        """A pane that became final."""
        self._merger.offer_pane(0, pane, stats)

    def progress(self, closed_through_ms: int) -> None:
        """Every pane ending by `closed_through_ms` is final: windows ending by then are written."""
        route_merged(self._merger.offer_progress(0, closed_through_ms), self)

    def alert(self, alert: dict[str, Any]) -> None:
        """An alert transition, the pipeline's or a window's."""
        self.counts.alerts[f"{alert['rule']}.{alert['state']}"] += 1
        self._alerts.write(orjson.dumps(alert, option=_NL))

    def aggregate(self, key: str, record: dict[str, Any]) -> None:
        """A window record."""
        self.counts.aggregates += 1
        self._aggregates.write(orjson.dumps(record, option=_NL))

    def finish(self) -> WindowCounts:
        """Counts of what was written (the caller closes the files)."""
        return self.counts

    def close(self) -> None:
        """Nothing to stop in this process."""


class MergeProcess:
    """The window stage in a forked child: the same calls as `WindowFiles`, sent over a pipe in batches.

    Start it before opening any output file of the parent, so the child inherits no buffered writer.
    `finish` waits for the child and returns its counts, or raises what it raised; `close` stops it whatever
    happened.
    """

    def __init__(self, aggregation: AggregationConfig, out_dir: Path) -> None:
        context = multiprocessing.get_context("fork")
        self._conn, child_conn = context.Pipe()
        sys.stdout.flush()
        sys.stderr.flush()
        self._process = context.Process(
            target=_run_child, args=(child_conn, aggregation, out_dir), name="acw-replay-windows", daemon=True
        )
        self._process.start()
        child_conn.close()
        self._batch: list[Any] = []

    def pane(self, pane: WindowKey, stats: WindowStats) -> None:
        """A pane that became final: sent as `WindowStats.to_state`'s tuple."""
        self._batch.append(stats.to_state(pane))
        if len(self._batch) >= _BATCH:
            self._send()

    def progress(self, closed_through_ms: int) -> None:
        """The closed-through time, sent as an int."""
        self._batch.append(closed_through_ms)

    def alert(self, alert: dict[str, Any]) -> None:
        """The pipeline's alert, sent as its dict so the child writes it between the window alerts in order."""
        self._batch.append(alert)

    def aggregate(self, key: str, record: dict[str, Any]) -> None:
        """A window record finished by the pipeline itself, sent as a list."""
        self._batch.append([key, record])

    def finish(self) -> WindowCounts:
        """Send what is left and the end; wait for the child; its counts, or its error raised here."""
        self._send()
        with suppress(OSError):  # the child ended early: its own message says why
            self._conn.send_bytes(b"")
        return self._result()

    def close(self) -> None:
        """Stop the child if it still runs (the parent failed), and wait for it."""
        if self._process.is_alive():
            self._process.terminate()
        self._process.join()
        self._conn.close()

    def _send(self) -> None:
        if not self._batch:
            return
        buffer = io.BytesIO()
        pickler = pickle.Pickler(buffer, pickle.HIGHEST_PROTOCOL)
        pickler.fast = True  # no memo: a third faster, and a batch holds no cycles and few shared objects
        pickler.dump(self._batch)
        data = buffer.getvalue()
        self._batch = []
        try:
            self._conn.send_bytes(data)
        except OSError:
            self._result()  # raises the child's error

    def _result(self) -> WindowCounts:
        try:
            counts, error = pickle.loads(self._conn.recv_bytes())
        except EOFError:
            self._process.join()
            raise RuntimeError(
                f"replay's window process ended without a word (exit code {self._process.exitcode})"
            ) from None
        self._process.join()
        if error is not None:
            error.add_note("raised in replay's window process")
            raise error
        assert isinstance(counts, WindowCounts)
        return counts


def _receive(conn: Connection, batches: Queue[bytes | BaseException]) -> None:
    """The child's reader: batches taken off the pipe as soon as they come, so that the parent seldom waits on it
    while the merger works through a burst of windows."""
    try:
        while data := conn.recv_bytes():
            batches.put(data)
        batches.put(data)
    except BaseException as exc:  # the parent is gone: the child's loop raises it
        batches.put(exc)


def _run_child(conn: Connection, aggregation: AggregationConfig, out_dir: Path) -> None:
    """The child's loop: batches in, window records and alerts out; then its counts, or its error, sent back."""
    try:
        with open(out_dir / AGGREGATES_FILE, "wb") as aggregates_out, open(out_dir / ALERTS_FILE, "wb") as alerts_out:
            windows = WindowFiles(aggregation, aggregates_out, alerts_out)
            from_state = WindowStats.from_state
            offer_pane, progress, alert, aggregate = windows.pane, windows.progress, windows.alert, windows.aggregate
            batches: Queue[bytes | BaseException] = Queue(_QUEUED)
            Thread(target=_receive, args=(conn, batches), name="acw-replay-windows-receive", daemon=True).start()
            while data := batches.get():
                if isinstance(data, BaseException):
                    raise data
                for message in pickle.loads(data):
                    kind = type(message)
                    if kind is tuple:
                        offer_pane(*from_state(message))
                    elif kind is int:
                        progress(message)
                    elif kind is dict:
                        alert(message)
                    else:
                        aggregate(*message)
        conn.send_bytes(pickle.dumps((windows.counts, None)))
    except BaseException as exc:  # whatever it is, the parent raises it
        try:
            message = pickle.dumps((None, exc))
        except Exception:  # an error that cannot be pickled is sent as its text
            message = pickle.dumps((None, RuntimeError(f"replay's window process failed: {exc!r}")))
        with suppress(OSError):  # the parent is gone: nobody is left to tell
            conn.send_bytes(message)
        raise SystemExit(1) from None
