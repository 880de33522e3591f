"""Renders every panel of the Grafana dashboard to a PNG from a real Prometheus's range queries, and the board.

Each panel's queries run as Grafana would run them (template variables set to All, `$__rate_interval` from
the step and the scrape interval); the unit and legend come from the panel's JSON. Writes panel-<id>.png,
board.png (the panels laid out by their gridPos) and summary.json (series and points per panel).

    .venv/bin/python deploy/grafana/render.py --prometheus http://127.0.0.1:9090 --out /tmp/board [--minutes 10]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import matplotlib

matplotlib.use("Agg")

import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.ticker import FuncFormatter, MultipleLocator

DASHBOARD = Path(__file__).resolve().parent / "dashboards" / "acw.json"
BOARD_IN = 16.0  # the board's width in inches (at 100 dpi); Grafana's grid: 24 columns, rows of 30 px at 1440 px
COLUMN_IN = BOARD_IN / 24
ROW_IN = 30 / 1440 * BOARD_IN
TIME_FORMAT = mdates.DateFormatter("%H:%M:%S")
BAND_HIGH, BAND_LOW = "benchmark high", "benchmark low"


@dataclass
class Series:
    """One returned series: its legend and its points (epoch seconds, value)."""

    legend: str
    times: list[float] = field(default_factory=list)
    values: list[float] = field(default_factory=list)


def legend_of(fmt: str, labels: dict[str, str]) -> str:
    """A legendFormat with its {{label}} placeholders filled in, as Grafana does."""
    if not fmt:
        return "{" + ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items()) if k != "__name__") + "}"
    return re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: labels.get(m[1], ""), fmt)


def unit_formatter(unit: str) -> Callable[[float, Any], str]:
    """Tick labels in the panel's unit."""

    def seconds(v: float, _: Any = None) -> str:
        if abs(v) >= 3600:
            return f"{v / 3600:.1f} h"
        if abs(v) >= 120:
            return f"{v / 60:.0f} min"
        return f"{v:.3g} s"

    formats: dict[str, Callable[[float, Any], str]] = {
        "s": seconds,
        "percent": lambda v, _=None: f"{v:.0f}%",
        "ops": lambda v, _=None: f"{v:.3g}/s",
        "cpm": lambda v, _=None: f"{v:.3g}/min",
    }
    return formats.get(unit, lambda v, _=None: f"{v:.4g}")


class Renderer:
    """Queries one Prometheus over one time range and draws panels."""

    def __init__(self, url: str, start: float, end: float, step: float, scrape_s: float) -> None:
        self.client = httpx.Client(base_url=url, timeout=30)
        self.start, self.end, self.step = start, end, step
        self.rate_interval = f"{round(max(step + scrape_s, 4 * scrape_s))}s"

    def expand(self, expr: str, variables: list[dict[str, Any]]) -> str:
        """The expression with template variables set to All and Grafana's interval variables filled in."""
        for v in variables:
            if v["type"] == "query":
                expr = expr.replace(f"${v['name']}", v.get("allValue") or ".*")
        return expr.replace("$__rate_interval", self.rate_interval).replace("$__interval", f"{round(self.step)}s")

    def query(self, expr: str, legend_format: str) -> list[Series]:
        """A range query; a failed one raises with Prometheus's error."""
        params = {"query": expr, "start": self.start, "end": self.end, "step": self.step}
        body = self.client.get("/api/v1/query_range", params=params).json()
        if body.get("status") != "success":
            raise RuntimeError(f"{expr}: {body.get('error')}")
        out = []
        for r in body["data"]["result"]:
            points = [(float(t), float(v)) for t, v in r["values"] if v not in ("NaN", "+Inf", "-Inf")]
            out.append(Series(legend_of(legend_format, r["metric"]), [t for t, _ in points], [v for _, v in points]))
        return out


def _times(s: Series) -> list[dt.datetime]:
    return [dt.datetime.fromtimestamp(t, dt.UTC) for t in s.times]


def draw_timeseries(ax: Axes, series: list[Series], unit: str, annotations: list[float]) -> None:
    """Lines with a legend; the benchmark band filled between its two series."""
    band = {s.legend: s for s in series if s.legend in (BAND_HIGH, BAND_LOW)}
    if len(band) == 2 and band[BAND_HIGH].times:
        high, low = band[BAND_HIGH], band[BAND_LOW]
        n = min(len(high.values), len(low.values))
        ax.fill_between(
            _times(high)[:n],
            low.values[:n],
            high.values[:n],
            color="#2ca02c",
            alpha=0.15,
            label="benchmark band",
            step="post",
        )
    for s in series:
        if s.legend in band:
            ax.plot(_times(s), s.values, color="#2ca02c", linestyle="--", linewidth=0.8)
        elif s.times:
            ax.plot(_times(s), s.values, linewidth=1.2, label=s.legend)
    for t in annotations:
        ax.axvline(dt.datetime.fromtimestamp(t, dt.UTC), color="#d62728", linewidth=0.8, alpha=0.6)
    ax.yaxis.set_major_formatter(FuncFormatter(unit_formatter(unit)))
    if unit == "s":
        top = max((max(s.values) for s in series if s.values), default=0.0)
        step = next((b for b in (60, 120, 300, 600, 900, 1800, 3600) if top / b <= 8), 7200)
        if top > 180:
            ax.yaxis.set_major_locator(MultipleLocator(step))
    ax.xaxis.set_major_formatter(TIME_FORMAT)
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        ax.legend(handles[:8], labels[:8], fontsize=6, loc="upper left", frameon=False)


def draw_stat(ax: Axes, series: list[Series], unit: str) -> None:
    """The last value of each series (up to four), with the first series as a sparkline behind."""
    shown = [s for s in series if s.values][:4]
    fmt = unit_formatter(unit)
    if shown and len(shown[0].values) > 1:
        ax.fill_between(range(len(shown[0].values)), shown[0].values, color="#1f77b4", alpha=0.15)
    for i, s in enumerate(shown):
        y = 0.5 if len(shown) == 1 else 0.85 - i * 0.22
        size = 26 if len(shown) == 1 else 11
        text = fmt(s.values[-1]) if len(shown) == 1 else f"{s.legend}: {fmt(s.values[-1])}"
        ax.text(0.5, y, text, transform=ax.transAxes, ha="center", va="center", fontsize=size, weight="bold")
    ax.set_xticks([])
    ax.set_yticks([])


def draw_heatmap(ax: Axes, series: list[Series], unit: str) -> None:
    """Cumulative `le` buckets turned into counts per bucket, over time."""
    buckets = sorted((float(s.legend), s) for s in series if s.values and s.legend not in ("", "+Inf"))
    if not buckets:
        return
    n = min(len(s.values) for _, s in buckets)
    cumulative = np.array([s.values[:n] for _, s in buckets])
    counts = np.diff(cumulative, axis=0, prepend=0)
    times = mdates.date2num(_times(buckets[0][1])[:n])
    extent = (times[0], times[-1] if n > 1 else times[0] + 1e-3, 0, len(buckets))
    ax.imshow(
        np.clip(counts, 0, None), aspect="auto", origin="lower", cmap="Oranges", extent=extent, interpolation="nearest"
    )
    fmt = unit_formatter(unit)
    ticks = range(0, len(buckets), max(1, len(buckets) // 8))
    ax.set_yticks([t + 0.5 for t in ticks], [f"<= {fmt(buckets[t][0])}" for t in ticks])
    ax.xaxis_date()
    ax.xaxis.set_major_formatter(TIME_FORMAT)


def render(dashboard: dict[str, Any], renderer: Renderer, out: Path) -> dict[str, Any]:
    """Every panel to out/panel-<id>.png and the board to out/board.png; returns the summary."""
    out.mkdir(parents=True, exist_ok=True)
    variables = dashboard["templating"]["list"]
    annotations: list[float] = []
    for a in dashboard.get("annotations", {}).get("list", []):
        if "expr" in a:
            for s in renderer.query(renderer.expand(a["expr"], variables), ""):
                annotations += [t for t, v in zip(s.times, s.values, strict=True) if v > 0][:1]
    summary: dict[str, Any] = {
        "rate_interval": renderer.rate_interval,
        "alerts_annotated": len(annotations),
        "panels": [],
    }
    drawn: dict[int, Path] = {}
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            continue
        series: list[Series] = []
        for target in panel["targets"]:
            series += renderer.query(renderer.expand(target["expr"], variables), target.get("legendFormat", ""))
        unit = panel["fieldConfig"]["defaults"].get("unit", "short")
        w, h = panel["gridPos"]["w"], panel["gridPos"]["h"]
        fig, ax = plt.subplots(figsize=(w * COLUMN_IN, h * ROW_IN))
        if panel["type"] == "stat":
            draw_stat(ax, series, unit)
        elif panel["type"] == "heatmap":
            draw_heatmap(ax, series, unit)
        else:
            draw_timeseries(ax, series, unit, annotations)
        points = sum(len(s.values) for s in series)
        if not points:
            ax.text(0.5, 0.5, "No data", transform=ax.transAxes, ha="center", va="center", color="#999")
        ax.set_title(panel["title"], fontsize=8, loc="left")
        ax.tick_params(labelsize=6)
        fig.tight_layout()
        path = out / f"panel-{panel['id']}.png"
        fig.savefig(path, dpi=100, metadata={"Software": None})
        plt.close(fig)
        drawn[panel["id"]] = path
        summary["panels"].append(
            {
                "id": panel["id"],
                "title": panel["title"],
                "type": panel["type"],
                "unit": unit,
                "series": len([s for s in series if s.values]),
                "points": points,
                "file": path.name,
            }
        )
    board(dashboard, drawn, out / "board.png")
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def board(dashboard: dict[str, Any], drawn: dict[int, Path], path: Path) -> None:
    """The rendered panels placed as Grafana lays them out."""
    panels = dashboard["panels"]
    head = 1.5  # grid rows above the panels for the title
    rows = max(p["gridPos"]["y"] + p["gridPos"]["h"] for p in panels) + head
    fig = plt.figure(figsize=(BOARD_IN, rows * ROW_IN), facecolor="white")
    fig.text(0.005, 1 - 0.75 / rows, dashboard["title"], fontsize=12, weight="bold", va="center")
    for p in panels:
        g = p["gridPos"]
        left, bottom = g["x"] / 24, 1 - (g["y"] + head + g["h"]) / rows
        if p["type"] == "row":
            fig.text(left + 0.005, bottom + 0.5 / rows, p["title"], fontsize=10, weight="bold", va="center")
            continue
        ax = fig.add_axes((left + 0.003, bottom + 0.003, g["w"] / 24 - 0.006, g["h"] / rows - 0.006))
        ax.imshow(plt.imread(drawn[p["id"]]), aspect="auto")
        ax.set_axis_off()
    fig.savefig(path, dpi=100, metadata={"Software": None})
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    """Command line: where Prometheus is, where to write, which time range."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prometheus", required=True, help="base URL, e.g. http://127.0.0.1:9090")
    parser.add_argument("--out", required=True, type=Path, help="output directory")
    parser.add_argument("--dashboard", type=Path, default=DASHBOARD)
    parser.add_argument("--minutes", type=float, default=10.0, help="time range ending now (default 10)")
    parser.add_argument("--scrape-interval", type=float, default=15.0, help="Prometheus's, in seconds (default 15)")
    args = parser.parse_args(argv)
    end = time.time()
    start = end - args.minutes * 60
    step = max(1.0, (end - start) / 300)
    try:
        summary = render(
            json.loads(args.dashboard.read_text()),
            Renderer(args.prometheus, start, end, step, args.scrape_interval),
            args.out,
        )
    except (httpx.HTTPError, RuntimeError) as exc:
        print(f"render: {exc}", file=sys.stderr)
        return 1
    empty = [p["title"] for p in summary["panels"] if not p["points"]]
    missing = f"; no data: {', '.join(empty)}" if empty else ""
    print(f"{len(summary['panels'])} panels -> {args.out}/board.png{missing}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
