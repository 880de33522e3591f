"""Replay's window stage: panes counted and merged into window records, written with the alerts, here or in a
second process.

The pipeline's processor and the window stage (pane counting, the merger, writing window records) each take about
half of a replay with windows. With `processes=2` the window stage runs in a forked child. The parent's pipeline
counts its intervals into a `PaneBook` that lives in the child (`MergeProcess` is the pipeline's `Panes`), while
the agents' ACW spans stay in the parent, which works out their shares of each pane it closes. Every count, pane
close (with those shares), progress, interval alert and local window record is sent to the child in order, in
pickled batches of plain tuples, and the child writes `aggregates.jsonl` and `alerts.jsonl`. Both files get the
same bytes as in one process, because the book and the merger see the same calls in the same order; only the two
processes' work overlaps.
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

from streams.domain.aggregates import WindowKey, WindowStats, contribution
from streams.domain.intervals import AcwInterval
from streams.domain.merge import WindowMerger
from streams.domain.panes import AcwSpans, FinalPanes, OpenSpan, PaneBook
from streams.domain.pipeline import AggregationConfig
from streams.outputs import route_merged

_NL = orjson.OPT_APPEND_NEWLINE
_BATCH = 512  # messages per pickled batch sent to the child: one fits the pipe, so sending seldom waits
_QUEUED = 64  # batches the child holds before the parent waits
# What a message to the child is, in its first item.
_COUNT, _CLOSE, _PROGRESS, _ALERT, _AGGREGATE = range(5)

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

    def stop(self) -> None:
        """Nothing to stop in this process."""


class MergeProcess:
    """The window stage in a forked child, with the pipeline's pane book: the pipeline's `Panes` and the sink of
    its window outputs, sent over a pipe in batches.

    Start it before opening any output file of the parent, so the child inherits no buffered writer.
    `finish` waits for the child and returns its counts, or raises what it raised; `stop` stops it whatever
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
        self._batch: list[tuple[Any, ...]] = []
        self._pane_ms = aggregation.pane_ms
        self._acw = AcwSpans(aggregation.pane_ms, aggregation.scopes, track_changes=False)
        self._first: int | None = None  # the earliest and latest pane start counted
        self._last: int | None = None

    # --- the pipeline's Panes -------------------------------------------------------------------

    def count(self, interval: AcwInterval, pane_start_ms: int) -> None:
        """An interval to count in its panes: sent as its parts."""
        if self._first is None or pane_start_ms < self._first:
            self._first = pane_start_ms
        if self._last is None or pane_start_ms > self._last:
            self._last = pane_start_ms
        agent_id, team_id, queue_id = interval.agent_id, interval.team_id, interval.queue_id
        self._acw.add(agent_id, (interval.disconnected_at_ms, interval.ended_at_ms, team_id, queue_id))
        self._batch.append((_COUNT, (agent_id, team_id, queue_id, contribution(interval), pane_start_ms)))
        if len(self._batch) >= _BATCH:
            self._send()

    def close(
        self, start_ms: int, through_ms: int, open_until_ms: int, opened: list[OpenSpan], final: FinalPanes
    ) -> None:
        """Panes to close: agents' ACW shares are worked out here, where the spans are; the child's book adds them
        and hands the final panes to its merger, so `final` stays empty here."""
        shares = self._acw.shares(start_ms, through_ms, open_until_ms, opened)
        self._acw.prune(through_ms)
        self._batch.append((_CLOSE, through_ms, shares))

    def bounds(self, floor_ms: int) -> tuple[int, int]:
        """The book's bounds, worked out from the pane starts counted.

        The book holds panes only at starts counted (a pane of ACW time alone is handed out by the close that
        made it). The pipeline asks for the first start only before its first close, when no pane has been
        handed out, and every pane handed out ended by `floor_ms`. So the counted starts give the book's answers.
        """
        first = floor_ms if self._first is None else min(self._first, floor_ms)
        last = floor_ms if self._last is None else max(self._last, floor_ms)
        return first, last + self._pane_ms

    # --- the sink of window outputs -------------------------------------------------------------

    def pane(self, pane: WindowKey, stats: WindowStats) -> None:
        """Never called: the pipeline's final panes are made in the child."""
        raise AssertionError("a pipeline with a MergeProcess for panes hands out no final panes")

    def progress(self, closed_through_ms: int) -> None:
        """The closed-through time."""
        self._batch.append((_PROGRESS, closed_through_ms))

    def alert(self, alert: dict[str, Any]) -> None:
        """The pipeline's alert, sent so the child writes it between the window alerts in order."""
        self._batch.append((_ALERT, alert))

    def aggregate(self, key: str, record: dict[str, Any]) -> None:
        """A window record finished by the pipeline itself."""
        self._batch.append((_AGGREGATE, key, record))

    def finish(self) -> WindowCounts:
        """Send what is left and the end; wait for the child; its counts, or its error raised here."""
        self._send()
        with suppress(OSError):  # the child ended early: its own message says why
            self._conn.send_bytes(b"")
        return self._result()

    def stop(self) -> None:
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
            raise RuntimeError("replay's window process stopped reading before the end") from None

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
    """The child's loop: batches in, panes counted and merged, window records and alerts out; then its counts, or
    its error, sent back."""
    try:
        with open(out_dir / AGGREGATES_FILE, "wb") as aggregates_out, open(out_dir / ALERTS_FILE, "wb") as alerts_out:
            windows = WindowFiles(aggregation, aggregates_out, alerts_out)
            book = PaneBook(aggregation.pane_ms, aggregation.scopes, track_changes=False)
            count = book.count_parts
            final: FinalPanes = []
            batches: Queue[bytes | BaseException] = Queue(_QUEUED)
            Thread(target=_receive, args=(conn, batches), name="acw-replay-windows-receive", daemon=True).start()
            while data := batches.get():
                if isinstance(data, BaseException):
                    raise data
                for message in pickle.loads(data):
                    kind = message[0]
                    if kind == _COUNT:
                        count(*message[1])
                    elif kind == _CLOSE:
                        book.add_shares(message[2])
                        book.take_final(message[1], final)
                        for pane, stats in final:
                            windows.pane(pane, stats)
                        final.clear()
                    elif kind == _PROGRESS:
                        windows.progress(message[1])
                    elif kind == _ALERT:
                        windows.alert(message[1])
                    else:
                        windows.aggregate(message[1], message[2])
        conn.send_bytes(pickle.dumps((windows.counts, None)))
    except BaseException as exc:  # whatever it is, the parent raises it
        try:
            message = pickle.dumps((None, exc))
        except Exception:  # an error that cannot be pickled is sent as its text
            message = pickle.dumps((None, RuntimeError(f"replay's window process failed: {exc!r}")))
        with suppress(OSError):  # the parent is gone: nobody is left to tell
            conn.send_bytes(message)
        raise SystemExit(1) from None
