"""`acw report` on a simulated day: every file, numbers equal to a hand computation, and the page in Chromium."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from matplotlib import image

from streams.cli import main
from tests.support.browser import screenshot

FIGURES = [
    "acw-by-team.png",
    "acw-by-queue.png",
    "distribution.png",
    "heatmap.png",
    "agents.png",
    "end-reasons.png",
    "dispositions.png",
    "cost.png",
    "compare.png",
]


@pytest.fixture(scope="module")
def day(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A replay of a simulated day of 60 agents (an `acw replay --out` directory)."""
    d = tmp_path_factory.mktemp("day")
    events = d / "day.jsonl"
    sim = ["simulate", "--agents", "60", "--duration", "1d", "--start", "2026-03-02T00:00:00Z", "--seed", "7"]
    assert main([*sim, "--out", str(events)]) == 0
    assert main(["replay", str(events), "--out", str(d / "replay"), "--quiet"]) == 0
    return d / "replay"


@pytest.fixture(scope="module")
def report(day: Path) -> Path:
    out = day.parent / "report"
    assert main(["report", str(day), "--out", str(out), "--compare", "team:team-000", "rest"]) == 0
    return out


def _intervals(day: Path) -> list[dict[str, Any]]:
    return [orjson.loads(x) for x in (day / "intervals.jsonl").read_bytes().splitlines()]


def test_the_report_writes_a_page_every_figure_and_the_numbers(report: Path) -> None:
    for name in FIGURES:
        picture = image.imread(report / name)
        assert picture.shape[0] > 150 and picture.shape[1] > 800, name
        assert len(np.unique(picture.reshape(-1, picture.shape[2]), axis=0)) > 20, f"{name} is blank"
    page = (report / "index.html").read_text()
    assert page.count("data:image/png;base64,") == len(FIGURES)  # self-contained: every figure inside
    assert "src='http" not in page and "href='http" not in page
    assert "Comparison: team team-000 against the rest" in page


def test_team_and_queue_figures_equal_a_hand_computation(day: Path, report: Path) -> None:
    rows = _intervals(day)
    figures = orjson.loads((report / "figures.json").read_bytes())
    for field, key in (("team_id", "teams"), ("queue_id", "queues")):
        groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for r in rows:
            groups[r[field]].append(r)
        got = {g["name"]: g for g in figures[key]}
        assert set(got) == set(groups)
        for name, rs in groups.items():
            acw = sum(r["acw_seconds"] for r in rs)
            known = [r for r in rs if r["handle_seconds"] is not None]
            handle = sum(r["handle_seconds"] for r in known)
            g = got[name]
            assert g["contacts"] == len(rs)
            assert g["avg_acw_s"] == pytest.approx(acw / len(rs))
            assert g["acw_pct"] == pytest.approx(100 * sum(r["acw_seconds"] for r in known) / handle)
            assert g["aht_s"] == pytest.approx(handle / len(known))


def test_endings_codes_and_cost_equal_a_hand_computation(day: Path, report: Path) -> None:
    rows = _intervals(day)
    figures = orjson.loads((report / "figures.json").read_bytes())
    assert figures["endings"]["all"] == dict(Counter(r["end_reason"] for r in rows))
    no_code = sum(1 for r in rows if r["disposition_code"] is None)
    assert figures["no_code_share"] == pytest.approx(no_code / len(rows))
    total_hours = sum(r["acw_seconds"] for r in rows) / 3600
    everyone = figures["cost"][-1]
    assert everyone["team"] == "all" and everyone["acw_hours"] == pytest.approx(total_hours)
    assert everyone["fte"] == pytest.approx(total_hours / 8)  # one day, 8-hour shifts
    huddle = figures["huddle"]
    by_agent: dict[str, list[float]] = defaultdict(list)
    for r in rows:
        by_agent[r["agent_id"]].append(r["acw_seconds"])
    expected = sorted(
        (a for a, v in by_agent.items() if len(v) >= 20 and sum(v) / len(v) > 240),
        key=lambda a: -sum(by_agent[a]) / len(by_agent[a]),
    )
    assert [a["agent_id"] for a in huddle] == expected and expected  # the simulated day has some
    assert all(math.isfinite(a["avg_acw_s"]) for a in huddle)


def test_the_page_opens_in_headless_chromium(report: Path, tmp_path: Path) -> None:
    shot = screenshot(report / "index.html", tmp_path / "report.png", height=1600)
    picture = image.imread(shot)[:, :, :3]
    assert picture.shape[:2] == (1600, 1280)
    # The benchmark band's light green fill (#2ca02c at 15% on white) shows only where the figures were drawn.
    band = np.all(np.abs(picture - np.array([0.87, 0.94, 0.87])) < 0.03, axis=2)
    assert band.sum() > 2000, "no figure rendered in the page"


def test_bad_options_exit_2_and_an_empty_period_exits_1(day: Path, tmp_path: Path) -> None:
    out = str(tmp_path / "r")
    assert main(["report", str(day), "--out", out, "--compare", "team:x", "nonsense"]) == 2
    assert main(["report", str(day), "--out", out, "--benchmark", "retail"]) == 2
    assert main(["report", str(day), "--out", out, "--tz", "Nowhere/City"]) == 2
    assert main(["report", str(day), "--out", out, "--since", "2030-01-01T00:00:00Z"]) == 1
    assert not (tmp_path / "r" / "index.html").exists()
