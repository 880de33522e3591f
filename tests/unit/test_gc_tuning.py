"""The collector's thresholds: set for a run and for a replay, left alone at 0, restored after a replay inside a longer
process."""

from __future__ import annotations

import gc
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson
import pytest

from streams import gc_tuning
from streams.domain.events import CallEvent
from streams.domain.processor import RulesConfig
from streams.replay import replay
from streams.settings import ConfigError, Settings
from streams.sources.callevent import CallEventSource
from streams.sources.intake import Intake
from tests.unit.domain.builders import ev


def test_a_tuned_block_sets_the_thresholds_freezes_and_restores_both() -> None:
    before, frozen = gc.get_threshold(), gc.get_freeze_count()
    with gc_tuning.tuned(40_000) as thresholds:
        assert thresholds == gc.get_threshold() == (40_000, *gc_tuning.OLDER)
        assert gc.get_freeze_count() > frozen
    assert (gc.get_threshold(), gc.get_freeze_count()) == (before, frozen)


def test_zero_leaves_the_collector_alone() -> None:
    before, frozen = gc.get_threshold(), gc.get_freeze_count()
    with gc_tuning.tuned(0) as thresholds:
        assert thresholds is None
        assert (gc.get_threshold(), gc.get_freeze_count()) == (before, frozen)


def test_the_setting_defaults_to_the_measured_threshold_and_refuses_negatives() -> None:
    assert Settings.from_env({}).gc_threshold == gc_tuning.DEFAULT_THRESHOLD
    assert Settings.from_env({"ACW_GC_THRESHOLD": "0"}).gc_threshold == 0
    with pytest.raises(ConfigError, match="ACW_GC_THRESHOLD"):
        Settings.from_env({"ACW_GC_THRESHOLD": "-1"})


class _Watching(CallEventSource):
    """Our own JSON contract, noting the collector's thresholds as each record is read."""

    def __init__(self) -> None:
        super().__init__("json")
        self.thresholds: list[tuple[int, int, int]] = []

    def decode(self, data: bytes | Mapping[str, Any] | None) -> CallEvent:
        self.thresholds.append(gc.get_threshold())
        return super().decode(data)


@pytest.mark.parametrize("threshold", [gc_tuning.DEFAULT_THRESHOLD, 30_000])
def test_replay_reads_with_the_thresholds_it_is_given_and_restores_them(tmp_path: Path, threshold: int) -> None:
    source, before = _Watching(), gc.get_threshold()
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"".join(orjson.dumps(ev(i, "AGENT_AVAILABLE").to_record()) + b"\n" for i in range(3)))
    replay([events], tmp_path / "out", RulesConfig(), intake=Intake(source), gc_threshold=threshold)
    assert source.thresholds == [(threshold, *gc_tuning.OLDER)] * 3
    assert gc.get_threshold() == before
