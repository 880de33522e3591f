"""Partitioned aggregation equals one stream's, whatever the interleaving, stale copies and crashes."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest
from aiokafka.partitioner import DefaultPartitioner
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.domain.aggregates import Scope, WindowKey, WindowStats
from streams.domain.alerts import load_rules
from streams.domain.merge import MergeOutput, WindowMerger
from streams.domain.pipeline import AcwPipeline, AggregationConfig
from streams.domain.processor import RulesConfig
from streams.domain.windows import parse_windows
from streams.traffic import TrafficShape, end_of_input_events, generate
from tests.unit.domain.aggregation import Results, run

RULES = RulesConfig(max_acw_ms=600_000, allowed_lateness_ms=5_000)
WINDOWS = parse_windows("15m,1h/5m")
CONFIG = AggregationConfig(windows=WINDOWS, grace_ms=60_000, rules=load_rules(None, "general", WINDOWS))


def _json(data: Any) -> Any:
    """What a value looks like after a trip through a changelog or a topic."""
    return orjson.loads(orjson.dumps(data))


def _source_messages(stream: list, mix: random.Random, outputs: Results) -> list[tuple[Any, ...]]:
    """Run one source partition like the worker would, crashing now and then; the messages it sends, in order.

    A crash restores the last checkpoint and processes the events after it again, so the outputs in
    between are sent twice. Non-final pane copies are sent at random points, as checkpoints do.
    """
    messages: list[tuple[Any, ...]] = []
    pipe = AcwPipeline(RULES, CONFIG)
    stored: dict[str, Any] = {}
    checkpoint: tuple[int, Any] = (0, None)
    i = 0
    while i < len(stream):
        _, out = pipe.offer(stream[i])
        i += 1
        outputs.intervals.extend(out.intervals)
        outputs.alerts.extend(out.alerts)
        messages += [("pane", wk.to_list(), _json(s.to_dict())) for wk, s in out.final_panes]
        if out.progress is not None:
            messages.append(("progress", out.progress))
        roll = mix.random()
        if roll < 0.05:
            messages += [("pane", wk.to_list(), _json(s.to_dict())) for wk, s in pipe.take_updates()]
        elif roll < 0.08:
            stored.update(_json(pipe.take_dirty()))
            checkpoint = (i, _json(pipe.meta()))
        elif roll < 0.09:
            i, meta = checkpoint
            pipe = AcwPipeline.restore(RULES, CONFIG, meta, {k: v for k, v in stored.items() if v is not None})
    return messages


def _merge_with_crashes(
    config: AggregationConfig,
    queues: list[list[tuple[Any, ...]]],
    mix: random.Random,
    checkpoint_below: float,
    crash_below: float,
) -> Iterator[MergeOutput]:
    """Merge every source's messages in a random interleaving that keeps each source's order; the merger
    checkpoints and crashes back to its last checkpoint at random points. Yields what each progress gave."""
    sources = len(queues)
    log: list[tuple[int, tuple[Any, ...]]] = []
    cursors = [0] * sources
    while any(c < len(q) for c, q in zip(cursors, queues, strict=True)):
        src = mix.choice([s for s in range(sources) if cursors[s] < len(queues[s])])
        log.append((src, queues[src][cursors[src]]))
        cursors[src] += 1
    merger = WindowMerger(config, sources)
    stored: dict[str, Any] = {}
    checkpoint: tuple[int, Any] = (0, None)
    i = 0
    while i < len(log):
        src, message = log[i]
        i += 1
        if message[0] == "pane":
            merger.offer_pane(src, WindowKey.from_list(message[1]), WindowStats.from_dict(message[2]))
        else:
            yield merger.offer_progress(src, message[1])
        roll = mix.random()
        if roll < checkpoint_below:
            stored.update(_json(merger.take_dirty()))
            checkpoint = (i, _json(merger.meta()))
        elif roll < crash_below:
            i, meta = checkpoint
            merger = WindowMerger.restore(config, sources, meta, {k: v for k, v in stored.items() if v is not None})


@settings(max_examples=15, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    agents=st.integers(2, 14),
    sources=st.integers(1, 4),
    mix_seed=st.integers(0, 2**32),
)
def test_partitioned_run_with_crashes_equals_single_stream(seed: int, agents: int, sources: int, mix_seed: int) -> None:
    mix = random.Random(mix_seed)  # interleavings, crash points and update points
    events = generate(TrafficShape(agents=agents, contacts_per_agent=8, teams=2, queues=3), seed)
    events += end_of_input_events(events[-1].occurred_at_ms + 2 * 3_600_000, sources)
    expected = run(events, RULES, CONFIG)

    partitioner = DefaultPartitioner()
    parts = list(range(sources))
    per_source: list[list] = [[] for _ in parts]
    for e in events:
        per_source[partitioner(e.agent_id.encode(), parts, parts)].append(e)
    got = Results()
    queues = [_source_messages(stream, mix, got) for stream in per_source]

    for merged in _merge_with_crashes(CONFIG, queues, mix, checkpoint_below=0.03, crash_below=0.04):
        got.take(merged)

    assert {i.interval_id: i for i in got.intervals} == {i.interval_id: i for i in expected.intervals}
    assert got.finals == expected.finals
    got_alerts: dict[tuple[str, str], dict[str, Any]] = {}
    for a in got.alerts:
        assert got_alerts.setdefault((a["alert_id"], a["state"]), a) == a, "a repeated alert differs"
    assert got_alerts == {(a["alert_id"], a["state"]): a for a in expected.alerts}


def _pane_stats(rng: random.Random) -> WindowStats:
    stats = WindowStats()
    stats.contacts = rng.randint(1, 5)
    stats.acw_ms = rng.randint(0, 900_000)
    stats.agent_acw_ms = rng.randint(0, 900_000)
    stats.last_ended_ms = rng.randint(0, 10**9)
    stats.end_reasons = {rng.choice(["next_contact", "timed_out", "logout"]): stats.contacts}
    for _ in range(stats.contacts):
        stats.durations.add(rng.randint(0, 900_000))
    return stats


@settings(max_examples=40, deadline=None)
@given(
    windows=st.sampled_from(["15m,1h/5m", "30m/10m,1h/20m", "20m/10m,1h/5m,2h/30m", "10m/5m"]),
    sources=st.integers(1, 3),
    seed=st.integers(0, 2**32),
)
def test_final_windows_equal_the_sum_of_their_panes_whatever_the_crashes(windows: str, sources: int, seed: int) -> None:
    """Each final window is the sum of its panes from every source, for any window set, interleaving and crash."""
    rng = random.Random(seed)
    config = AggregationConfig(windows=parse_windows(windows), grace_ms=60_000)
    groups = ["TEAM|t1", "TEAM|t2", "QUEUE|q1"]
    queues, held, through = _pane_messages(
        config,
        sources,
        groups,
        lambda: rng.randrange(0, 6) * config.pane_ms,
        lambda: rng.randint(1, 40),
        lambda: _pane_stats(rng),
        lambda: rng.randint(1, 3),
        rng,
    )
    got = _final_records(_merge_with_crashes(config, queues, rng, checkpoint_below=0.05, crash_below=0.07))
    assert got == _summed_windows(config, held, groups, through)


WindowRecords = dict[tuple[str, int, int], dict[str, Any]]  # (group, size, start) -> final record
Held = dict[tuple[str, int], list[WindowStats]]  # (group, pane start) -> every source's copy


def _pane_messages(
    config: AggregationConfig,
    sources: int,
    groups: list[str],
    first_start: Callable[[], int],
    steps: Callable[[], int],
    pane_stats: Callable[[], WindowStats],
    panes_on: Callable[[], int],
    rng: random.Random,
) -> tuple[list[list[tuple[Any, ...]]], Held, int]:
    """Each source's pane and progress messages (a random subset of `groups` at each step, moving on `panes_on()`
    panes), the panes held, and the time through which every source finally says it is final."""
    pane_ms = config.pane_ms
    held: Held = {}
    queues: list[list[tuple[Any, ...]]] = []
    last = 0
    for _ in range(sources):
        messages: list[tuple[Any, ...]] = []
        start = first_start()
        for _ in range(steps()):
            for group in rng.sample(groups, rng.randint(0, len(groups))):
                stats = pane_stats()
                held.setdefault((group, start), []).append(stats)
                scope, key = group.split("|")
                messages.append(("pane", [scope, key, pane_ms, start], _json(stats.to_dict())))
            start += pane_ms * panes_on()
            messages.append(("progress", start))
        last = max(last, start)
        queues.append(messages)
    through = last + config.max_size_ms + pane_ms
    for q in queues:
        q.append(("progress", through))
    return queues, held, through


def _summed_windows(config: AggregationConfig, held: Held, groups: list[str], through: int) -> WindowRecords:
    """The final record of every window ending by `through`, summed pane by pane from `held`."""
    expected: WindowRecords = {}
    for spec in config.windows:
        for end in spec.ends_between(0, through):
            wk_start = end - spec.size_ms
            for group in groups:
                total: WindowStats | None = None
                for pane in range(wk_start, end, config.pane_ms):
                    for stats in held.get((group, pane), []):
                        total = total or WindowStats()
                        total.merge(stats)
                if total is not None:
                    scope, key = group.split("|")
                    wk = WindowKey(Scope(scope), key, spec.size_ms, wk_start)
                    expected[(group, spec.size_ms, wk_start)] = total.to_record(wk, True, end + config.grace_ms)
    return expected


def _final_records(outputs: Iterator[MergeOutput]) -> WindowRecords:
    """The final window records a merger gave, checking that a repeated one is the same."""
    got: WindowRecords = {}
    for merged in outputs:
        for _, record in merged.aggregates:
            key = (f"{record['scope']}|{record['key']}", record["window_size_seconds"] * 1000, record["window_start"])
            assert got.setdefault(key, record) == record, f"a repeated final window differs: {key}"
    return got


@settings(max_examples=25, deadline=None)
@given(
    windows=st.sampled_from(["1h/5m", "15m,1h/5m", "30m/10m,2h/30m"]),
    sources=st.integers(1, 2),
    seed=st.integers(0, 2**32),
)
def test_hopping_windows_carried_across_hops_equal_their_panes_past_the_exact_limit(
    windows: str, sources: int, seed: int
) -> None:
    """Hopping windows are moved on from the window a hop before (panes in, panes out); with panes of many
    durations their percentiles turn to a sketch and back to exact values, and stay the sum of their panes."""
    rng = random.Random(seed)
    config = AggregationConfig(windows=parse_windows(windows), grace_ms=60_000)
    groups = ["CENTER|*", "TEAM|t1"]

    def many_durations() -> WindowStats:
        stats = _pane_stats(rng)
        for _ in range(rng.choice([0, 0, 3, 300, 1500, 5000])):
            stats.durations.add(rng.choice([0, rng.randint(1, 900_000)]))
            stats.contacts += 1
        return stats

    queues, held, through = _pane_messages(
        config,
        sources,
        groups,
        lambda: 0,
        lambda: rng.randint(10, 40),
        many_durations,
        lambda: rng.choice([1, 1, 1, 2, 5]),
        rng,
    )
    got = _final_records(_merge_with_crashes(config, queues, rng, checkpoint_below=0.05, crash_below=0.06))
    assert got == _summed_windows(config, held, groups, through)


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 10_000), agents=st.integers(2, 10))
def test_a_merger_that_tracks_no_changes_gives_the_same_outputs(seed: int, agents: int) -> None:
    """Replay's merger leaves change tracking off: every progress gives the same records and alerts."""
    events = generate(TrafficShape(agents=agents, contacts_per_agent=8, teams=2, queues=3), seed)
    events += end_of_input_events(events[-1].occurred_at_ms + 2 * 3_600_000, 1)
    pipe = AcwPipeline(RULES, CONFIG, track_changes=False)
    tracking, untracked = WindowMerger(CONFIG, 1), WindowMerger(CONFIG, 1, track_changes=False)
    outs = [pipe.offer(e)[1] for e in events] + [pipe.finish()]
    progressed = 0
    for out in outs:
        for merger in (tracking, untracked):
            for pane, stats in out.final_panes:
                merger.offer_pane(0, pane, stats)
        if out.progress is not None:
            progressed += 1
            assert tracking.offer_progress(0, out.progress) == untracked.offer_progress(0, out.progress)
    assert progressed > 1
    assert tracking.has_dirty() and not untracked.has_dirty()
    for take in (untracked.take_dirty, untracked.take_updates):
        with pytest.raises(RuntimeError, match="does not track changes"):
            take()
