"""Replay's window stage in a second process: the same bytes as one process, and its failures surface, not hang."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest

from streams.cli import main
from streams.domain.processor import RulesConfig
from streams.replay import replay
from streams.settings import ConfigError, Settings
from tests.support.seeds import logged_seed

OUTPUTS = ("intervals.jsonl", "aggregates.jsonl", "alerts.jsonl", "dead-letter.jsonl", "summary.json")


@pytest.fixture(scope="module")
def faulty_day(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Six simulated hours of 40 agents with duplicates, reordering, late and malformed records."""
    path = tmp_path_factory.mktemp("day") / "day.jsonl"
    faults = ["--duplicates", "0.02", "--reorder-ms", "20000", "--late", "0.01", "--malformed", "0.005"]
    seed = logged_seed("faulty day")
    common = ["--agents", "40", "--duration", "6h", "--start", "2026-03-02T08:00:00+00:00", "--seed", str(seed)]
    assert main(["simulate", *common, *faults, "--quiet", "--out", str(path)]) == 0
    return path


@pytest.mark.parametrize("windows", ["15m,1h/5m", "10m,30m/5m,2h/10m"])
def test_two_processes_write_the_same_bytes_as_one(faulty_day: Path, tmp_path: Path, windows: str) -> None:
    aggregation = Settings.from_env({"ACW_WINDOWS": windows}).aggregation()
    summaries = {}
    for processes in (1, 2):
        out = tmp_path / str(processes)
        summaries[processes] = replay([faulty_day], out, RulesConfig(), aggregation=aggregation, processes=processes)
    assert summaries[1] == summaries[2]
    assert summaries[1].aggregates > 1000 and summaries[1].rejected
    alerts = set(summaries[1].alerts)
    assert {"agent-stuck-in-acw.FIRING", "agent-acw-avg.FIRING"} <= alerts  # the pipeline's and the merger's
    for name in OUTPUTS:
        assert (tmp_path / "1" / name).read_bytes() == (tmp_path / "2" / name).read_bytes(), name


def test_intervals_only_runs_in_one_process_whatever_is_asked(faulty_day: Path, tmp_path: Path) -> None:
    replay([faulty_day], tmp_path / "one", RulesConfig(), aggregate=False, processes=1)
    replay([faulty_day], tmp_path / "two", RulesConfig(), aggregate=False, processes=2)
    for name in OUTPUTS:
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes(), name
    assert not multiprocessing.active_children()


def test_an_error_in_the_window_process_is_raised_in_the_parent(faulty_day: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    (out / "aggregates.jsonl").mkdir(parents=True)  # the child cannot open its output file
    with pytest.raises(IsADirectoryError) as raised:
        replay([faulty_day], out, RulesConfig(), processes=2)
    assert "raised in replay's window process" in raised.value.__notes__
    assert not multiprocessing.active_children()


def test_an_error_in_the_parent_stops_the_window_process(faulty_day: Path, tmp_path: Path) -> None:
    unreadable = tmp_path / "not-a-file.jsonl"
    unreadable.mkdir()  # read after the first input, while the child merges its windows
    with pytest.raises(IsADirectoryError):
        replay([faulty_day, unreadable], tmp_path / "out", RulesConfig(), processes=2)
    assert not multiprocessing.active_children()


@pytest.mark.parametrize("duration", ["1m", "20m"])
def test_an_input_shorter_than_a_pane_close_gives_the_same_bytes(tmp_path: Path, duration: str) -> None:
    """No pane closes before the end of input: the pipeline asks the panes where they begin and end."""
    src = tmp_path / "short.jsonl"
    seed = logged_seed("short input")
    common = ["--agents", "30", "--duration", duration, "--start", "2026-03-02T08:00:00+00:00", "--seed", str(seed)]
    assert main(["simulate", *common, "--rate", "30", "--quiet", "--out", str(src)]) == 0
    for processes in (1, 2):
        replay([src], tmp_path / str(processes), RulesConfig(), processes=processes)
    if duration == "20m":  # a minute may end before any interval does
        assert (tmp_path / "1" / "aggregates.jsonl").read_bytes()
    for name in OUTPUTS:
        assert (tmp_path / "1" / name).read_bytes() == (tmp_path / "2" / name).read_bytes(), name


def test_replay_processes_is_checked_at_start() -> None:
    with pytest.raises(ConfigError, match="ACW_REPLAY_PROCESSES"):
        Settings.from_env({"ACW_REPLAY_PROCESSES": "3"})
    assert Settings.from_env({"ACW_REPLAY_PROCESSES": "1"}).replay_process_count() == 1
    assert Settings.from_env({}).replay_process_count() in (1, 2)


def test_the_command_line_refuses_three_processes(faulty_day: Path, tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["replay", str(faulty_day), "--out", str(tmp_path), "--processes", "3"])
    assert exited.value.code == 2
