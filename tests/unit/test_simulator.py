"""The simulator: calibrated to each preset through `acw replay`, deterministic by seed, faults as asked."""

from __future__ import annotations

import statistics
from pathlib import Path

import orjson
import pytest

from streams.domain.events import CallEvent
from streams.replay import replay
from streams.settings import Settings
from streams.simulator import PRESETS, Faults, SimulationConfig, parse_duration, simulate, to_json_line, with_faults

START = 1_772_438_400_000  # 2026-03-02T08:00:00Z


NO_FAULTS = Faults()


def _replayed(tmp_path: Path, config: SimulationConfig, faults: Faults = NO_FAULTS) -> tuple[list[dict], dict]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "sim.jsonl"
    with open(path, "wb") as f:
        for item in with_faults(simulate(config), faults, config.seed):
            f.write(to_json_line(item) + b"\n")
    settings = Settings()
    summary = replay([path], tmp_path / "out", settings.rules(), aggregation=settings.aggregation())
    intervals = [orjson.loads(line) for line in (tmp_path / "out" / "intervals.jsonl").read_bytes().splitlines()]
    return intervals, summary.to_dict()


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_each_preset_gives_an_average_acw_inside_its_range_and_aht_near_11_6_minutes(
    tmp_path: Path, preset: str
) -> None:
    config = SimulationConfig(agents=60, duration_ms=parse_duration("4h"), start_ms=START, preset=preset, seed=3)
    intervals, summary = _replayed(tmp_path, config)
    p = PRESETS[preset]
    mean_acw = statistics.mean(r["acw_seconds"] for r in intervals)
    assert p.acw_low_s <= mean_acw <= p.acw_high_s, f"{preset}: mean ACW {mean_acw:.0f}s"
    aht = statistics.mean(r["handle_seconds"] for r in intervals if r["handle_seconds"] is not None) / 60
    assert 10 <= aht <= 13.5, f"{preset}: AHT {aht:.1f} min"
    reasons = set(summary["intervals"])
    assert {"WRAPUP_COMPLETED", "AVAILABLE", "STATUS_CHANGE", "NEXT_CONTACT", "TIMED_OUT"} <= reasons
    assert {r["channel"] for r in intervals} == {"VOICE", "CHAT"}
    assert summary["late"] == summary["duplicates"] == summary["rejected_total"] == 0


def test_a_seed_gives_the_same_events_and_another_seed_others() -> None:
    def events(seed: int) -> list[CallEvent]:
        return list(simulate(SimulationConfig(agents=5, duration_ms=parse_duration("1h"), start_ms=START, seed=seed)))

    assert events(1) == events(1)
    assert events(1) != events(2)
    first = events(1)
    assert [e.sort_key() for e in first] == sorted(e.sort_key() for e in first)


def test_faults_arrive_as_duplicates_late_events_and_garbage_and_replay_rejects_them(tmp_path: Path) -> None:
    config = SimulationConfig(agents=20, duration_ms=parse_duration("2h"), start_ms=START, seed=4)
    clean, _ = _replayed(tmp_path / "clean", config)
    faults = Faults(duplicate_rate=0.02, reorder_ms=3_000, late_rate=0.01, late_by_ms=30_000, malformed_rate=0.005)
    noisy, summary = _replayed(tmp_path / "noisy", config, faults)
    assert summary["duplicates"] > 0 and summary["late"] > 0 and summary["rejected_total"] > 0
    # Reordering within the allowed lateness and duplicates change nothing; late events change a few intervals.
    clean_ids = {r["interval_id"] for r in clean}
    noisy_ids = {r["interval_id"] for r in noisy}
    assert len(clean_ids & noisy_ids) >= 0.95 * len(clean_ids)


def test_reordering_and_duplicates_within_the_lateness_give_exactly_the_clean_intervals(tmp_path: Path) -> None:
    config = SimulationConfig(agents=20, duration_ms=parse_duration("2h"), start_ms=START, seed=6)
    clean, _ = _replayed(tmp_path / "clean", config)
    shuffled, summary = _replayed(tmp_path / "shuffled", config, Faults(duplicate_rate=0.05, reorder_ms=4_000))
    assert summary["duplicates"] > 0
    assert sorted(clean, key=lambda r: r["interval_id"]) == sorted(shuffled, key=lambda r: r["interval_id"])


@pytest.mark.parametrize("text", ["8", "h", "-1h", "xh"])
def test_bad_durations_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="bad duration"):
        parse_duration(text)
