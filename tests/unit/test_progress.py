"""Progress of long commands: plain lines off a terminal, shares of the input that only grow, and --quiet."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from streams.domain.processor import RulesConfig
from streams.progress import Progress
from streams.replay import replay
from streams.traffic import TrafficShape, generate


def test_off_a_terminal_a_plain_line_with_the_share_rate_and_time_left(capsys: pytest.CaptureFixture[str]) -> None:
    with Progress("replay", terminal=False, line_every_s=0) as bar:
        bar.update(50_000, 0.5)
        bar.update(60_000, None)
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("  replay: 50,000 events (50%, about ") and " s left)" in err[0] and "/s" in err[0]
    assert err[1].startswith("  replay: 60,000 events, ") and "%" not in err[1]


def test_quiet_prints_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    with Progress("replay", enabled=False, terminal=False, line_every_s=0) as bar:
        bar.update(1, 0.1)
    assert capsys.readouterr().err == ""


def test_replay_reports_a_growing_share_of_its_inputs(tmp_path: Path) -> None:
    paths = []
    for i in range(2):
        path = tmp_path / f"in{i}.jsonl"
        events = generate(TrafficShape(agents=200, contacts_per_agent=10), seed=i)
        path.write_bytes(b"".join(orjson.dumps(e.to_record()) + b"\n" for e in events))
        paths.append(path)
    seen: list[tuple[int, float | None]] = []
    summary = replay(paths, tmp_path / "out", RulesConfig(), lambda n, share: seen.append((n, share)), aggregate=False)
    assert [n for n, _ in seen] == list(range(10_000, summary.events + 1, 10_000))
    shares = [s for _, s in seen]
    assert all(s is not None for s in shares) and shares == sorted(shares)
    assert 0 < shares[0] < shares[-1] <= 1
