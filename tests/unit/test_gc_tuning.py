"""The collector's thresholds: set for a run, left alone at 0, restored after a replay inside a longer process."""

from __future__ import annotations

import gc

import pytest

from streams import gc_tuning
from streams.settings import ConfigError, Settings


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
