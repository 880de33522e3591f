"""Lint rules for the Grafana dashboard JSON: fit to import anywhere, every panel readable, every rule it names real."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
DASHBOARD = json.loads((ROOT / "deploy" / "grafana" / "dashboards" / "acw.json").read_text())
RULES = ROOT / "deploy" / "prometheus" / "rules"
PANELS = [p for p in DASHBOARD["panels"] if p["type"] != "row"]
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
RECORDED = re.compile(r"\b[a-z_]+:[a-z_]+:[a-z0-9_]+\b")


def _recorded_names() -> set[str]:
    doc = yaml.safe_load((RULES / "acw-recording.yml").read_text())
    return {r["record"] for g in doc["groups"] for r in g["rules"]}


def _exprs(panel: dict[str, Any]) -> list[str]:
    return [t["expr"] for t in panel["targets"]]


def test_a_datasource_variable_and_no_hard_coded_uid() -> None:
    variables = {v["name"]: v for v in DASHBOARD["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    for v in variables.values():
        if v["type"] == "query":
            assert v["datasource"] == DATASOURCE, v["name"]
    for panel in PANELS:
        assert panel["datasource"] == DATASOURCE, panel["title"]
        assert all(t["datasource"] == DATASOURCE for t in panel["targets"]), panel["title"]
    for annotation in DASHBOARD["annotations"]["list"]:
        if "expr" in annotation:
            assert annotation["datasource"] == DATASOURCE
    text = json.dumps(DASHBOARD)
    assert '"uid": "prometheus"' not in text


@pytest.mark.parametrize("panel", PANELS, ids=[p["title"] for p in PANELS])
def test_every_panel_has_a_unit_a_description_and_queries(panel: dict[str, Any]) -> None:
    assert panel["fieldConfig"]["defaults"].get("unit"), f"{panel['title']} has no unit"
    assert panel.get("description"), f"{panel['title']} says nothing of what it shows"
    assert panel["targets"] and all(e.strip() for e in _exprs(panel))


@pytest.mark.parametrize("panel", PANELS, ids=[p["title"] for p in PANELS])
def test_rates_use_the_rate_interval_and_other_windows_are_named(panel: dict[str, Any]) -> None:
    for target in panel["targets"]:
        for function, window in re.findall(r"\b(rate|irate|increase)\([^\[]*\[([^\]]+)\]", target["expr"]):
            if function in ("rate", "irate"):
                assert window == "$__rate_interval", f"{panel['title']}: {function} over {window}"
            elif window != "$__rate_interval":
                named = {"15m": "15 min", "1h": "1 h"}.get(window, window)
                said = panel["title"] + " " + target.get("legendFormat", "")
                assert named in said, f"{panel['title']}: increase over {window} is not said in title or legend"


def test_every_recording_rule_the_dashboard_and_the_alerts_use_exists() -> None:
    recorded = _recorded_names()
    used = {name for p in PANELS for e in _exprs(p) for name in RECORDED.findall(e)}
    alerts = yaml.safe_load((RULES / "acw-alerts.yml").read_text())
    used |= {name for g in alerts["groups"] for r in g["rules"] for name in RECORDED.findall(r["expr"])}
    assert used, "no recording rule used at all"
    assert used <= recorded, f"not recorded: {sorted(used - recorded)}"


def test_acw_duration_panels_draw_the_benchmark_band() -> None:
    acw = [p for p in PANELS if p["type"] == "timeseries" and any("interval_duration_seconds" in e for e in _exprs(p))]
    assert len(acw) >= 2
    for panel in acw:
        exprs = _exprs(panel)
        assert "acw:benchmark_seconds:low" in exprs and "acw:benchmark_seconds:high" in exprs, panel["title"]
        fills = [
            prop["value"]
            for o in panel["fieldConfig"]["overrides"]
            for prop in o["properties"]
            if prop["id"] == "custom.fillBelowTo"
        ]
        assert fills == ["benchmark low"], panel["title"]


def test_a_heatmap_of_the_acw_histogram() -> None:
    [heat] = [p for p in PANELS if p["type"] == "heatmap"]
    [target] = heat["targets"]
    assert target["format"] == "heatmap" and "acw_interval_duration_seconds_bucket" in target["expr"]
    assert "by (le)" in target["expr"] and heat["options"]["calculate"] is False


def test_alerts_are_annotations_and_runbook_links_resolve() -> None:
    [alerts] = [a for a in DASHBOARD["annotations"]["list"] if "expr" in a]
    assert alerts["expr"].startswith("ALERTS{") and 'alertstate="firing"' in alerts["expr"]
    variables = {v["name"]: v for v in DASHBOARD["templating"]["list"]}
    prometheus = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    assert variables["runbook_base"]["query"] == prometheus["global"]["external_labels"]["runbook_base_url"]
    runbook = (ROOT / "docs" / "runbook.md").read_text().lower()
    links = [link for p in PANELS for link in p.get("links", [])]
    assert len(links) >= 5
    for link in links:
        base, _, anchor = link["url"].partition("#")
        assert base == "${runbook_base}" and f"## {anchor}" in runbook, link


def test_template_variables_are_all_used() -> None:
    uses = " ".join(e for p in PANELS for e in _exprs(p)) + json.dumps(DASHBOARD["links"]) + json.dumps(PANELS)
    for v in DASHBOARD["templating"]["list"]:
        assert f"${v['name']}" in uses or f"${{{v['name']}}}" in uses, f"variable {v['name']} is not used"
