"""A batch of one input partition's records, decoded and applied to its core in order, in either process.

The interval stage applies a batch here in the worker's process (`ACW_WORKER_PROCESSES=1`), and the core
process does the same for it with two (`streams/worker/core_process.py`): the same decoding, routing and
dead letters either way. This module imports no Faust or Kafka client.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol, TypeVar

from streams.domain.events import CallEvent, EventType, InvalidEvent
from streams.domain.partition import PartitionCore
from streams.outputs import OutputSink, apply_event
from streams.serialization import WriterSchemas, encode_call_event
from streams.settings import Settings
from streams.sources.callevent import RekeyedSource
from streams.sources.formats import build_source
from streams.sources.intake import Intake

S = TypeVar("S")

# Counts one translated record: format, kind, whether it was ignored, its adapter's notes.
Translated = Callable[[str, str, bool, Iterable[str]], None]


class BatchSink(OutputSink[S], Protocol):
    """An output sink that also takes events re-keyed to their agent's partition."""

    def call_event(self, key: bytes, value: bytes) -> None:
        """A translated event for the re-key topic, under its agent's key."""


class Tally:
    """What a batch's records were, for the metrics: events by type, invalid records, events re-keyed away."""

    __slots__ = ("consumed", "invalid", "rekeyed_away")

    def __init__(self) -> None:
        self.consumed: Counter[EventType] = Counter()
        self.invalid = 0
        self.rekeyed_away = 0


def apply_records(
    core: PartitionCore,
    intake: Intake,
    rekeyed: bool,
    keys: Sequence[bytes | None],
    values: Sequence[bytes],
    sources: Iterable[S],
    out: BatchSink[S],
    tally: Tally,
    translated: Translated,
    now_ms: int,
) -> None:
    """Decode, translate and apply one topic partition's records in order; `sources` name them in dead letters.

    `rekeyed`: the records come from the re-key topic, so each is already in its agent's partition. Any other
    event whose agent's key is not its record's key is sent on to the re-key topic instead of applied here.
    """
    single = intake.single
    routing_key = intake.routing_key
    consumed = tally.consumed
    for key, value, source in zip(keys, values, sources, strict=True):
        try:
            if single:
                found: tuple[CallEvent, ...] = (intake.read_event(value, now_ms),)
            else:
                translation = intake.read(value, now_ms)
                found = translation.events
                translated(intake.format, translation.kind, translation.ignored, translation.notes)
        except InvalidEvent as exc:
            tally.invalid += 1
            out.dead_letter(source, exc.reason, exc.detail)
            continue
        for call in found:
            consumed[call.event_type] += 1
            routed = routing_key(call)
            if rekeyed or key == routed:
                apply_event(core, call, out, source)
            else:
                tally.rekeyed_away += 1
                out.call_event(routed, encode_call_event(call))


def build_intakes(settings: Settings, writers: WriterSchemas | None) -> dict[str, Intake]:
    """Input topic -> its intake, the re-key topic's included (`writers`: registry-resolved Avro input)."""
    max_future_ms = round(settings.max_future_seconds * 1000)
    directory = settings.directory()
    intakes = {
        topic: Intake(build_source(fmt, settings, writers), directory, max_future_ms)
        for topic, fmt in settings.inputs()
    }
    # Re-keyed records are events already translated (and given their directory team) at their first topic.
    intakes[settings.rekey_topic] = Intake(RekeyedSource(), None, max_future_ms)
    return intakes


def core_counts(core: PartitionCore) -> dict[str, int]:
    """The core's running counts that the metrics follow."""
    processor = core.processor
    counts = processor.counts
    return {
        "accepted": processor.accepted,
        "duplicates": counts["duplicates"],
        "restated": counts["restated"],
        "unknown_event_type": counts["unknown_event_type"],
        "late": counts["late"],
        "acw_disagreements": counts["acw_disagreements"],
    }
