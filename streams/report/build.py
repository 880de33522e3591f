"""`acw report`: the figures, tables and sentences of one report, and the files they are written to."""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from streams import __version__
from streams.domain.benchmarks import BANDS, Band
from streams.report import charts, measures
from streams.report.compare import Comparison, Side, compare, split
from streams.report.contacts import Contact
from streams.report.page import Section, render


@dataclass(frozen=True)
class ReportOptions:
    """How a report is computed: the benchmark, the thresholds it justifies, the clock it reads times by."""

    benchmark: str = "general"
    tz: str = "UTC"
    min_contacts: int = 20
    max_timeout_share: float = 0.05
    rare_share: float = 0.01
    shift_gap_hours: float = 4.0
    shift_hours: float = 8.0
    compare: tuple[Side, Side] | None = None
    resamples: int = 2000
    seed: int = 1

    @property
    def band(self) -> Band:
        """The configured benchmark's band."""
        return BANDS[self.benchmark]


def figures(contacts: list[Contact], options: ReportOptions) -> dict[str, Any]:
    """Every number the report shows, as plain data (also written as figures.json)."""
    tz = ZoneInfo(options.tz)
    band = options.band
    people = measures.agents(contacts)
    codes = measures.dispositions(contacts)
    days = measures.days_in(contacts, tz)
    shifts = measures.shifts(contacts, round(options.shift_gap_hours * 3_600_000))
    teams, heat = measures.heatmap(contacts, tz)
    out: dict[str, Any] = {
        "generated_by": f"acw {__version__}",
        "period": {
            "first_disconnect": _iso(contacts[0].disconnected_ms),
            "last_disconnect": _iso(contacts[-1].disconnected_ms),
            "days": days,
            "tz": options.tz,
        },
        "benchmark": {"name": options.benchmark, "low_s": band.low, "high_s": band.high},
        "options": {k: v for k, v in dataclasses.asdict(options).items() if k != "compare"},
        "overall": measures.summarize("all", contacts),
        "teams": measures.by_team(contacts),
        "queues": measures.by_queue(contacts),
        "heatmap": {"teams": teams, "slot_minutes": measures.SLOT_MINUTES, "avg_acw_s": heat},
        "huddle": measures.above_band(people, band, options.min_contacts),
        "efficient": measures.efficient(people, band, options.min_contacts, options.max_timeout_share),
        "endings": measures.endings(contacts),
        "never_close": measures.never_close(people, options.min_contacts),
        "dispositions": codes,
        "rare_codes": measures.rare_codes(codes, options.rare_share),
        "no_code_share": sum(c.share for c in codes if c.code is None),
        "cost": measures.cost(shifts, options.shift_hours, days),
        "agent_shifts": len(shifts),
    }
    if options.compare is not None:
        a_side, b_side = options.compare
        a, b = split(contacts, a_side, b_side)
        if a and b:
            out["compare"] = compare(a, b, a_side.label, b_side.label, options.resamples, options.seed)
        else:
            out["compare"] = {"error": f"{a_side.label}: {len(a)} contacts, {b_side.label}: {len(b)} contacts"}
    return out


def write_report(contacts: list[Contact], options: ReportOptions, out_dir: Path) -> dict[str, Path]:
    """Writes index.html (self-contained), one PNG per figure and figures.json; returns the files by name."""
    if not contacts:
        raise ValueError("no ACW intervals to report on")
    out_dir.mkdir(parents=True, exist_ok=True)
    data = figures(contacts, options)
    band = options.band
    f = _Figures(out_dir)
    f.add("acw-by-team", charts.groups_chart(data["teams"], band, "team", out_dir / "acw-by-team.png"))
    f.add("acw-by-queue", charts.groups_chart(data["queues"], band, "queue", out_dir / "acw-by-queue.png"))
    f.add("distribution", charts.distribution_chart(contacts, band, out_dir / "distribution.png"))
    heat = data["heatmap"]
    f.add("heatmap", charts.heatmap_chart(heat["teams"], heat["avg_acw_s"], band, options.tz, out_dir / "heatmap.png"))
    people = measures.agents(contacts)
    f.add("agents", charts.agents_chart(people, data["huddle"], band, options.min_contacts, out_dir / "agents.png"))
    f.add("end-reasons", charts.endings_chart(data["endings"], out_dir / "end-reasons.png"))
    f.add("dispositions", charts.dispositions_chart(data["dispositions"], band, out_dir / "dispositions.png"))
    f.add("cost", charts.cost_chart(data["cost"], options.shift_hours, out_dir / "cost.png"))
    result = data.get("compare")
    if isinstance(result, Comparison) and options.compare is not None:
        a, b = split(contacts, *options.compare)
        f.add(
            "compare",
            charts.compare_chart(
                [c.acw_s for c in a],
                [c.acw_s for c in b],
                result.label_a,
                result.label_b,
                band,
                out_dir / "compare.png",
            ),
        )
    (out_dir / "figures.json").write_bytes(orjson.dumps(_plain(data), option=orjson.OPT_INDENT_2) + b"\n")
    sections = _sections(data, options, f.images)
    (out_dir / "index.html").write_text(render(data, sections), encoding="utf-8")
    return {"index.html": out_dir / "index.html", "figures.json": out_dir / "figures.json", **f.files}


class _Figures:
    def __init__(self, out_dir: Path) -> None:
        self.files: dict[str, Path] = {}
        self.images: dict[str, str] = {}

    def add(self, name: str, path: Path) -> None:
        self.files[path.name] = path
        self.images[name] = "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()


def _iso(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {k: _plain(v) for k, v in dataclasses.asdict(value).items()}
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _mmss(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{int(seconds // 60)}:{round(seconds % 60):02d}" if seconds < 3600 else f"{seconds / 3600:.1f} h"


def _sections(data: dict[str, Any], options: ReportOptions, images: dict[str, str]) -> list[Section]:
    band = options.band
    band_text = (
        f"{options.benchmark.replace('_', ' ')} benchmark band {_mmss(band.low)}-{_mmss(band.high)} per interaction"
    )
    group_formula = (
        "Average ACW per interaction = total ACW / interactions handled. The mark: total ACW / contacts that had "
        "any ACW (> 0 s). ACW % = total ACW / total handle time x 100 and AHT = (talk + hold + ACW) / contacts, "
        f"both over the contacts whose connect was seen. Green: the {band_text}."
    )
    group_columns = ["", "contacts", "avg ACW", "avg ACW (with ACW)", "ACW %", "AHT"]

    def group_rows(rows: list[measures.GroupSummary]) -> list[list[str]]:
        return [
            [
                r.name,
                f"{r.contacts:,}",
                _mmss(r.avg_acw_s),
                _mmss(r.avg_acw_when_any_s),
                "-" if r.acw_pct is None else f"{r.acw_pct:.1f}%",
                _mmss(r.aht_s),
            ]
            for r in [*rows, data["overall"]]
        ]

    agent_columns = ["agent", "team", "contacts", "avg ACW", "95% CI of the mean", "timeouts"]

    def agent_rows(rows: list[measures.AgentSummary]) -> list[list[str]]:
        return [
            [
                a.agent_id,
                a.team,
                f"{a.contacts:,}",
                _mmss(a.avg_acw_s),
                f"{_mmss(max(0.0, a.ci95_s[0]))}-{_mmss(a.ci95_s[1])}",
                f"{a.timeouts} ({100 * a.timeout_share:.0f}%)",
            ]
            for a in rows
        ]

    huddle, fast = data["huddle"], data["efficient"]
    sections = [
        Section("ACW by team", images["acw-by-team"], group_formula, group_columns, group_rows(data["teams"])),
        Section("ACW by queue", images["acw-by-queue"], group_formula, group_columns, group_rows(data["queues"])),
        Section(
            "Distribution by team",
            images["distribution"],
            "Each contact's ACW (disconnect to the event that ended it). Box: 25th-75th percentile; line: median; "
            f"triangle: mean; whiskers: 5th and 95th percentile; dots beyond them. Green: the {band_text}.",
        ),
        Section(
            "ACW through the day",
            images["heatmap"],
            "Cell = total ACW / contacts of a team disconnected in that 15-minute interval of the day "
            f"({options.tz}), over every day of the period. The colour scale turns from green to red at the band's "
            f"top, {_mmss(band.high)}.",
        ),
        Section(
            "For the huddle",
            images["agents"],
            f"Agents whose average ACW per contact is above the band's top ({_mmss(band.high)}) over at least "
            f"{options.min_contacts} contacts. Why {options.min_contacts}: an agent's ACW varies about as much as "
            f"its mean, so with {options.min_contacts} contacts the mean's standard error is under a quarter of "
            "that spread (1/sqrt(n)); with fewer, one long wrap-up decides. The interval column is mean +- 1.96 "
            "standard deviations / sqrt(contacts): where its lower end is above the band's top, the difference is "
            f"not chance. {len(huddle)} agent(s).",
            agent_columns,
            agent_rows(huddle),
        ),
        Section(
            "Wrapping up efficiently",
            None,
            f"Agents below the band's middle ({_mmss(band.middle)}) over at least {options.min_contacts} contacts, "
            f"with at most {100 * options.max_timeout_share:.0f}% of their intervals timed out (a low average "
            f"made of timeouts is not efficiency). {len(fast)} agent(s); the 15 fastest shown.",
            agent_columns,
            agent_rows(fast[:15]),
        ),
    ]
    endings = data["endings"]
    total = sum(endings["all"].values())
    never = data["never_close"]
    sections.append(
        Section(
            "What ended ACW",
            images["end-reasons"],
            "Share of intervals by the event that ended them. The agent closed it: wrap-up completed, available, "
            "status change. The agent did not: timed out (ACW_MAX_ACW_SECONDS), logged out, next contact. "
            "Below: the agents who most often did not close it (share of their intervals, at least "
            f"{options.min_contacts} contacts).",
            ["ended by", "intervals", "share"],
            [[r.lower().replace("_", " "), f"{n:,}", f"{100 * n / total:.1f}%"] for r, n in endings["all"].items()],
        )
    )
    sections.append(
        Section(
            "Agents who most often do not close ACW",
            None,
            "Not closed = timed out + logged out + next contact.",
            ["agent", "team", "contacts", "not closed", "of which timed out"],
            [
                [
                    a.agent_id,
                    a.team,
                    f"{a.contacts:,}",
                    f"{a.not_closed} ({100 * a.not_closed_share:.0f}%)",
                    f"{a.timeouts}",
                ]
                for a in never
            ],
        )
    )
    rare = data["rare_codes"]
    sections.append(
        Section(
            "Disposition codes",
            images["dispositions"],
            "Per code: contacts, share of contacts, average ACW = total ACW / contacts with the code, total ACW hours; "
            "ordered by total hours (which reasons cost the most wrap-up). "
            f"{100 * data['no_code_share']:.1f}% of contacts were closed with no code. Used on at most "
            f"{100 * options.rare_share:g}% of contacts (candidates to retire): "
            + (", ".join(f"{c.code} ({c.contacts})" for c in rare) or "none")
            + ".",
            ["code", "contacts", "share", "avg ACW", "ACW hours"],
            [
                [
                    c.code or "(no code)",
                    f"{c.contacts:,}",
                    f"{100 * c.share:.1f}%",
                    _mmss(c.avg_acw_s),
                    f"{c.acw_hours:.1f}",
                ]
                for c in data["dispositions"]
            ],
        )
    )
    everyone = data["cost"][-1]
    per_shift = data["agent_shifts"] and data["overall"].contacts / data["agent_shifts"]
    sections.append(
        Section(
            "What wrap-up costs",
            images["cost"],
            f"An agent-shift is one agent's contacts with no gap over {options.shift_gap_hours:g} h between them. "
            "Hours per agent-shift = ACW hours / agent-shifts. FTE = ACW hours / "
            f"({options.shift_hours:g} paid hours x {data['period']['days']} day(s)): the full-time agents whose whole "
            f"shifts the period's wrap-up fills. Everyone: {per_shift:.0f} contacts per agent-shift x "
            f"{_mmss(data['overall'].avg_acw_s)} = {everyone.hours_per_shift:.2f} h of unavailable time per shift, "
            f"{everyone.fte:.1f} FTE.",
            ["team", "agent-shifts", "ACW hours", "hours per agent-shift", "FTE"],
            [
                [c.team, f"{c.shifts:,}", f"{c.acw_hours:.1f}", f"{c.hours_per_shift:.2f}", f"{c.fte:.2f}"]
                for c in data["cost"]
            ],
        )
    )
    result = data.get("compare")
    if isinstance(result, Comparison):
        sections.append(
            Section(
                f"Comparison: {result.label_a} against {result.label_b}",
                images.get("compare"),
                f"{result.sentence()} Weighting: contacts are grouped by channel and queue; only the {result.strata} "
                f"groups both sides have count ({result.left_out:,} contacts left out), each weighing its share of "
                "both sides' contacts together, so the two sides are compared on the same mix. Intervals: 2.5th and "
                f"97.5th percentiles of {result.resamples:,} stratified bootstrap resamples (seed {result.seed}).",
                ["", result.label_a, result.label_b, "B - A", "95% CI"],
                [
                    [what, _mmss(e.a), _mmss(e.b), f"{e.diff:+.1f} s", f"{e.low:+.1f} to {e.high:+.1f} s"]
                    for what, e in (("mean", result.mean), ("median", result.median))
                ]
                + [["contacts", f"{result.contacts_a:,}", f"{result.contacts_b:,}", "", ""]],
            )
        )
    elif isinstance(result, dict):
        sections.append(Section("Comparison", None, f"Nothing to compare: {result['error']}."))
    return sections
