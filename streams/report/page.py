"""The report as one self-contained HTML file: figures embedded as data URIs, a formula and a table under each."""

from __future__ import annotations

from dataclasses import dataclass, field
from html import escape
from typing import Any

STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1180px;color:#222;
padding:0 1rem}
h1{font-size:1.5rem;margin-bottom:.2rem} h2{font-size:1.15rem;margin-top:2.2rem;border-bottom:1px solid #ddd}
.meta{color:#666;font-size:.85rem} .kpis{display:flex;gap:1rem;flex-wrap:wrap;margin:1rem 0}
.kpi{border:1px solid #ddd;border-radius:6px;padding:.6rem 1rem;min-width:9rem}
.kpi b{display:block;font-size:1.3rem} .kpi span{color:#666;font-size:.8rem}
img{max-width:100%;height:auto} p.formula{color:#444;font-size:.85rem;background:#f7f7f7;padding:.5rem .7rem;
border-left:3px solid #2ca02c} table{border-collapse:collapse;font-size:.85rem;margin:.5rem 0}
td,th{padding:.2rem .6rem;border-bottom:1px solid #eee;text-align:right} td:first-child,th:first-child{text-align:left}
th{background:#fafafa}
"""


@dataclass(frozen=True)
class Section:
    """One part of the report: a heading, an optional figure, the formula behind it and an optional table."""

    title: str
    image: str | None
    formula: str
    columns: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)


def render(data: dict[str, Any], sections: list[Section]) -> str:
    """The whole page."""
    overall = data["overall"]
    band = data["benchmark"]
    period = data["period"]
    kpis = [
        (f"{overall.avg_acw_s / 60:.1f} min", "average ACW per interaction"),
        ("-" if overall.acw_pct is None else f"{overall.acw_pct:.1f}%", "ACW % of handle time"),
        ("-" if overall.aht_s is None else f"{overall.aht_s / 60:.1f} min", "AHT"),
        (f"{overall.contacts:,}", "contacts handled"),
        (f"{data['cost'][-1].acw_hours:,.0f} h", "in ACW"),
        (f"{band['low_s'] / 60:g}-{band['high_s'] / 60:g} min", f"{band['name'].replace('_', ' ')} benchmark"),
    ]
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width,initial-scale=1'>",
        f"<title>ACW report {escape(period['first_disconnect'][:10])}</title><style>{STYLE}</style></head><body>",
        "<h1>After-call work report</h1>",
        f"<p class='meta'>Contacts disconnected {escape(period['first_disconnect'])} to "
        f"{escape(period['last_disconnect'])} ({period['days']} day(s), times of day in {escape(period['tz'])}); "
        f"{escape(data['generated_by'])}.</p>",
        "<div class='kpis'>",
        *(f"<div class='kpi'><b>{escape(v)}</b><span>{escape(k)}</span></div>" for v, k in kpis),
        "</div>",
    ]
    for s in sections:
        anchor = "".join(ch if ch.isalnum() else "-" for ch in s.title.lower())
        parts.append(f"<h2 id='{escape(anchor)}'>{escape(s.title)}</h2>")
        if s.image:
            parts.append(f"<img src='{s.image}' alt='{escape(s.title)}'>")
        parts.append(f"<p class='formula'>{escape(s.formula)}</p>")
        if s.columns:
            parts.append(
                "<table><thead><tr>" + "".join(f"<th>{escape(c)}</th>" for c in s.columns) + "</tr></thead><tbody>"
            )
            if not s.rows:
                parts.append(f"<tr><td colspan='{len(s.columns)}'>none</td></tr>")
            for row in s.rows:
                parts.append("<tr>" + "".join(f"<td>{escape(v)}</td>" for v in row) + "</tr>")
            parts.append("</tbody></table>")
    parts.append("</body></html>\n")
    return "\n".join(parts)
