"""A simulated day rendered in each platform's records replays to the intervals of the same day in our format.

Compared per format (what the format cannot carry is left out and said here):
- every format: the set of intervals (ids: agent, contact, disconnect time), agent, contact, channel, queue,
  disconnect time; end reasons are not compared (a platform closes ACW its own way, e.g. Connect ends ACW when
  the contact leaves the snapshot, where our stream said the agent went available);
- connect-agent-events: end time, team, talk and hold exactly; no disposition (Connect has none);
- connect-contact-events: end time within 1 s (ACW times are whole seconds), talk + hold (no hold split),
  team from the agent directory;
- genesys: end time, talk, hold and disposition exactly (except ACW ended by the next call or by going
  available, which Genesys reports as a wrap-up without code), team from the agent directory;
- twilio-taskrouter: end time, team exactly, talk + hold (TaskRouter carries no holds: hold is 0).
"""

from __future__ import annotations

import logging
import random
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streams.domain.processor import RulesConfig
from streams.replay import replay
from streams.settings import Settings
from streams.simulator import Faults, SimulationConfig, platform_items, simulate, to_json_line, with_faults
from streams.sources.directory import AgentDirectory
from streams.sources.formats import PLATFORM_FORMATS, build_source
from streams.sources.intake import Intake

log = logging.getLogger(__name__)
START = 1_772_438_400_000  # 2026-03-02T08:00:00Z
EXACT = {
    "connect-agent-events": ("ended_at", "team_id", "talk_seconds", "hold_seconds"),
    "connect-contact-events": ("team_id",),
    "genesys": ("ended_at", "team_id", "talk_seconds", "hold_seconds"),
    "twilio-taskrouter": ("ended_at", "team_id"),
}
COMMON = ("agent_id", "contact_id", "channel", "queue_id", "disconnected_at")


def _intervals(out: Path) -> dict[str, dict]:
    return {r["interval_id"]: r for r in map(orjson.loads, (out / "intervals.jsonl").read_bytes().splitlines())}


def _day(tmp: Path, seed: int, agents: int = 24) -> tuple[SimulationConfig, dict[str, dict], AgentDirectory]:
    config = SimulationConfig(agents=agents, duration_ms=5 * 3_600_000, start_ms=START, seed=seed)
    native = tmp / "native.jsonl"
    native.write_bytes(b"".join(to_json_line(i) + b"\n" for i in with_faults(simulate(config), Faults(), seed)))
    replay([native], tmp / "native", RulesConfig(), aggregate=False)
    intervals = _intervals(tmp / "native")
    teams = {r["agent_id"]: r["team_id"] for r in intervals.values()}
    return config, intervals, AgentDirectory(teams)


@pytest.mark.parametrize("fmt", PLATFORM_FORMATS)
@settings(max_examples=2, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(1, 10_000), shuffle=st.integers(0, 2**32))
def test_platform_day_replays_to_the_native_intervals(tmp_path_factory, fmt: str, seed: int, shuffle: int) -> None:
    log.warning("platform day: format=%s seed=%d faults seed=%d", fmt, seed, shuffle)
    tmp = tmp_path_factory.mktemp(fmt)
    config, native, directory = _day(tmp, seed)
    faults = Faults(duplicate_rate=0.02, reorder_ms=2_000)  # within the default 5 s lateness
    items = with_faults(platform_items(simulate(config), fmt), faults, shuffle)
    path = tmp / f"{fmt}.jsonl"
    path.write_bytes(b"".join(to_json_line(i) + b"\n" for i in items))
    uses_directory = fmt in ("connect-contact-events", "genesys")
    intake = Intake(build_source(fmt, Settings()), directory if uses_directory else None)
    summary = replay([path], tmp / "out", RulesConfig(), aggregate=False, intake=intake)
    got = _intervals(tmp / "out")
    assert sum(summary.rejected.values()) == 0 and summary.late == 0
    assert set(got) == set(native), f"{len(set(native) - set(got))} missing, {len(set(got) - set(native))} extra"
    for key, want in native.items():
        have = got[key]
        for name in COMMON + EXACT[fmt]:
            assert have[name] == want[name], (name, want, have)
        if "talk_seconds" not in EXACT[fmt] and want["talk_seconds"] is not None:
            assert have["talk_seconds"] + have["hold_seconds"] == pytest.approx(
                want["talk_seconds"] + want["hold_seconds"]
            )
        if "ended_at" not in EXACT[fmt]:
            assert 0 <= have["ended_at"] - want["ended_at"] < 1000, (want, have)
        if fmt == "genesys" and want["end_reason"] == "WRAPUP_COMPLETED":
            assert have["disposition_code"] == want["disposition_code"]


def test_the_same_seed_renders_the_same_records() -> None:
    config = SimulationConfig(agents=5, duration_ms=3_600_000, start_ms=START, seed=random.Random(3).randrange(100))
    for fmt in PLATFORM_FORMATS:
        first = [i.raw for i in platform_items(simulate(config), fmt)]
        assert first == [i.raw for i in platform_items(simulate(config), fmt)] and first
