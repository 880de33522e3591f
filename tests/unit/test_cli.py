"""The `acw` command line: exit codes, replay outputs and summary."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from streams.cli import main
from streams.domain.events import CallEvent, EventType

T = 1_767_225_600_000


def _write(path: Path, lines: list[bytes]) -> Path:
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def _line(i: str, kind: EventType, t_s: float, contact: str | None = None) -> bytes:
    return orjson.dumps(CallEvent(i, kind, T + int(t_s * 1000), "a1", contact_id=contact).to_record())


def test_replay_writes_intervals_dead_letters_and_summary(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    src = _write(
        tmp_path / "in.jsonl",
        [
            _line("1", EventType.CONTACT_CONNECTED, 0, "c1"),
            b"{not json",
            _line("2", EventType.CONTACT_DISCONNECTED, 60, "c1"),
            _line("2", EventType.CONTACT_DISCONNECTED, 60, "c1"),
            _line("3", EventType.WRAPUP_COMPLETED, 90, "c1"),
            _line("4", EventType.CONTACT_DISCONNECTED, 100, "c2"),
            _line("5", EventType.AGENT_LOGGED_IN, 30, None),
        ],
    )
    assert main(["replay", str(src), "--out", str(tmp_path / "out")]) == 0
    intervals = [orjson.loads(x) for x in (tmp_path / "out" / "intervals.jsonl").read_bytes().splitlines()]
    assert [(r["contact_id"], r["acw_seconds"], r["end_reason"]) for r in intervals] == [
        ("c1", 30.0, "WRAPUP_COMPLETED")
    ]
    dead = [orjson.loads(x) for x in (tmp_path / "out" / "dead-letter.jsonl").read_bytes().splitlines()]
    assert [(d["line"], d["reason"]) for d in dead] == [(2, "unparseable"), (7, "late")]
    summary = orjson.loads((tmp_path / "out" / "summary.json").read_bytes())
    assert summary["events"] == 7 and summary["applied"] == 4 and summary["duplicates"] == 1
    assert summary["late"] == 1 and summary["rejected"] == {"unparseable": 1} and summary["still_open"] == 1
    assert summary["intervals"] == {"WRAPUP_COMPLETED": 1}
    assert "7 events" in capsys.readouterr().out


def test_replay_of_a_missing_file_fails_with_1(tmp_path: Path) -> None:
    assert main(["replay", str(tmp_path / "nope.jsonl"), "--out", str(tmp_path / "o")]) == 1


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["replay"])
    assert exc.value.code == 2


def test_configuration_error_exits_2_naming_the_setting(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, tmp_path: Path
) -> None:
    monkeypatch.setenv("ACW_ALLOWED_LATENESS_SECONDS", "soon")
    assert main(["replay", str(tmp_path / "x"), "--out", str(tmp_path)]) == 2
    assert "ACW_ALLOWED_LATENESS_SECONDS" in capsys.readouterr().err


def test_generate_then_replay_is_deterministic(tmp_path: Path) -> None:
    for run in ("a", "b"):
        assert main(["generate", "--agents", "20", "--seed", "3", "--out", str(tmp_path / f"{run}.jsonl")]) == 0
        assert main(["replay", str(tmp_path / f"{run}.jsonl"), "--out", str(tmp_path / run), "--quiet"]) == 0
    assert (tmp_path / "a" / "intervals.jsonl").read_bytes() == (tmp_path / "b" / "intervals.jsonl").read_bytes()
    assert (tmp_path / "a" / "intervals.jsonl").stat().st_size > 0


def test_simulate_writes_jsonl_and_avro_that_replay_reads_alike(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    common = ["--agents", "5", "--duration", "1h", "--start", "2026-03-02T08:00:00+00:00", "--seed", "2"]
    assert main(["simulate", *common, "--out", str(tmp_path / "s.jsonl")]) == 0
    assert main(["simulate", *common, "--out", str(tmp_path / "s.avro")]) == 0
    assert "simulated" in capsys.readouterr().out
    assert main(["replay", str(tmp_path / "s.jsonl"), "--out", str(tmp_path / "j"), "--quiet"]) == 0
    assert main(["replay", str(tmp_path / "s.avro"), "--out", str(tmp_path / "a"), "--quiet"]) == 0
    jsonl, avro = ((tmp_path / d / "intervals.jsonl").read_bytes() for d in ("j", "a"))
    assert jsonl and jsonl == avro


@pytest.mark.parametrize(
    "args",
    [
        ["--duration", "8"],
        ["--preset", "retail"],
        ["--start", "yesterday"],
        ["--speed", "-1"],
    ],
)
def test_simulate_refuses_bad_options_with_exit_code_2(tmp_path: Path, args: list[str]) -> None:
    assert main(["simulate", "--out", str(tmp_path / "x.jsonl"), *args]) == 2


def test_replay_intervals_only_gives_the_same_intervals_without_windows(tmp_path: Path) -> None:
    src = tmp_path / "in.jsonl"
    assert main(["simulate", "--agents", "5", "--duration", "2h", "--start", "1772438400000", "--out", str(src)]) == 0
    assert main(["replay", str(src), "--out", str(tmp_path / "all"), "--quiet"]) == 0
    assert main(["replay", str(src), "--out", str(tmp_path / "only"), "--quiet", "--intervals-only"]) == 0
    intervals = (tmp_path / "all" / "intervals.jsonl").read_bytes()
    assert intervals and intervals == (tmp_path / "only" / "intervals.jsonl").read_bytes()
    assert (tmp_path / "all" / "aggregates.jsonl").read_bytes()
    assert not (tmp_path / "only" / "aggregates.jsonl").read_bytes()


def test_version_prints_the_installed_version_and_exits_0(capsys: pytest.CaptureFixture) -> None:
    from streams import __version__

    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"acw {__version__}" and __version__[0].isdigit()


@pytest.mark.parametrize(
    "args",
    [["consume", "acw.intervals", "--since", "yesterday"], ["consume", "acw.intervals", "--limit", "0"]],
)
def test_consume_refuses_bad_options_with_exit_code_2(args: list[str]) -> None:
    assert main(args) == 2
