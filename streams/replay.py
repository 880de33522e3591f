"""`acw replay`: the same core as the worker, over JSON Lines or Avro container files, without a broker."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import IO, Any

import orjson

from streams import gc_tuning
from streams.domain.events import CallEvent, InvalidEvent
from streams.domain.intervals import AcwInterval
from streams.domain.pipeline import AcwPipeline, AggregationConfig, IntervalsOnly
from streams.domain.processor import RulesConfig
from streams.outputs import apply_event, route
from streams.replay_windows import AGGREGATES_FILE, ALERTS_FILE, MergeProcess, WindowFiles
from streams.serialization import iter_avro_container
from streams.sources.callevent import CallEventSource
from streams.sources.formats import NATIVE_FORMATS
from streams.sources.intake import Intake

AVRO_CONTAINER_MAGIC = b"Obj\x01"

_NL = orjson.OPT_APPEND_NEWLINE


@dataclass
class ReplaySummary:
    """Counts of one replay, written as `summary.json`."""

    events: int = 0
    applied: int = 0
    duplicates: int = 0
    late: int = 0
    # Events of a type this version's schema does not know (a newer writer's symbol): counted, not applied.
    unknown_event_types: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    intervals: Counter[str] = field(default_factory=Counter)
    still_open: int = 0
    aggregates: int = 0
    alerts: Counter[str] = field(default_factory=Counter)
    # Platform formats only: records by kind, ignored kinds, adapter notes, restated and disagreeing events.
    source: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON."""
        extra = {"source": self.source} if self.source is not None else {}
        return {
            "events": self.events,
            "applied": self.applied,
            "duplicates": self.duplicates,
            "late": self.late,
            "unknown_event_types": self.unknown_event_types,
            "rejected": dict(sorted(self.rejected.items())),
            "rejected_total": sum(self.rejected.values()),
            "intervals": dict(sorted(self.intervals.items())),
            "intervals_total": sum(self.intervals.values()),
            "still_open": self.still_open,
            "aggregates_final": self.aggregates,
            "alerts": dict(sorted(self.alerts.items())),
            **extra,
        }


_BATCH_BYTES = 1 << 20  # of JSON lines read at once
_BATCH_RECORDS = 10_000  # of Avro container records


def _batches(path: Path, opened: list[IO[bytes]] | None = None) -> Iterator[tuple[int, list[Any]]]:
    """(number of the first, records) of one input file in batches: JSON lines, blank ones included so that
    numbers stay line numbers, or decoded Avro container records.

    The open file is appended to `opened`, so a caller can tell how far reading is.
    """
    with open(path, "rb") as f:
        head = f.read(4)
    number = 1
    if head == AVRO_CONTAINER_MAGIC:
        records = iter_avro_container(path, opened)
        while batch := list(islice(records, _BATCH_RECORDS)):
            yield number, batch
            number += len(batch)
        return
    with open(path, "rb") as f:
        if opened is not None:
            opened.append(f)
        while batch := f.readlines(_BATCH_BYTES):
            yield number, batch
            number += len(batch)


def _records(path: Path, opened: list[IO[bytes]] | None = None) -> Iterator[tuple[int, bytes | dict[str, Any]]]:
    """(line or record number, raw JSON line or decoded Avro record) of one input file, blank lines left out."""
    for first, batch in _batches(path, opened):
        for number, item in enumerate(batch, first):
            if type(item) is not bytes or not item.isspace():
                yield number, item


def replay(
    inputs: Iterable[Path],
    out_dir: Path,
    rules: RulesConfig,
    progress: Callable[[int, float | None], None] | None = None,
    aggregation: AggregationConfig | None = None,
    aggregate: bool = True,
    max_future_ms: int = 86_400_000,
    intake: Intake | None = None,
    gc_threshold: int = gc_tuning.DEFAULT_THRESHOLD,
    processes: int = 1,
) -> ReplaySummary:
    """Run every input file through one pipeline; write intervals, aggregates, alerts, dead letters and a summary.

    With `aggregate=False` only the processor runs: intervals and dead letters, no windows or alerts.
    `progress(events, share of the input bytes read)` is called every 10,000 records.
    `intake` reads the records (default: our own contract, JSON Lines or Avro container files).
    The garbage collector runs with `gc_threshold` (`ACW_GC_THRESHOLD`, see `gc_tuning`) until it returns.
    With `processes=2` (`ACW_REPLAY_PROCESSES`) the window stage (pane counting and the merger) runs in a second
    process (`streams.replay_windows`); the output files are the same bytes.
    """
    if processes not in (1, 2):
        raise ValueError(f"processes must be 1 or 2, got {processes}")
    with gc_tuning.tuned(gc_threshold):
        return _replay(inputs, out_dir, rules, progress, aggregation, aggregate, max_future_ms, intake, processes)


def _replay(
    inputs: Iterable[Path],
    out_dir: Path,
    rules: RulesConfig,
    progress: Callable[[int, float | None], None] | None,
    aggregation: AggregationConfig | None,
    aggregate: bool,
    max_future_ms: int,
    intake: Intake | None,
    processes: int,
) -> ReplaySummary:
    intake = intake or Intake(CallEventSource("json"), None, max_future_ms)
    platform = intake.format not in NATIVE_FORMATS
    kinds: Counter[str] = Counter()
    ignored: Counter[str] = Counter()
    notes: Counter[str] = Counter()
    out_dir.mkdir(parents=True, exist_ok=True)
    aggregation = aggregation or AggregationConfig()
    summary = ReplaySummary()
    events = 0
    now_ms = int(time.time() * 1000)  # once per replay: events beyond now + max_future_ms are rejected
    read, read_event, single = intake.read, intake.read_event, intake.single
    inputs = list(inputs)
    sizes = [p.stat().st_size for p in inputs]
    total_bytes = sum(sizes) or 1
    done_bytes = 0
    opened: list[IO[bytes]] = []
    with ExitStack() as files:
        windows: WindowFiles | MergeProcess
        pipeline: AcwPipeline | IntervalsOnly
        if aggregate and processes == 2:
            windows = MergeProcess(aggregation, out_dir)  # first: the fork must inherit no buffered writer
            files.callback(windows.stop)
            pipeline = AcwPipeline(rules, aggregation, track_changes=False, panes=windows)
        else:
            aggregates_out = files.enter_context(open(out_dir / AGGREGATES_FILE, "wb"))
            windows = WindowFiles(aggregation, aggregates_out, files.enter_context(open(out_dir / ALERTS_FILE, "wb")))
            pipeline = AcwPipeline(rules, aggregation, track_changes=False) if aggregate else IntervalsOnly(rules)
        processor = pipeline.processor
        intervals_out = files.enter_context(open(out_dir / "intervals.jsonl", "wb"))
        dead_out = files.enter_context(open(out_dir / "dead-letter.jsonl", "wb"))
        sink = _FileSink(intervals_out, dead_out, windows, summary)
        for path, size in zip(inputs, sizes, strict=True):
            opened.clear()
            sink.path = path
            for first, batch in _batches(path, opened):
                for number, item in enumerate(batch, first):
                    if type(item) is bytes and item.isspace():
                        continue
                    events += 1
                    if not events % 10_000:
                        pipeline.forget_changes()  # replay never checkpoints: what tracking is left would only grow
                        if progress is not None:
                            at = opened[-1].tell() if opened and not opened[-1].closed else 0
                            progress(events, (done_bytes + at) / total_bytes)
                    try:
                        if single:
                            found: tuple[CallEvent, ...] = (read_event(item, now_ms),)
                        else:
                            translation = read(item, now_ms)
                            found = translation.events
                            kinds[translation.kind] += 1
                            if translation.ignored:
                                ignored[translation.kind] += 1
                            notes.update(translation.notes)
                    except InvalidEvent as exc:
                        summary.rejected[exc.reason] += 1
                        sink.dead_letter(number, exc.reason, exc.detail)
                        continue
                    for event in found:
                        apply_event(pipeline, event, sink, number)
            done_bytes += size
        route(pipeline.finish(), sink)
        counts = windows.finish()
    summary.aggregates = counts.aggregates
    summary.alerts = counts.alerts
    summary.events = events
    summary.applied = processor.applied
    summary.duplicates = processor.counts["duplicates"]
    summary.late = processor.counts["late"]
    summary.unknown_event_types = processor.counts["unknown_event_type"]
    summary.still_open = len(processor.open_intervals())
    if platform:
        summary.source = {
            "format": intake.format,
            "records": dict(sorted(kinds.items())),
            "ignored": dict(sorted(ignored.items())),
            "notes": dict(sorted(notes.items())),
            "restated": processor.counts["restated"],
            "acw_disagreements": processor.counts["acw_disagreements"],
        }
    (out_dir / "summary.json").write_bytes(orjson.dumps(summary.to_dict(), option=orjson.OPT_INDENT_2) + b"\n")
    return summary


class _FileSink:
    """Replay's output sink: intervals and dead letters to JSON Lines files, the rest to the window stage."""

    def __init__(
        self, intervals_out: IO[bytes], dead_out: IO[bytes], windows: WindowFiles | MergeProcess, summary: ReplaySummary
    ) -> None:
        self._intervals, self._dead = intervals_out, dead_out
        self._summary = summary
        self.path: Path | None = None  # the input file being read: a source record is named by its line there
        self.pane, self.progress = windows.pane, windows.progress
        self.alert, self.aggregate = windows.alert, windows.aggregate

    def interval(self, interval: AcwInterval) -> None:
        self._summary.intervals[str(interval.end_reason)] += 1
        self._intervals.write(orjson.dumps(interval.to_record(), option=_NL))

    def rejected(self, source: int | None, interval: AcwInterval, reason: str) -> None:
        self._summary.rejected[reason] += 1
        record = {"reason": reason, "detail": "its window was already final", "interval": interval.to_record()}
        self._dead.write(orjson.dumps(record, option=_NL))

    def dead_letter(self, source: int | None, reason: str, detail: str) -> None:
        path, line = (self.path, source) if source is not None else ("", 0)
        self._dead.write(
            orjson.dumps({"file": str(path), "line": line, "reason": reason, "detail": detail}, option=_NL)
        )
