"""Partitioned aggregation equals one stream's, whatever the interleaving, stale copies and crashes."""

from __future__ import annotations

import random
from typing import Any

import orjson
from aiokafka.partitioner import DefaultPartitioner
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.domain.aggregates import WindowKey, WindowStats
from streams.domain.alerts import load_rules
from streams.domain.merge import WindowMerger
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

    # Merge in a random interleaving that keeps each source's order; the merger crashes too.
    log = [(src, m) for src in parts for m in []]
    cursors = [0] * sources
    while any(c < len(q) for c, q in zip(cursors, queues, strict=True)):
        src = mix.choice([s for s in parts if cursors[s] < len(queues[s])])
        log.append((src, queues[src][cursors[src]]))
        cursors[src] += 1
    merger = WindowMerger(CONFIG, sources)
    stored: dict[str, Any] = {}
    checkpoint: tuple[int, Any] = (0, None)
    i = 0
    while i < len(log):
        src, message = log[i]
        i += 1
        if message[0] == "pane":
            merger.offer_pane(src, WindowKey.from_list(message[1]), WindowStats.from_dict(message[2]))
        else:
            got.take(merger.offer_progress(src, message[1]))
        roll = mix.random()
        if roll < 0.03:
            stored.update(_json(merger.take_dirty()))
            checkpoint = (i, _json(merger.meta()))
        elif roll < 0.04:
            i, meta = checkpoint
            merger = WindowMerger.restore(CONFIG, sources, meta, {k: v for k, v in stored.items() if v is not None})

    assert {i.interval_id: i for i in got.intervals} == {i.interval_id: i for i in expected.intervals}
    assert got.finals == expected.finals
    got_alerts: dict[tuple[str, str], dict[str, Any]] = {}
    for a in got.alerts:
        assert got_alerts.setdefault((a["alert_id"], a["state"]), a) == a, "a repeated alert differs"
    assert got_alerts == {(a["alert_id"], a["state"]): a for a in expected.alerts}
