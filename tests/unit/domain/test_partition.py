"""AGENT windows finished next to the pipeline give the window records and alerts of the cross-partition merge."""

from __future__ import annotations

import random
from typing import Any

from streams.domain.merge import WindowMerger
from streams.domain.partition import PartitionCore
from streams.domain.pipeline import AcwPipeline, Output
from streams.settings import Settings
from streams.traffic import TrafficShape, generate
from tests.support.seeds import logged_seed

SHAPE = TrafficShape(agents=15, contacts_per_agent=8, stagger_ms=2 * 3_600_000)


def _merged(outs: list[Output], merger: WindowMerger) -> tuple[dict[Any, Any], list[Any]]:
    """Aggregates (by key, the latest) and alerts of outputs, their remaining panes merged by `merger`."""
    aggregates: dict[Any, Any] = {}
    alerts: list[Any] = []
    for out in outs:
        for key, record in out.aggregates:
            aggregates[key] = record
        alerts += out.alerts + out.window_alerts
        for pane, stats in out.final_panes:
            merger.offer_pane(0, pane, stats)
        if out.progress is not None:
            merged = merger.offer_progress(0, out.progress)
            aggregates.update(dict(merged.aggregates))
            alerts += merged.alerts
    return aggregates, sorted(alerts, key=lambda a: (a["alert_id"], a["state"]))


def test_local_agent_windows_equal_the_merged_ones_across_checkpoint_and_restore() -> None:
    rng = random.Random(logged_seed("restore points"))
    settings = Settings.from_env({})  # the default job: every scope, 15m and 1h/5m windows, the alert presets
    rules, config = settings.rules(), settings.aggregation()
    events = generate(SHAPE, seed=rng.randrange(1000))
    restores = set(rng.sample(range(len(events)), 3))

    reference = AcwPipeline(rules, config)
    expected_outs = [reference.offer(e)[1] for e in events] + [reference.finish()]
    expected = _merged(expected_outs, WindowMerger(config, sources=1))

    core = PartitionCore.new(rules, config)
    entries: dict[str, Any] = {}
    outs = []
    for i, event in enumerate(events):
        if i in restores:  # a checkpoint, then a restart from it
            entries.update(core.take_dirty())
            kept = {k: v for k, v in entries.items() if v is not None}
            core = PartitionCore.restore(rules, config, core.meta(), kept)
        outs.append(core.offer(event)[1])
    outs.append(core.finish())
    got = _merged(outs, WindowMerger(config, sources=1))

    assert got == expected
    assert any(a["scope"] == "AGENT" for a in got[1]), "no AGENT window alert to compare"
    assert any(k.startswith("AGENT") for k in got[0]) and any(not k.startswith("AGENT") for k in got[0])
    assert all(p.scope.value != "AGENT" for out in outs for p, _ in out.final_panes)  # none left the partition


def test_drained_entries_equal_the_taken_ones_and_are_taken_at_the_call() -> None:
    rng = random.Random(logged_seed("checkpoint points"))
    settings = Settings.from_env({})
    rules, config = settings.rules(), settings.aggregation()
    events = generate(SHAPE, seed=rng.randrange(1000))
    taken, drained = PartitionCore.new(rules, config), PartitionCore.new(rules, config)
    checkpoints = set(rng.sample(range(len(events)), 5))
    compared = 0
    for i, event in enumerate(events):
        taken.offer(event)
        drained.offer(event)
        if i in checkpoints:
            entries = drained.drain_dirty()
            assert not drained.has_dirty()  # what changed was taken at the call, before any entry was read
            expected = taken.take_dirty()
            got = list(entries)
            assert dict(got) == expected
            assert len(got) == len(expected)  # no entry twice
            compared += len(got)
    assert compared > 0
    assert any(name.startswith("l|") for name in expected) or any(name.startswith("a|") for name in expected)
