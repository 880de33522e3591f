"""The report's figures as PNG files, drawn with matplotlib without a display."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import TwoSlopeNorm
from matplotlib.figure import Figure

from streams.domain.benchmarks import Band
from streams.report.contacts import Contact
from streams.report.measures import (
    END_REASONS,
    SLOT_MINUTES,
    AgentSummary,
    CodeSummary,
    GroupSummary,
    TeamCost,
    grouped,
)

BAND_COLOR = "#2ca02c"
BAR_COLOR = "#1f77b4"
ALERT_COLOR = "#d62728"
DPI = 110
plt.rcParams.update({"font.size": 9, "axes.spines.top": False, "axes.spines.right": False})


def _band(ax: plt.Axes, band: Band, vertical: bool = False, scale: float = 60.0) -> None:
    span = ax.axvspan if vertical else ax.axhspan
    span(band.low / scale, band.high / scale, color=BAND_COLOR, alpha=0.15, label="benchmark band", zorder=0)


def _save(fig: Figure, path: Path, rect: tuple[float, float, float, float] = (0, 0, 1, 1)) -> Path:
    fig.tight_layout(rect=rect)
    fig.savefig(path, dpi=DPI, metadata={"Software": None})
    plt.close(fig)
    return path


def groups_chart(rows: list[GroupSummary], band: Band, what: str, path: Path) -> Path:
    """Average ACW (both variants) with the band, ACW % and AHT, one bar per team or queue."""
    names = [r.name for r in rows]
    y = np.arange(len(names))
    height = max(2.6, 0.42 * len(names) + 1.2)
    fig, (ax1, ax2, ax3) = plt.subplots(1, 3, figsize=(11, height), sharey=True)
    _band(ax1, band, vertical=True)
    ax1.barh(y, [r.avg_acw_s / 60 for r in rows], color=BAR_COLOR, label="per interaction handled")
    ax1.scatter(
        [(r.avg_acw_when_any_s or 0) / 60 for r in rows],
        y,
        color="black",
        marker="|",
        s=200,
        zorder=3,
        label="per contact with ACW",
    )
    ax1.set_yticks(y, names)
    ax1.invert_yaxis()
    ax1.set_xlabel("average ACW (min)")
    fig.legend(*ax1.get_legend_handles_labels(), loc="lower left", ncol=3, fontsize=7, frameon=False)
    ax1.set_title(f"Average ACW by {what}")
    ax2.barh(y, [r.acw_pct or 0 for r in rows], color="#9467bd")
    ax2.set_xlabel("ACW % of handle time")
    ax2.set_title("ACW %")
    ax3.barh(y, [(r.aht_s or 0) / 60 for r in rows], color="#8c564b")
    ax3.set_xlabel("AHT = talk + hold + ACW (min)")
    ax3.set_title("AHT")
    for ax, values, fmt in (
        (ax1, [r.avg_acw_s / 60 for r in rows], "{:.1f}"),
        (ax2, [r.acw_pct or 0 for r in rows], "{:.0f}%"),
        (ax3, [(r.aht_s or 0) / 60 for r in rows], "{:.1f}"),
    ):
        for yi, v in zip(y, values, strict=True):
            ax.text(v, yi, " " + fmt.format(v), va="center", fontsize=7)
    return _save(fig, path, rect=(0, 0.07, 1, 1))


def distribution_chart(contacts: list[Contact], band: Band, path: Path) -> Path:
    """Box plots of ACW per contact by team (whiskers at the 5th and 95th percentiles), band drawn."""
    groups = grouped(contacts, lambda c: c.team)
    fig, ax = plt.subplots(figsize=(11, max(2.6, 0.5 * len(groups) + 1.2)))
    _band(ax, band, vertical=True)
    data = [[c.acw_s / 60 for c in cs] for cs in groups.values()]
    ax.boxplot(data, orientation="horizontal", whis=(5, 95), showmeans=True, flierprops={"markersize": 2})
    ax.set_yticks(range(1, len(groups) + 1), list(groups))
    ax.invert_yaxis()
    everything = np.array([v for values in data for v in values])
    cap = max(2 * band.high / 60, float(np.percentile(everything, 99)))
    beyond = int((everything > cap).sum())
    ax.set_xlim(0, cap * 1.02)
    if beyond:
        ax.text(
            1,
            1.01,
            f"{beyond:,} contact(s) beyond {cap:.0f} min not shown",
            transform=ax.transAxes,
            ha="right",
            fontsize=7,
            color="#666",
        )
    ax.set_xlabel("ACW per contact (min); box: quartiles, line: median, triangle: mean, whiskers: 5th-95th pct")
    ax.set_title("Distribution of ACW per contact, by team")
    ax.legend(loc="lower right", fontsize=7)
    return _save(fig, path)


def heatmap_chart(teams: list[str], rows: list[list[float | None]], band: Band, tz_name: str, path: Path) -> Path:
    """Average ACW by team and 15-minute interval of the day; green under the band's top, red above."""
    values = np.array([[np.nan if v is None else v / 60 for v in row] for row in rows], dtype=float)
    fig, ax = plt.subplots(figsize=(12, max(2.2, 0.45 * len(teams) + 1.4)))
    top = band.high / 60
    cmap = plt.get_cmap("RdYlGn_r").with_extremes(bad="#f0f0f0")
    image = ax.imshow(
        np.ma.masked_invalid(values),
        aspect="auto",
        cmap=cmap,
        norm=TwoSlopeNorm(top, 0, 2 * top),
        interpolation="nearest",
    )
    per_hour = 60 // SLOT_MINUTES
    ax.set_xticks(np.arange(0, 24 * per_hour, 2 * per_hour) - 0.5, [f"{h:02d}:00" for h in range(0, 24, 2)])
    ax.set_yticks(range(len(teams)), teams)
    ax.set_xlabel(f"time of day ({tz_name}), 15-minute intervals; grey: no contacts")
    ax.set_title("Average ACW (min) by team and interval of the day; colour turns red above the band's top")
    fig.colorbar(image, ax=ax, label="average ACW (min)", pad=0.01, extend="max")
    return _save(fig, path)


def agents_chart(
    people: list[AgentSummary], huddle: list[AgentSummary], band: Band, min_contacts: int, path: Path
) -> Path:
    """Each agent's average ACW against their contacts, the band and the huddle's threshold drawn."""
    fig, ax = plt.subplots(figsize=(11, 4.2))
    _band(ax, band)
    flagged = {a.agent_id for a in huddle}
    rest = [a for a in people if a.agent_id not in flagged]
    ax.scatter([a.contacts for a in rest], [a.avg_acw_s / 60 for a in rest], s=14, color=BAR_COLOR, label="agent")
    ax.scatter(
        [a.contacts for a in huddle],
        [a.avg_acw_s / 60 for a in huddle],
        s=22,
        color=ALERT_COLOR,
        label="for the huddle",
    )
    for rank, a in enumerate(huddle[:5]):
        ax.annotate(
            a.agent_id,
            (a.contacts, a.avg_acw_s / 60),
            fontsize=7,
            xytext=(12, 8 - 9 * rank),
            textcoords="offset points",
            arrowprops={"arrowstyle": "-", "color": "#999", "linewidth": 0.6},
        )
    ax.axvline(min_contacts, color="grey", linestyle="--", linewidth=1, label=f"{min_contacts} contacts")
    ax.set_xlabel("contacts handled")
    ax.set_ylabel("average ACW (min)")
    ax.set_title("Agents: average ACW per contact against contacts handled")
    ax.legend(loc="upper right", fontsize=7)
    return _save(fig, path)


def endings_chart(endings: dict[str, dict[str, int]], path: Path) -> Path:
    """Shares of what ended ACW, per team and for everyone, as stacked bars."""
    names = list(endings)
    colors = ["#2ca02c", "#98df8a", "#1f77b4", "#ff7f0e", "#9467bd", "#d62728", "#7f7f7f"]
    fig, ax = plt.subplots(figsize=(11, max(2.4, 0.42 * len(names) + 1.4)))
    left = np.zeros(len(names))
    for reason, color in zip(END_REASONS, colors, strict=True):
        shares = np.array([100 * endings[n].get(reason, 0) / max(1, sum(endings[n].values())) for n in names])
        if shares.any():
            ax.barh(names, shares, left=left, color=color, label=reason.lower().replace("_", " "))
            left += shares
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_xlabel("share of ACW intervals (%)")
    ax.set_title("What ended ACW")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.25), ncol=7, fontsize=7, frameon=False)
    return _save(fig, path)


def dispositions_chart(codes: list[CodeSummary], band: Band, path: Path) -> Path:
    """Average ACW per disposition code, costliest codes first, with their contacts."""
    fig, ax = plt.subplots(figsize=(11, max(2.4, 0.4 * len(codes) + 1.2)))
    _band(ax, band, vertical=True)
    names = [c.code or "(no code)" for c in codes]
    colors = ["#7f7f7f" if c.code is None else BAR_COLOR for c in codes]
    ax.barh(names, [c.avg_acw_s / 60 for c in codes], color=colors)
    for i, c in enumerate(codes):
        ax.text(c.avg_acw_s / 60, i, f" {c.contacts:,} contacts, {c.acw_hours:.1f} h", va="center", fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("average ACW (min); bars in order of total ACW hours")
    ax.set_title("ACW by disposition code")
    return _save(fig, path)


def cost_chart(costs: list[TeamCost], shift_hours: float, path: Path) -> Path:
    """ACW hours per agent-shift by team, with the FTEs they represent."""
    fig, ax = plt.subplots(figsize=(11, max(2.4, 0.42 * len(costs) + 1.2)))
    names = [c.team for c in costs]
    colors = ["#444444" if c.team == "all" else "#ff7f0e" for c in costs]
    ax.barh(names, [c.hours_per_shift for c in costs], color=colors)
    for i, c in enumerate(costs):
        ax.text(
            c.hours_per_shift,
            i,
            f" {c.hours_per_shift:.2f} h/shift, {c.acw_hours:.0f} h, {c.fte:.1f} FTE",
            va="center",
            fontsize=7,
        )
    ax.invert_yaxis()
    ax.set_xlabel(f"hours in ACW per agent-shift (FTE: ACW hours / {shift_hours:g} h x days)")
    ax.set_title("What wrap-up costs")
    return _save(fig, path)


def compare_chart(a: list[float], b: list[float], label_a: str, label_b: str, band: Band, path: Path) -> Path:
    """The two sides' ACW distributions, as cumulative shares, with the band drawn."""
    fig, ax = plt.subplots(figsize=(11, 3.8))
    _band(ax, band, vertical=True)
    for values, label, color in ((a, label_a, "#7f7f7f"), (b, label_b, BAR_COLOR)):
        xs = np.sort(np.array(values)) / 60
        ax.step(
            xs, np.arange(1, len(xs) + 1) / len(xs) * 100, where="post", label=f"{label} ({len(xs):,})", color=color
        )
    ax.set_xlabel("ACW per contact (min)")
    ax.set_ylabel("contacts at or under (%)")
    ax.set_title("Comparison: share of contacts wrapped up within x minutes (unweighted)")
    ax.legend(loc="lower right", fontsize=7)
    return _save(fig, path)
