"""Properties of ordering, lateness, de-duplication and snapshots over random multi-agent streams."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.domain.events import CallEvent, Channel, EventType
from streams.domain.intervals import AcwInterval
from streams.domain.pipeline import IntervalsOnly, Output
from streams.domain.processor import Disposition, Processor, RulesConfig
from tests.unit.domain.builders import T0

CONFIG = RulesConfig(max_acw_ms=300_000, allowed_lateness_ms=5_000)
CONTACT_KINDS = [t for t in EventType if t.name.startswith(("CONTACT", "HOLD", "WRAPUP"))]
KNOWN_KINDS = [t for t in EventType if t is not EventType.UNKNOWN]


@st.composite
def streams_(draw: st.DrawFn) -> list[CallEvent]:
    """Random event streams of up to four agents; any sequence is valid input for the rules."""
    events = []
    for a in range(draw(st.integers(1, 4))):
        t = T0
        for i in range(draw(st.integers(0, 40))):
            t += draw(st.sampled_from([0, 0, 1, 500, 3_000, 20_000, 90_000, 400_000]))
            kind = draw(st.sampled_from(KNOWN_KINDS))
            contact = f"c{draw(st.integers(0, 3))}" if kind in CONTACT_KINDS else None
            channel = draw(st.sampled_from([None, None, Channel.VOICE, Channel.CHAT]))
            events.append(
                CallEvent(
                    f"a{a}-{i}",
                    kind,
                    t,
                    f"a{a}",
                    contact_id=contact,
                    channel=channel,
                    team_id=draw(st.sampled_from([None, "t1", "t2"])),
                )
            )
    return events


def records(intervals: list[AcwInterval]) -> list[dict[str, Any]]:
    return sorted((i.to_record() for i in intervals), key=lambda r: r["interval_id"])


def run(events: list[CallEvent]) -> list[AcwInterval]:
    proc = Processor(CONFIG)
    out = [iv for e in events for iv in proc.offer(e).intervals]
    return out + proc.finish()


@st.composite
def disorder(draw: st.DrawFn, events: list[CallEvent]) -> list[CallEvent]:
    """The events shuffled within the allowed lateness, with some re-delivered."""
    lateness = CONFIG.allowed_lateness_ms
    keyed = [(e.occurred_at_ms + draw(st.integers(0, lateness)), i, e) for i, e in enumerate(events)]
    for _ in range(draw(st.integers(0, 5))):
        if events:
            i = draw(st.integers(0, len(events) - 1))
            keyed.append((events[i].occurred_at_ms + draw(st.integers(0, lateness)), len(keyed), events[i]))
    return [e for _, _, e in sorted(keyed, key=lambda k: (k[0], k[1]))]


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_any_arrival_within_lateness_gives_the_sorted_streams_intervals(data: st.DataObject) -> None:
    events = data.draw(streams_())
    reference = run(sorted(events, key=CallEvent.sort_key))
    shuffled = data.draw(disorder(events))
    assert records(run(shuffled)) == records(reference)


@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_without_change_tracking_every_step_is_the_same_and_nothing_can_be_taken(data: st.DataObject) -> None:
    events = data.draw(disorder(data.draw(streams_())))
    tracking, untracked = Processor(CONFIG), Processor(CONFIG, track_changes=False)
    for event in events:
        assert untracked.offer(event) == tracking.offer(event)
    assert untracked.finish() == tracking.finish()
    assert untracked.open_intervals() == tracking.open_intervals() and untracked.counts == tracking.counts
    assert not untracked.has_dirty() and not untracked.has_touched()
    with pytest.raises(RuntimeError, match="does not track changes"):
        untracked.take_dirty()


@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_the_processor_alone_outputs_its_intervals_and_nothing_else(data: st.DataObject) -> None:
    events = data.draw(disorder(data.draw(streams_())))
    alone, processor = IntervalsOnly(CONFIG), Processor(CONFIG)
    for event in events:
        step, out = alone.offer(event)
        assert step == processor.offer(event)
        assert out == Output(list(step.intervals))
        assert bool(out) is bool(step.intervals)
    assert alone.finish() == Output(processor.finish())
    assert alone.processor.counts == processor.counts


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_events_of_an_unknown_type_change_nothing_and_are_counted(data: st.DataObject) -> None:
    events = data.draw(disorder(data.draw(streams_())))
    unknown = data.draw(st.lists(st.tuples(st.integers(0, len(events)), st.integers(-10_000, 500_000)), max_size=8))
    mixed = list(events)
    for n, (at, dt) in enumerate(sorted(unknown, reverse=True)):
        mixed.insert(at, CallEvent(f"u{n}", EventType.UNKNOWN, T0 + dt, f"a{n % 4}", contact_id="c0"))
    proc = Processor(CONFIG)
    out = [iv for e in mixed for iv in proc.offer(e).intervals] + proc.finish()
    assert records(out) == records(run(events))
    assert proc.counts["unknown_event_type"] == len(unknown)


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_restore_from_checkpoint_and_redelivery_repeat_identical_records(data: st.DataObject) -> None:
    events = data.draw(disorder(data.draw(streams_())))
    reference = {r["interval_id"]: r for r in records(run(events))}
    cut = data.draw(st.integers(0, len(events)))
    crash = data.draw(st.integers(cut, len(events)))
    emitted: list[AcwInterval] = []
    proc = Processor(CONFIG)
    store: dict[str, dict[str, Any]] = {}
    for i, e in enumerate(events[:crash]):
        if i == cut:
            store.update(proc.take_dirty())
            meta = proc.meta()
        emitted.extend(proc.offer(e).intervals)
    if cut == crash:
        store.update(proc.take_dirty())
        meta = proc.meta()
    restored = Processor.restore(CONFIG, meta, store)
    for e in events[cut:]:  # redelivery from the checkpoint's offset
        emitted.extend(restored.offer(e).intervals)
    emitted.extend(restored.finish())
    seen: dict[str, dict[str, Any]] = {}
    for r in (i.to_record() for i in emitted):
        assert seen.setdefault(r["interval_id"], r) == r, "a repeated interval differs"
    assert seen == reference


@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_events_beyond_lateness_are_late_and_never_applied(data: st.DataObject) -> None:
    events = sorted(data.draw(streams_()), key=CallEvent.sort_key)
    if not events:
        return
    proc = Processor(CONFIG)
    for e in events:
        proc.offer(e)
    stale = CallEvent("stale", EventType.AGENT_AVAILABLE, proc.watermark_ms - CONFIG.allowed_lateness_ms - 1, "a0")
    assert proc.offer(stale).disposition is Disposition.LATE
    proc.finish()
    assert proc.counts["late"] == 1
    assert proc.applied == proc.accepted == len({e.event_id for e in events})
